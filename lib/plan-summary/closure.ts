/**
 * What is inside a system closure: its store paths with their NAR sizes, read from the
 * local store (`nix path-info -rS --json`) or from the host over SSH (`nix-store -qR` and
 * `nix path-info --json` there), and the package-level difference of two closures.
 */
import { localValidPaths, nix, nixStore, pathInfoEntries } from '../engine/local-nix';
import { SshSession } from '../engine/ssh';
import { remoteStore } from '../engine/store';
import { SshTarget } from '../engine/types';

/** A closure's paths and NAR sizes, and where they were read. */
export interface ClosureInfo {
  readonly root: string;
  readonly sizes: ReadonlyMap<string, number>;
  /** `the deployer` or the host's label. */
  readonly source: string;
}

/** A store path's name split as Nix's `builtins.parseDrvName` does: the version starts at the first `-` followed by a digit. */
export function parseStoreName(storePath: string): { name: string; version: string } {
  const base = storePath.replace(/^.*\//, '');
  const withoutHash = /^[0-9a-z]{32}-/.test(base) ? base.slice(33) : base;
  const m = /-(?=\d)/.exec(withoutHash);
  return m ? { name: withoutHash.slice(0, m.index), version: withoutHash.slice(m.index + 1) } : { name: withoutHash, version: '' };
}

/** `/nix/store/ky3qixzq…-nixos-system-db-1`: the hash cut to 8 characters. */
export function shortStorePath(storePath: string): string {
  const base = storePath.replace(/^.*\//, '');
  return /^[0-9a-z]{32}-/.test(base) ? `${base.slice(0, 8)}…${base.slice(32)}` : base;
}

/** The package-level difference of two closures. */
export interface ClosureDiff {
  readonly added: { name: string; version: string }[];
  readonly removed: { name: string; version: string }[];
  readonly changed: { name: string; from: string; to: string }[];
  /** Paths with the same name and version but another hash (rebuilt with other inputs). */
  readonly rebuilt: string[];
  readonly sizeBefore: number;
  readonly sizeAfter: number;
  readonly pathsBefore: number;
  readonly pathsAfter: number;
}

function byName(info: ClosureInfo): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const p of info.sizes.keys()) {
    if (p === info.root) continue;
    const { name, version } = parseStoreName(p);
    if (!out.has(name)) out.set(name, new Set());
    out.get(name)!.add(version);
  }
  return out;
}

const versions = (s: Set<string>) => [...s].sort().join(', ');
const sum = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** What changed between two closures, package by package (the roots themselves left out). */
export function diffClosures(before: ClosureInfo, after: ClosureInfo): ClosureDiff {
  const old = byName(before);
  const now = byName(after);
  const added: ClosureDiff['added'] = [];
  const removed: ClosureDiff['removed'] = [];
  const changed: ClosureDiff['changed'] = [];
  const rebuilt: string[] = [];
  for (const [name, v] of now) {
    const was = old.get(name);
    if (!was) added.push({ name, version: versions(v) });
    else if (versions(was) !== versions(v)) changed.push({ name, from: versions(was), to: versions(v) });
  }
  for (const [name, v] of old) if (!now.has(name)) removed.push({ name, version: versions(v) });
  const oldBases = new Set([...before.sizes.keys()].filter((p) => p !== before.root).map((p) => p.replace(/^.*\/[0-9a-z]{32}-/, '')));
  const oldPaths = new Set(before.sizes.keys());
  for (const p of after.sizes.keys()) {
    if (p === after.root || oldPaths.has(p)) continue;
    const base = p.replace(/^.*\/[0-9a-z]{32}-/, '');
    const { name } = parseStoreName(p);
    if (oldBases.has(base) && old.has(name) && versions(old.get(name)!) === versions(now.get(name)!)) rebuilt.push(base);
  }
  const byKey = <T extends { name: string }>(a: T, b: T) => a.name.localeCompare(b.name);
  return {
    added: added.sort(byKey),
    removed: removed.sort(byKey),
    changed: changed.sort(byKey),
    rebuilt: rebuilt.sort(),
    sizeBefore: sum(before.sizes),
    sizeAfter: sum(after.sizes),
    pathsBefore: before.sizes.size,
    pathsAfter: after.sizes.size,
  };
}

/** Paths and NAR sizes from `nix path-info --json` output, in Nix 2.8's array or 2.19+'s object shape. */
export function sizesFromPathInfo(json: unknown): Map<string, number> {
  return new Map(pathInfoEntries(json).map(([p, info]) => [p, info.narSize ?? 0]));
}

/** Whether the local store has `storePath`. */
export async function isLocal(storePath: string): Promise<boolean> {
  return (await localValidPaths([storePath])).has(storePath);
}

/** Builds (realises) a derivation in the local store. */
export async function realise(drvPath: string): Promise<void> {
  const result = await nixStore(['--realise', drvPath]);
  if (result.exitCode !== 0) throw new Error(`nix-store --realise ${drvPath} failed: ${result.stderr.trim().split('\n').pop()}`);
}

/** The closure of `root` in the local store: `nix path-info -rS --json`. */
export async function localClosureInfo(root: string): Promise<ClosureInfo> {
  const result = await nix(['path-info', '-rS', '--json', root]);
  if (result.exitCode !== 0) throw new Error(`nix path-info ${root} failed: ${result.stderr.trim()}`);
  return { root, sizes: sizesFromPathInfo(JSON.parse(result.stdout)), source: 'the deployer' };
}

/** The closure of `root` in a host's store, read over SSH (host key pinned). */
export async function remoteClosureInfo(root: string, target: SshTarget, label: string): Promise<ClosureInfo> {
  const session = await SshSession.connect(target);
  try {
    const store = remoteStore(session, label);
    const paths = await store.closure([root]);
    return { root, sizes: await store.narSizes(paths), source: label };
  } finally {
    session.close();
  }
}
