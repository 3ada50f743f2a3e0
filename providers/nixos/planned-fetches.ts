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
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BinaryCacheSpec, SshTarget } from '../../lib/engine';
import type { PlannedClosure } from '../../lib/engine/fetch-ahead';

/** One host's note. */
export interface PlannedFetch {
  readonly target: SshTarget;
  readonly closure: PlannedClosure;
  readonly cache: BinaryCacheSpec;
}

const MAX_AGE_MS = 3600_000;

const sha = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);

/** The notes of the Terraform working directory (the provider's current directory). */
function notesDir(stateDir: string): string {
  return path.join(stateDir, 'planned-fetches', sha(process.cwd()));
}

function noteFile(stateDir: string, target: SshTarget): string {
  return path.join(notesDir(stateDir), `${sha(`${target.user ?? 'root'}@${target.host}:${target.port ?? 22}`)}.json`);
}

/** Notes what a host will fetch (no secrets: key files are paths). Failures only cost speed. */
export function notePlannedFetch(stateDir: string, fetch: PlannedFetch): void {
  try {
    fs.mkdirSync(notesDir(stateDir), { recursive: true, mode: 0o700 });
    const file = noteFile(stateDir, fetch.target);
    fs.writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(fetch), { mode: 0o600 });
    fs.renameSync(`${file}.${process.pid}.tmp`, file);
  } catch {
    // a note is an optimisation only
  }
}

/** Removes a host's note (its apply ended, or its plan fetches nothing). */
export function forgetPlannedFetch(stateDir: string, target: SshTarget): void {
  fs.rmSync(noteFile(stateDir, target), { force: true });
}

/** The fresh notes of hosts that will fetch `outPath` from the cache at `cacheUri`. */
export function plannedFetches(stateDir: string, outPath: string, cacheUri: string): PlannedFetch[] {
  const dir = notesDir(stateDir);
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const fetches: PlannedFetch[] = [];
  for (const name of names) {
    try {
      const file = path.join(dir, name);
      if (Date.now() - fs.statSync(file).mtimeMs > MAX_AGE_MS) continue;
      const fetch = JSON.parse(fs.readFileSync(file, 'utf8')) as PlannedFetch;
      if (fetch.closure.outPath === outPath && fetch.cache.uri === cacheUri) fetches.push(fetch);
    } catch {
      // removed meanwhile, or half written by an older version: skip it
    }
  }
  return fetches;
}
