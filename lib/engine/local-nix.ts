import execa from 'execa';
import { Readable } from 'stream';

/** Nix on the deployer, through execa. Every call supports Nix 2.8 and current Nix. */

const NIX_FLAGS = ['--extra-experimental-features', 'nix-command flakes'];

/** Runs a nix command; the caller turns a failure into a step's error. */
export async function nix(args: string[], options: execa.Options = {}): Promise<execa.ExecaReturnValue> {
  return execa('nix', [...NIX_FLAGS, ...args], { reject: false, ...options });
}

/** Runs a nix-store command. */
export async function nixStore(args: string[], options: execa.Options = {}): Promise<execa.ExecaReturnValue> {
  return execa('nix-store', args, { reject: false, ...options });
}

let version: Promise<string> | undefined;

/** The deployer's Nix version, e.g. "2.8.0"; asked once per process. */
export function nixVersion(): Promise<string> {
  version ??= execa('nix', ['--version']).then(({ stdout }) => stdout.trim().split(' ').pop() ?? stdout);
  return version;
}

/** The closure of `paths` in the local store, dependencies first. */
export async function localClosure(paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const result = await nixStore(['--query', '--requisites', ...paths]);
  if (result.exitCode !== 0) throw new Error(result.stderr.trim());
  return lines(result.stdout);
}

/** Which of `paths` the local store has. */
export async function localValidPaths(paths: readonly string[]): Promise<Set<string>> {
  if (paths.length === 0) return new Set();
  const result = await nixStore(['--check-validity', '--print-invalid', ...paths]);
  const invalid = new Set(lines(result.stdout));
  return new Set(paths.filter((p) => !invalid.has(p)));
}

/** NAR sizes of store paths, read from `nix path-info --json` in either of its shapes. */
export async function narSizes(paths: readonly string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  if (paths.length === 0) return sizes;
  const result = await nix(['path-info', '--json', ...paths]);
  if (result.exitCode !== 0) throw new Error(result.stderr.trim());
  for (const [path, info] of pathInfoEntries(JSON.parse(result.stdout))) sizes.set(path, info.narSize ?? 0);
  return sizes;
}

interface PathInfo {
  narSize?: number;
  references?: string[];
}

/** Nix before 2.19 answers an array of objects with `path`; later ones an object keyed by path. */
export function pathInfoEntries(json: unknown): [string, PathInfo][] {
  if (Array.isArray(json)) return json.map((entry: PathInfo & { path: string }) => [entry.path, entry]);
  return Object.entries(json as Record<string, PathInfo | null>).filter((e): e is [string, PathInfo] => e[1] !== null);
}

/** A stream of the export of `paths` (in the order given) from the local store. */
export function localExport(paths: readonly string[]): { stream: Readable; done: Promise<void>; kill: () => void } {
  const child = execa('nix-store', ['--export', ...paths], { buffer: false, stdin: 'ignore', stderr: 'pipe' });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = child.then(
    () => undefined,
    (error: execa.ExecaError) => {
      if (error.isCanceled || error.signal === 'SIGTERM') return;
      throw new Error(`nix-store --export failed: ${stderr.trim() || error.shortMessage}`);
    },
  );
  return { stream: child.stdout!, done, kill: () => child.kill() };
}

/** The non-empty lines of a command's output. */
export function lines(output: string): string[] {
  return output
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}
