import { randomBytes } from 'crypto';
import { generationOf, PROFILE } from './activation';
import { DeployError, tail } from './errors';
import { HostLock, lockHost } from './host-lock';
import { limiter } from './limiter';
import { SshSession, targetIdentity, targetLabel } from './ssh';
import { SshTarget } from './types';

/** One generation of the system profile. */
export interface Generation {
  readonly number: number;
  readonly system: string;
  /** When it was made, as a Unix time in seconds. */
  readonly created: number;
  readonly current: boolean;
}

/** What a host runs. */
export interface HostStatus {
  readonly host: string;
  /** /run/current-system: what is active now. */
  readonly currentSystem?: string;
  /** /run/booted-system: what the machine booted. */
  readonly bootedSystem?: string;
  /** The profile's generation, which the next boot starts. */
  readonly generation?: number;
  readonly generations: readonly Generation[];
  /** The host key the host presented. */
  readonly hostKey: string;
}

/** Prints what the host runs, for parseStatus. */
export const STATUS_SCRIPT = `echo "current $([ -e /run/current-system ] && readlink -f /run/current-system)"
echo "booted $([ -e /run/booted-system ] && readlink -f /run/booted-system)"
echo "profile $(readlink ${PROFILE} 2>/dev/null)"
for l in ${PROFILE}-*-link; do
  [ -L "$l" ] && echo "gen $(basename "$l") $(readlink -f "$l") $(stat -c %Y "$l")"
done
true`;

/** Reads what the host runs through an open session. */
export async function readStatus(session: SshSession, host: string): Promise<HostStatus> {
  return parseStatus(await session.check(STATUS_SCRIPT), host, session.hostKey);
}

/** What the host runs, from the output of STATUS_SCRIPT. */
export function parseStatus(out: string, host: string, hostKey: string): HostStatus {
  const value = (key: string) => out.match(new RegExp(`^${key} (.+)$`, 'm'))?.[1]?.trim() || undefined;
  const generation = generationOf(value('profile') ?? '');
  const generations = [...out.matchAll(/^gen (\S+) (\S+) (\d+)$/gm)]
    .map(([, link, system, created]) => ({ number: generationOf(link)!, system, created: Number(created), current: generationOf(link) === generation }))
    .sort((a, b) => a.number - b.number);
  return { host, currentSystem: value('current'), bootedSystem: value('booted'), generation, generations, hostKey };
}

/** Connects to a host and reports what it runs. */
export async function status(target: SshTarget): Promise<HostStatus> {
  const session = await SshSession.connect(target);
  try {
    return await readStatus(session, targetLabel(target));
  } finally {
    session.close();
  }
}

/** Reads at once, at most: each holds an SSH connection. */
const readSlot = limiter(64);
/** Reads started ahead, by target identity. */
const readsAhead = new Map<string, ReadAhead>();
interface ReadAhead {
  readonly started: number;
  readonly read: Promise<HostStatus>;
}
/** An answer read ahead is used this long at most: the host may have changed since. */
const READ_AHEAD_FRESH_MS = 30_000;

/**
 * Starts reading what each host runs, all at once, for a caller that will ask one host at
 * a time (Terraform refreshes ten resources at once): statusReadAhead then takes the
 * answer instead of connecting again.
 */
export function readAhead(targets: readonly SshTarget[]): void {
  for (const target of targets) {
    const key = targetIdentity(target);
    if (fresh(readsAhead.get(key))) continue;
    const read = readSlot(() => status(target));
    read.catch(() => undefined); // statusReadAhead's caller gets the error
    readsAhead.set(key, { started: Date.now(), read });
  }
}

/** What the host runs: the answer read ahead if there is a fresh one (taken once), else read now. */
export function statusReadAhead(target: SshTarget): Promise<HostStatus> {
  const key = targetIdentity(target);
  const ahead = readsAhead.get(key);
  readsAhead.delete(key);
  return fresh(ahead) ? ahead.read : status(target);
}

function fresh(ahead: ReadAhead | undefined): ahead is ReadAhead {
  return ahead !== undefined && Date.now() - ahead.started < READ_AHEAD_FRESH_MS;
}

/**
 * Switches the host back to an earlier generation and activates it: the one before the
 * current generation, or `generation` when given.
 */
export async function rollback(target: SshTarget, generation?: number): Promise<HostStatus> {
  const host = targetLabel(target);
  const session = await SshSession.connect(target);
  let lock: HostLock | undefined;
  try {
    lock = await lockHost(session, host, 0, randomBytes(8).toString('hex'));
    const before = await readStatus(session, host);
    const wanted = generation ?? before.generations.filter((g) => before.generation !== undefined && g.number < before.generation).pop()?.number;
    const available = before.generations.map((g) => g.number).join(', ') || 'none';
    if (wanted === undefined || !before.generations.some((g) => g.number === wanted)) {
      throw new DeployError(
        'rollback',
        host,
        generation === undefined ? `there is no generation before the current one (generations: ${available}).` : `generation ${generation} does not exist (generations: ${available}).`,
        'Pick one of the listed generations.',
      );
    }
    // A generation that fails to activate must not stay the one the next boot starts.
    const back = before.generation !== undefined ? `nix-env -p ${PROFILE} --switch-generation ${before.generation} && ${PROFILE}/bin/switch-to-configuration switch >/dev/null 2>&1` : 'true';
    const result = await session.run(
      `nix-env -p ${PROFILE} --switch-generation ${wanted} && ${PROFILE}/bin/switch-to-configuration switch 2>&1
rc=$?
if [ $rc -ne 0 ]; then ${back}; fi
exit $rc`,
    );
    if (result.code !== 0) {
      throw new DeployError(
        'rollback',
        host,
        `activating generation ${wanted} failed (exit code ${result.code}): ${tail(result.stdout + result.stderr, 3)}. The host is back on generation ${before.generation}.`,
        'Look at that generation\'s activation output above; pick another generation or deploy a fixed system.',
      );
    }
    return await readStatus(session, host);
  } finally {
    lock?.release();
    session.close();
  }
}
