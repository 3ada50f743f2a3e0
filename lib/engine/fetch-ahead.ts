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

/** One host's fetch, until its deploy has taken both its connection and its outcome. */
interface Fetch {
  readonly outPath: string;
  /** Whether the host has the closure afterwards. */
  readonly fetched: Promise<boolean>;
  /** The fetch's connection, once the fetch is over; undefined if it never connected. */
  readonly connection: Promise<SshSession | undefined>;
  connectionTaken: boolean;
}

/** Fetches at once, at most: each holds an SSH connection. */
const slot = limiter(64);
/** How long a finished fetch keeps its connection for the host's deploy. */
const PARK_SECONDS = 120;

/** By target identity: one fetch per host at a time. */
const fetches = new Map<string, Fetch>();

/**
 * Starts the host fetching the closure from the cache (built on the deployer and pushed
 * there first, once per process), unless that already runs. Resolves to whether the host
 * has the closure afterwards; a failure is not thrown: the deploy itself reports it. The
 * connection stays open a while for the host's deploy (takeFetchConnection).
 */
export function fetchAhead(target: SshTarget, closure: PlannedClosure, cache: BinaryCacheSpec, evalCacheDir = DEFAULT_EVAL_CACHE_DIR): Promise<boolean> {
  const { outPath, drvPath } = closure;
  const key = targetIdentity(target);
  const running = fetches.get(key);
  if (running?.outPath === outPath) return running.fetched;
  let connected: SshSession | undefined;
  const fetched = slot(async () => {
    if (drvPath) await buildLocally(drvPath, outPath, path.join(evalCacheDir, 'gcroots'));
    await pushToCache(cache, outPath, targetLabel(target));
    connected = await SshSession.connect(target);
    return (await substituteOnHost(connected, outPath, cache)).realised;
  }).catch(() => false);
  const fetch: Fetch = { outPath, fetched, connection: fetched.then(() => connected), connectionTaken: false };
  fetches.set(key, fetch);
  void fetch.connection.then((session) => {
    setTimeout(() => {
      if (!fetch.connectionTaken) session?.close();
      if (fetches.get(key) === fetch) fetches.delete(key);
    }, PARK_SECONDS * 1000).unref();
  });
  return fetched;
}

/**
 * The outcome of the fetch ahead of this closure on this host, if one was started; taken
 * once, so that a later deploy asks the host afresh.
 */
export function takeFetchAhead(target: SshTarget, outPath: string): Promise<boolean> | undefined {
  const key = targetIdentity(target);
  const fetch = fetches.get(key);
  if (fetch?.outPath !== outPath) return undefined;
  fetches.delete(key);
  return fetch.fetched;
}

/**
 * The connection of a fetch ahead to this target, once the fetch is over (the caller owns
 * it then), or undefined when there is none or it broke.
 */
export async function takeFetchConnection(target: SshTarget): Promise<SshSession | undefined> {
  const fetch = fetches.get(targetIdentity(target));
  if (!fetch || fetch.connectionTaken) return undefined;
  fetch.connectionTaken = true;
  const session = await fetch.connection;
  return session && !session.lost ? session : undefined;
}

/** Closes the connections no deploy took (a caller that deployed all its hosts). */
export async function closeFetchConnections(): Promise<void> {
  const left = [...fetches.values()].filter((f) => !f.connectionTaken);
  fetches.clear();
  for (const fetch of left) {
    fetch.connectionTaken = true;
    (await fetch.connection)?.close();
  }
}
