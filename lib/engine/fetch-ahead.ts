/**
 * Hosts fetching a closure from a binary cache ahead of their own deploy.
 *
 * A caller that deploys hosts a few at a time (Terraform applies ten resources at once)
 * would otherwise make each host wait for its turn before its download even starts. The
 * download only adds store paths, which is safe at any time, so it can run for every
 * host at once; the deploy of each host then finds the closure there and activates.
 */
import * as path from 'path';
import { pushToCache, substituteOnHost } from './binary-cache';
import { buildLocally } from './build';
import { DEFAULT_EVAL_CACHE_DIR } from './evaluate';
import { limiter } from './limiter';
import { SshSession, targetIdentity, targetLabel } from './ssh';
import { BinaryCacheSpec, SshTarget } from './types';

/** A system closure as planned: its out path, and the derivation that builds it. */
export interface PlannedClosure {
  readonly outPath: string;
  readonly drvPath?: string;
}

/** Fetches at once, at most: each holds an SSH connection. */
const MAX_RUNNING = 64;
/** How long a finished fetch keeps its connection for the host's deploy. */
const PARK_SECONDS = 120;

const fetches = new Map<string, Promise<boolean>>();
/** Connections of finished fetches, by target, until the host's deploy takes one. */
const parked = new Map<string, Promise<SshSession | undefined>>();
const slot = limiter(MAX_RUNNING);

/**
 * Starts the host fetching the closure from the cache (built on the deployer and pushed
 * there first, once per process), unless that already runs. Resolves to whether the host
 * has the closure afterwards; a failure is not thrown: the deploy itself reports it. The
 * connection stays open a while for the host's deploy (takeFetchConnection).
 */
export function fetchAhead(target: SshTarget, closure: PlannedClosure, cache: BinaryCacheSpec, evalCacheDir = DEFAULT_EVAL_CACHE_DIR): Promise<boolean> {
  const { outPath, drvPath } = closure;
  const key = `${targetIdentity(target)}\0${outPath}`;
  let fetch = fetches.get(key);
  if (fetch) return fetch;
  let connected: SshSession | undefined;
  fetch = slot(async () => {
    if (drvPath) await buildLocally(drvPath, outPath, path.join(evalCacheDir, 'gcroots'));
    await pushToCache(cache, outPath, targetLabel(target));
    connected = await SshSession.connect(target);
    return (await substituteOnHost(connected, outPath, cache)).realised;
  }).catch(() => false);
  fetches.set(key, fetch);
  const session = fetch.then(() => connected);
  const parkedAs = targetIdentity(target);
  parked.set(parkedAs, session);
  void session.then((s) => {
    setTimeout(() => {
      if (parked.get(parkedAs) !== session) return; // taken by the deploy
      parked.delete(parkedAs);
      s?.close();
    }, PARK_SECONDS * 1000).unref();
  });
  return fetch;
}

/** The fetch ahead of this closure on this host, if one was started. */
export function fetchingAhead(target: SshTarget, outPath: string): Promise<boolean> | undefined {
  return fetches.get(`${targetIdentity(target)}\0${outPath}`);
}

/**
 * The connection of a fetch ahead to this target, once the fetch is over (the caller owns
 * it then), or undefined when there is none or it broke.
 */
export async function takeFetchConnection(target: SshTarget): Promise<SshSession | undefined> {
  const session = parked.get(targetIdentity(target));
  if (!session) return undefined;
  parked.delete(targetIdentity(target));
  const s = await session;
  return s && !s.lost ? s : undefined;
}

/** Closes the connections no deploy took (a caller that deployed all its hosts). */
export async function closeFetchConnections(): Promise<void> {
  const left = [...parked.values()];
  parked.clear();
  for (const session of await Promise.all(left)) session?.close();
}
