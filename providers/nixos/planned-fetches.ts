/**
 * Planned fetches: which hosts a plan will give which closure from which binary cache.
 *
 * Terraform applies at most ten resources at once (-parallelism), each in its own call, and
 * the plan and the apply run in different provider processes. So the plan notes, for each
 * host that gets a new closure through a binary cache, what it will fetch; the first apply
 * of that closure starts every noted host fetching it at once (the engine's fetchAhead),
 * and each host's own apply then finds it there. A host's note is removed when its apply
 * ends, and notes older than an hour are ignored: a stale note only costs a download.
 */
import type { BinaryCacheSpec, SshTarget } from '../../lib/engine';
import type { PlannedClosure } from '../../lib/engine/fetch-ahead';
import { StackNotes } from './stack-notes';

/** One host's note. */
export interface PlannedFetch {
  readonly target: SshTarget;
  readonly closure: PlannedClosure;
  readonly cache: BinaryCacheSpec;
}

const notes = new StackNotes<PlannedFetch>('planned-fetches', 3600_000);

/** Notes what a host will fetch (no secrets: key files are paths). */
export function notePlannedFetch(stateDir: string, fetch: PlannedFetch): void {
  notes.write(stateDir, fetch.target, fetch);
}

/** Removes a host's note (its apply ended, or its plan fetches nothing). */
export function forgetPlannedFetch(stateDir: string, target: SshTarget): void {
  notes.remove(stateDir, target);
}

/** The fresh notes of hosts that will fetch `outPath` from the cache at `cacheUri`. */
export function plannedFetches(stateDir: string, outPath: string, cacheUri: string): PlannedFetch[] {
  return notes.all(stateDir).filter((f) => f.closure?.outPath === outPath && f.cache?.uri === cacheUri);
}
