import { Readable } from 'stream';
import { lines, localClosure, localExport, narSizes as localNarSizes, pathInfoEntries } from './local-nix';
import { SshSession } from './ssh';
import { shellJoin } from './shell';

/** An export of store paths in progress. */
export interface StoreExport {
  readonly stream: Readable;
  /** Settles when the exporting process ended; rejects if it failed. */
  readonly done: Promise<void>;
  kill(): void;
}

/** A Nix store that closures are copied from: the deployer's own, or a build host's. */
export interface StoreSource {
  readonly name: string;
  /** The closure of `roots`, dependencies first. */
  closure(roots: readonly string[]): Promise<string[]>;
  narSizes(paths: readonly string[]): Promise<Map<string, number>>;
  export(paths: readonly string[]): Promise<StoreExport>;
}

/** The deployer's store. */
export const localStore: StoreSource = {
  name: 'the deployer',
  closure: localClosure,
  narSizes: localNarSizes,
  export: async (paths) => localExport(paths),
};

/** The store of a host reached over SSH (a build host). */
export function remoteStore(session: SshSession, name: string): StoreSource {
  return {
    name,
    closure: async (roots) => lines(await session.check(shellJoin(['nix-store', '--query', '--requisites', ...roots]))),
    narSizes: async (paths) => {
      const json = await session.check(shellJoin(['nix', '--extra-experimental-features', 'nix-command', 'path-info', '--json', ...paths]));
      return new Map(pathInfoEntries(JSON.parse(json)).map(([p, info]) => [p, info.narSize ?? 0]));
    },
    export: async (paths) => {
      const channel = await session.open(shellJoin(['nix-store', '--export', ...paths]));
      let stderr = '';
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const done = new Promise<void>((resolve, reject) =>
        channel.on('close', (code: number | null) =>
          code === 0 ? resolve() : reject(new Error(`nix-store --export on ${name} failed: ${stderr.trim() || `exit code ${code}`}`)),
        ),
      );
      channel.end();
      return { stream: channel, done, kill: () => channel.close() };
    },
  };
}

/** Which of `paths` the host's store lacks, asked in one round trip. */
export async function missingOnHost(session: SshSession, paths: readonly string[]): Promise<string[]> {
  if (paths.length === 0) return [];
  const invalid = new Set(
    lines(await session.check('xargs -r nix-store --check-validity --print-invalid', { stdin: paths.join('\n') + '\n' })),
  );
  return paths.filter((p) => invalid.has(p));
}
