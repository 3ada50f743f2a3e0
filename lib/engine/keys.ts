import execa from 'execa';
import * as fs from 'fs';
import * as path from 'path';
import { DeployError } from './errors';
import { expandHome } from './paths';
import { shellQuote } from './shell';
import { SshSession } from './ssh';
import { KeySpec } from './types';

/** The default folder of keys on the host: tmpfs, gone at reboot, never in the store. */
export const DEFAULT_KEYS_DIR = '/run/keys';

/** Reads a key's content on the deployer. The content is never logged or put in an error. */
export async function readKeyContent(name: string, spec: KeySpec, host?: string): Promise<Buffer> {
  const sources = [spec.file, spec.command, spec.text, spec.content].filter((s) => s !== undefined).length;
  if (sources !== 1) {
    throw new DeployError('keys', host, `key "${name}" must have exactly one of file, command or text (it has ${sources}).`, 'Give the key one source.');
  }
  if (spec.content !== undefined) return spec.content;
  if (spec.text !== undefined) return Buffer.from(spec.text);
  if (spec.file !== undefined) {
    try {
      return fs.readFileSync(expandHome(spec.file));
    } catch (error) {
      throw new DeployError('keys', host, `key "${name}": its file ${spec.file} cannot be read (${(error as NodeJS.ErrnoException).code}).`, 'Check the path on the deployer.');
    }
  }
  const result = await execa('sh', ['-c', spec.command!], { reject: false, stripFinalNewline: false, encoding: null });
  if (result.exitCode !== 0) {
    throw new DeployError(
      'keys',
      host,
      `key "${name}": its command exited with code ${result.exitCode} (the command itself is not shown, as it may hold secret material).`,
      'Run the command by hand on the deployer to see why.',
    );
  }
  return result.stdout as unknown as Buffer;
}

/** Checks a key's placement before anything is uploaded. */
export function validateKey(name: string, spec: KeySpec, host?: string): void {
  if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) {
    throw new DeployError('keys', host, `the key name "${name}" is not a plain file name.`, 'Use letters, digits, ".", "_" and "-", not starting with ".".');
  }
  if (spec.permissions !== undefined && !/^0?[0-7]{3,4}$/.test(spec.permissions)) {
    throw new DeployError('keys', host, `key "${name}": permissions "${spec.permissions}" is not an octal mode.`, 'Write it like "0600" or "0440".');
  }
  if (spec.destDir !== undefined && !path.isAbsolute(spec.destDir)) {
    throw new DeployError('keys', host, `key "${name}": destDir "${spec.destDir}" is not an absolute path.`, 'Use a folder on a tmpfs such as /run/keys.');
  }
}

/**
 * Puts the keys on the host. The content goes through the SSH channel's standard input,
 * never on a command line, and is renamed into place only when whole. A folder that is
 * not on tmpfs or ramfs is refused: secrets do not go to disk. What a key replaces is
 * kept beside it (see `keyBackup`) until the deploy is over, so that a rollback can put
 * it back. Returns the paths of the files written.
 */
export async function uploadKeys(session: SshSession, keys: { readonly [name: string]: KeySpec }, host?: string): Promise<string[]> {
  const entries = Object.entries(keys);
  for (const [name, spec] of entries) validateKey(name, spec, host);
  for (const [name, spec] of entries) {
    const content = await readKeyContent(name, spec, host);
    const dir = spec.destDir ?? DEFAULT_KEYS_DIR;
    const file = `${dir}/${name}`;
    const temp = `${dir}/.${name}.tmp`;
    const { previous, absent } = keyBackup(file);
    // The file system is checked on the folder or its nearest existing parent, before
    // anything is created: a refused folder is not left behind on disk.
    const script = `set -e
d=${shellQuote(dir)}
while [ ! -d "$d" ]; do d=$(dirname "$d"); done
fs=$(stat -f -c %T "$d")
case "$fs" in tmpfs|ramfs) ;; *) echo "the folder is on $fs, not on tmpfs" >&2; exit 80 ;; esac
mkdir -p ${shellQuote(dir)}
umask 077
trap 'rm -f ${shellQuote(temp).replace(/'/g, `'\\''`)}' EXIT
cat > ${shellQuote(temp)}
chown ${shellQuote(`${spec.user ?? 'root'}:${spec.group ?? 'root'}`)} ${shellQuote(temp)}
chmod ${spec.permissions ?? '0600'} ${shellQuote(temp)}
if [ -e ${shellQuote(file)} ]; then ln -f ${shellQuote(file)} ${shellQuote(previous)}; rm -f ${shellQuote(absent)}; else rm -f ${shellQuote(previous)}; : > ${shellQuote(absent)}; fi
mv -f ${shellQuote(temp)} ${shellQuote(file)}`;
    const result = await session.run(script, { stdin: content });
    if (result.code !== 0) {
      const reason = result.stderr.trim().replace(/\s*\n\s*/g, ' ');
      throw new DeployError(
        'keys',
        host,
        `key "${name}" could not be written to ${file}: ${reason}.`,
        result.code === 80 ? 'Choose a destDir on tmpfs, such as /run/keys.' : 'Check that the user and group exist on the host.',
      );
    }
  }
  return entries.map(([name, spec]) => `${spec.destDir ?? DEFAULT_KEYS_DIR}/${name}`);
}

/** Beside a key: its previous content, or a marker that there was none. */
export function keyBackup(file: string): { previous: string; absent: string } {
  const slash = file.lastIndexOf('/');
  const dir = file.slice(0, slash);
  const name = file.slice(slash + 1);
  return { previous: `${dir}/.${name}.prev`, absent: `${dir}/.${name}.absent` };
}

/** A script that puts back what the keys replaced (a rollback). */
export function restoreKeysScript(files: readonly string[]): string {
  return files
    .map((file) => {
      const { previous, absent } = keyBackup(file);
      const [f, p, a] = [file, previous, absent].map(shellQuote);
      return `if [ -e ${p} ]; then mv -f ${p} ${f}; elif [ -e ${a} ]; then rm -f ${f} ${a}; fi`;
    })
    .join('\n');
}

/** Drops what the keys replaced, once the deploy stands. */
export async function commitKeys(session: SshSession, files: readonly string[]): Promise<void> {
  if (files.length > 0) await session.check(commitKeysScript(files));
}

/** The script of commitKeys (empty without keys), to run within another. */
export function commitKeysScript(files: readonly string[]): string {
  if (files.length === 0) return '';
  return `rm -f ${files.flatMap((file) => Object.values(keyBackup(file))).map(shellQuote).join(' ')}`;
}
