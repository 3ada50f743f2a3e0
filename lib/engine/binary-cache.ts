import { DeployError, nixErrorText } from './errors';
import { nix } from './local-nix';
import { expandHome } from './paths';
import { shellJoin } from './shell';
import { SshSession } from './ssh';
import { BinaryCacheSpec } from './types';

/** Pushes in flight or done, so that many hosts of one process push a closure once. */
const pushes = new Map<string, Promise<void>>();

function withSecretKey(uri: string, secretKeyFile: string): string {
  return `${uri}${uri.includes('?') ? '&' : '?'}secret-key=${encodeURIComponent(secretKeyFile)}`;
}

/** Pushes the closure of `outPath` to the cache, signed; once per process per cache and path. */
export function pushToCache(cache: BinaryCacheSpec, outPath: string, host?: string): Promise<void> {
  const key = `${cache.uri}\0${outPath}`;
  let push = pushes.get(key);
  if (!push) {
    push = (async () => {
      const result = await nix(['copy', '--to', withSecretKey(cache.uri, expandHome(cache.secretKeyFile)), outPath]);
      if (result.exitCode !== 0) {
        pushes.delete(key);
        throw new DeployError(
          'copy',
          host,
          `pushing ${outPath} to the binary cache ${cache.uri} failed: ${nixErrorText(result.stderr)}`,
          'Check the cache URI, that the deployer may write there, and the secret key file.',
        );
      }
    })();
    pushes.set(key, push);
  }
  return push;
}

/**
 * Lets the host fetch the closure itself: from the given cache (trusting its key), or from
 * the substituters the host already has. What it cannot fetch is copied afterwards;
 * `problem` says why it could not.
 */
export async function substituteOnHost(session: SshSession, outPath: string, cache?: BinaryCacheSpec): Promise<{ realised: boolean; problem: string }> {
  const options = cache
    ? [
        '--option', 'substituters', cache.substituterUri ?? cache.uri,
        '--option', 'trusted-public-keys', cache.publicKey,
      ]
    : [];
  const result = await session.run(shellJoin(['nix-store', '--realise', outPath, ...options]) + ' >/dev/null');
  return { realised: result.code === 0, problem: result.code === 0 ? '' : nixErrorText(result.stderr) };
}
