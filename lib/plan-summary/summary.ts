/**
 * A pull-request comment (Markdown) from `terraform show -json PLANFILE`: one row per
 * changed nixos_system, unchanged hosts on one line, and for updates what changes inside
 * the closure. The old closure's contents come from the local store, or from the host.
 */
import { formatBytes } from '../engine/copy';
import { SshTarget } from '../engine/types';
import { ClosureDiff, ClosureInfo, diffClosures, isLocal, localClosureInfo, realise, remoteClosureInfo, shortStorePath } from './closure';
import { SystemChange, systemChanges } from './plan';

/** The marker that starts every comment, so that a workflow can find and edit its last one. */
export const COMMENT_MARKER = '<!-- cdktf-nixos plan-summary -->';

export interface SummaryOptions {
  /** A heading, e.g. the stack's name. @default "NixOS systems" */
  readonly title?: string;
  /** Build a planned closure that is not in the local store from its derivation. @default true */
  readonly build?: boolean;
  /** Ask hosts over SSH for old closures that are not in the local store. @default true */
  readonly fetchFromHosts?: boolean;
  /** SSH settings that override the plan's (e.g. CI's key file). @default the plan's */
  readonly ssh?: Partial<Pick<SshTarget, 'privateKeyFile' | 'knownHostsFile' | 'connectTimeoutSeconds'>>;
  /** Unchanged hosts named one by one up to this many, then only counted. @default 10 */
  readonly listUnchanged?: number;
}

/** One system with what was found out about its closures. */
export interface SystemSummary extends SystemChange {
  readonly diff?: ClosureDiff;
  /** Where the old closure's contents were read. */
  readonly oldSource?: string;
  /** Why the contents could not be compared. */
  readonly note?: string;
}

async function closureOf(path: string, drvPath: string | undefined, build: boolean): Promise<ClosureInfo | string> {
  if (!(await isLocal(path))) {
    if (!drvPath) return `${shortStorePath(path)} is not in the local store and the plan has no derivation to build it from`;
    if (!build) return `${shortStorePath(path)} is not built (run without --no-build to build it)`;
    await realise(drvPath);
  }
  return localClosureInfo(path);
}

async function oldClosureOf(change: SystemChange, options: SummaryOptions): Promise<ClosureInfo | string> {
  const path = change.oldClosure!;
  if (await isLocal(path)) return localClosureInfo(path);
  if (options.fetchFromHosts === false || !change.ssh) return `${shortStorePath(path)} is not in the local store`;
  const s = change.ssh;
  const target: SshTarget = {
    host: s.host,
    port: s.port,
    user: s.user,
    privateKeyFile: options.ssh?.privateKeyFile ?? s.privateKeyFile,
    hostKey: s.hostKey,
    knownHostsFile: options.ssh?.knownHostsFile ?? s.knownHostsFile,
    connectTimeoutSeconds: options.ssh?.connectTimeoutSeconds ?? 10,
    bastion: s.bastion,
  };
  try {
    return await remoteClosureInfo(path, target, change.hostLabel);
  } catch (error) {
    return `${shortStorePath(path)} is neither in the local store nor readable on ${change.hostLabel} (${(error as Error).message})`;
  }
}

/** Reads the plan and looks into the closures of every update and replace. */
export async function summarizeSystems(planJson: unknown, options: SummaryOptions = {}): Promise<SystemSummary[]> {
  const changes = systemChanges(planJson);
  return Promise.all(
    changes.map(async (change): Promise<SystemSummary> => {
      if ((change.action !== 'update' && change.action !== 'replace') || !change.oldClosure || change.oldClosure === change.newClosure) return change;
      if (!change.newClosure) return { ...change, note: 'the new closure is known only after apply' };
      try {
        const [before, after] = await Promise.all([oldClosureOf(change, options), closureOf(change.newClosure, change.newDrvPath, options.build ?? true)]);
        if (typeof before === 'string') return { ...change, note: before };
        if (typeof after === 'string') return { ...change, note: after };
        return { ...change, diff: diffClosures(before, after), oldSource: before.source };
      } catch (error) {
        return { ...change, note: (error as Error).message };
      }
    }),
  );
}

const code = (text: string) => `\`${text}\``;

function closureCell(s: SystemSummary): string {
  const old = s.oldClosure ? code(shortStorePath(s.oldClosure)) : '—';
  const now = s.newClosureUnknown ? '(known after apply)' : s.newClosure ? code(shortStorePath(s.newClosure)) : '—';
  if (s.action === 'create') return now;
  if (s.action === 'delete') return `${old} (the host keeps running it)`;
  if (s.oldClosure && s.oldClosure === s.newClosure) return `${now} (same closure)`;
  return `${old} → ${now}`;
}

function signed(bytes: number): string {
  return bytes === 0 ? '±0 B' : `${bytes > 0 ? '+' : '−'}${formatBytes(Math.abs(bytes))}`;
}

function details(s: SystemSummary): string[] {
  if (s.note) return [`**${code(s.address)}**: contents not compared: ${s.note}.`, ''];
  const d = s.diff;
  if (!d) return [];
  const lines = [
    `**${code(s.address)}** on ${code(s.hostLabel)}: closure ${formatBytes(d.sizeBefore)} → ${formatBytes(d.sizeAfter)} (${signed(d.sizeAfter - d.sizeBefore)}), ` +
      `${d.pathsBefore} → ${d.pathsAfter} store paths${s.oldSource && s.oldSource !== 'the deployer' ? ` (old closure read from the host)` : ''}`,
    '',
  ];
  const items: string[] = [];
  for (const c of d.changed) items.push(`- changed: ${code(c.name)} ${c.from || '(no version)'} → ${c.to || '(no version)'}`);
  for (const a of d.added) items.push(`- added: ${code(a.name)} ${a.version}`.trimEnd());
  for (const r of d.removed) items.push(`- removed: ${code(r.name)} ${r.version}`.trimEnd());
  if (d.rebuilt.length) items.push(`- rebuilt, same version: ${d.rebuilt.slice(0, 10).map(code).join(', ')}${d.rebuilt.length > 10 ? ` and ${d.rebuilt.length - 10} more` : ''}`);
  if (!items.length) items.push('- no package changes (only the system itself)');
  return [...lines, ...items, ''];
}

/** The Markdown of a summary. */
export function renderSummary(systems: readonly SystemSummary[], options: Pick<SummaryOptions, 'title' | 'listUnchanged'> = {}): string {
  const title = options.title ?? 'NixOS systems';
  const out = [COMMENT_MARKER, `### ${title}`, ''];
  if (systems.length === 0) return [...out, 'No `nixos_system` resources in this plan.', ''].join('\n');
  const changed = systems.filter((s) => s.action !== 'no change');
  const unchanged = systems.filter((s) => s.action === 'no change');
  const counts = (['create', 'update', 'replace', 'delete'] as const)
    .map((a) => [a, changed.filter((s) => s.action === a).length] as const)
    .filter(([, n]) => n > 0)
    .map(([a, n]) => `${n} to ${a}`);
  if (counts.length) out.push(`${counts.join(', ')}; ${unchanged.length} unchanged.`, '');
  else out.push('No changes to NixOS systems.', '');
  if (changed.length) {
    out.push('| system | host | action | closure |', '| --- | --- | --- | --- |');
    for (const s of changed) out.push(`| ${code(s.address)} | ${code(s.hostLabel)} | ${s.action} | ${closureCell(s)} |`);
    out.push('');
  }
  if (unchanged.length) {
    const limit = options.listUnchanged ?? 10;
    const names = unchanged.slice(0, limit).map((s) => code(s.address.replace(/^.*\./, '')));
    const more = unchanged.length > limit ? ` and ${unchanged.length - limit} more` : '';
    out.push(`${unchanged.length} ${unchanged.length === 1 ? 'host' : 'hosts'} unchanged: ${names.join(', ')}${more}.`, '');
  }
  for (const s of changed) out.push(...details(s));
  return out.join('\n');
}

/** `terraform show -json PLANFILE` output in, Markdown out. */
export async function planSummary(planJson: unknown, options: SummaryOptions = {}): Promise<string> {
  return renderSummary(await summarizeSystems(planJson, options), options);
}
