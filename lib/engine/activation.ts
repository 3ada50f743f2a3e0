import { randomBytes } from 'crypto';
import { restoreKeysScript } from './keys';
import { shellQuote } from './shell';
import { SshSession } from './ssh';
import { Action } from './types';

/** The NixOS system profile. */
export const PROFILE = '/nix/var/nix/profiles/system';
/** The engine's own state on the host: markers of the magic rollback, the lock. On tmpfs. */
export const STATE_DIR = '/run/cdktf-nixos';

/** What was running before an activation, so that it can be put back. */
export interface Previous {
  readonly generation?: number;
  /** What /run/current-system pointed to. */
  readonly system?: string;
  /** What the profile's current generation holds. */
  readonly profileSystem?: string;
}

/** One activation's identity on the host, naming its marker files. */
export interface Activation {
  readonly token: string;
  readonly action: Action;
  readonly outPath: string;
  readonly previous: Previous;
  /** Key files this deploy wrote; a rollback puts back what they replaced. */
  readonly keyFiles: readonly string[];
}

/** What switch-to-configuration did. */
export interface ActivationOutcome {
  readonly code: number;
  readonly output: string;
  /** The profile generation made for it (switch and boot). */
  readonly generation?: number;
  /** It ran out of time and was stopped on the host. */
  readonly timedOut?: boolean;
}

const GENERATION_MARKER = 'cdktf-nixos-generation=';

/** `system-12-link` → 12. */
export function generationOf(link: string): number | undefined {
  const match = /system-(\d+)-link$/.exec(link);
  return match ? Number(match[1]) : undefined;
}

/** A fresh activation token. */
export function newActivation(action: Action, outPath: string, previous: Previous, keyFiles: readonly string[] = []): Activation {
  return { token: randomBytes(8).toString('hex'), action, outPath, previous, keyFiles };
}

/** boot changed nothing that runs: only the boot entry goes back to the restored profile. */
const BOOT_ONLY = `if [ -e "$P" ]; then exec "$P/bin/switch-to-configuration" boot; fi
exit 0`;

/**
 * The script that puts the previous system back: it restores the profile (dropping the
 * generation this activation made) and re-activates what ran before.
 */
export function rollbackScript(activation: Activation): string {
  const { token, previous } = activation;
  const prevSystem = previous.system ? shellQuote(previous.system) : '';
  return `
P=${PROFILE}; D=${STATE_DIR}
${restoreKeysScript(activation.keyFiles)}
new=$(cat "$D/${token}.generation" 2>/dev/null || true)
if [ -n "$new" ]; then
  ${previous.generation !== undefined ? `nix-env -p "$P" --switch-generation ${previous.generation}` : 'rm -f "$P"'}
  nix-env -p "$P" --delete-generations "$new" 2>/dev/null || rm -f "$P-$new-link"
fi
${activation.action === 'boot' ? BOOT_ONLY : ''}
prev=${prevSystem || "''"}
if [ -z "$prev" ]; then
  echo "there is no previous system to return to (this was the host's first deploy)" >&2
  exit 3
fi
if [ "$(readlink -f "$P" 2>/dev/null)" = "$prev" ]; then
  "$prev/bin/switch-to-configuration" switch
else
  if [ -n "$new" ] && [ -e "$P" ]; then "$P/bin/switch-to-configuration" boot; fi
  "$prev/bin/switch-to-configuration" test
fi`;
}

/**
 * The magic rollback's watchdog, started on the host before activation. Once activation
 * has finished it waits `timeoutSeconds`; unless a new SSH login confirmed by then, it
 * puts the previous system back by itself.
 */
function watchdogScript(activation: Activation, timeoutSeconds: number, activationTimeoutSeconds: number): string {
  const t = activation.token;
  const ticks = Math.ceil((activationTimeoutSeconds + 15) * 5);
  // A later deploy may have replaced this system meanwhile: then there is nothing to undo.
  const body = `
D=${STATE_DIR}; i=0
while [ ! -e "$D/${t}.activated" ] && [ $i -lt ${ticks} ]; do sleep 0.2; i=$((i+1)); done
sleep ${timeoutSeconds}
if mv "$D/${t}.pending" "$D/${t}.expired" 2>/dev/null; then
  if [ "$(readlink -f /run/current-system)" != ${shellQuote(activation.outPath)} ]; then
    echo "a newer system runs; nothing to roll back" > "$D/${t}.rollback.log"
    echo 0 > "$D/${t}.rolledback"
    exit 0
  fi
  ( ${rollbackScript(activation)}
  ) > "$D/${t}.rollback.log" 2>&1
  echo $? > "$D/${t}.rolledback"
fi`;
  return `echo > ${STATE_DIR}/${t}.pending
setsid sh -c ${shellQuote(body)} </dev/null >/dev/null 2>&1 &`;
}

/**
 * Activates `outPath` with `action`. switch and boot first make it a new generation of
 * the system profile; test activates without one; dry-activate only reports.
 */
export async function activate(
  session: SshSession,
  outPath: string,
  action: Action,
  activation: Activation,
  options: { magicRollbackSeconds?: number; timeoutSeconds: number },
): Promise<ActivationOutcome> {
  const out = shellQuote(outPath);
  const t = activation.token;
  const setProfile =
    action === 'switch' || action === 'boot'
      ? `nix-env -p ${PROFILE} --set ${out} || exit 90
gen=$(readlink ${PROFILE} | sed 's/^system-\\(.*\\)-link$/\\1/')
echo "$gen" > ${STATE_DIR}/${t}.generation
echo "${GENERATION_MARKER}$gen"`
      : '';
  const watchdog = options.magicRollbackSeconds !== undefined ? watchdogScript(activation, options.magicRollbackSeconds, options.timeoutSeconds) : '';
  // switch-to-configuration runs detached from this channel: a dropped connection must not
  // kill it half-way (SIGHUP, or SIGPIPE on its next line of output).
  const detached = `timeout -k 10 ${Math.ceil(options.timeoutSeconds)} ${out}/bin/switch-to-configuration ${action} > ${STATE_DIR}/${t}.log 2>&1
echo $? > ${STATE_DIR}/${t}.rc
touch ${STATE_DIR}/${t}.activated`;
  const script = `mkdir -p ${STATE_DIR}
${watchdog}
${setProfile}
setsid sh -c ${shellQuote(detached)} </dev/null >/dev/null 2>&1 &
while [ ! -e ${STATE_DIR}/${t}.activated ]; do sleep 0.1; done
cat ${STATE_DIR}/${t}.log
exit "$(cat ${STATE_DIR}/${t}.rc)"`;
  // The host stops a hanging activation itself (exit code 124); this limit only covers a lost host.
  const result = await session.run(script, { timeoutSeconds: options.timeoutSeconds + 30 });
  const marker = result.stdout.split('\n').find((l) => l.startsWith(GENERATION_MARKER));
  const output = result.stdout
    .split('\n')
    .filter((l) => !l.startsWith(GENERATION_MARKER))
    .join('\n')
    .trim();
  return {
    code: result.code,
    output: [output, result.stderr.trim()].filter(Boolean).join('\n'),
    generation: marker ? Number(marker.slice(GENERATION_MARKER.length)) : undefined,
    timedOut: result.code === 124,
  };
}

/**
 * Confirms an activation from a new connection, then runs `then` in the same round trip.
 * Null if the watchdog got there first (and `then` did not run); else what `then` printed.
 */
export async function confirm(session: SshSession, activation: Activation, then = ''): Promise<string | null> {
  const t = activation.token;
  const result = await session.run(`mv ${STATE_DIR}/${t}.pending ${STATE_DIR}/${t}.confirmed 2>/dev/null || exit 97\n${then}`);
  return result.code === 97 ? null : result.stdout;
}

/** Stops the watchdog before the deployer rolls back itself; false if it already acts. */
export async function disarm(session: SshSession, activation: Activation): Promise<boolean> {
  const t = activation.token;
  const d = STATE_DIR;
  // Neither marker: no watchdog was armed. An expired one: the watchdog is rolling back.
  const result = await session.run(`if mv ${d}/${t}.pending ${d}/${t}.cancelled 2>/dev/null; then exit 0; elif [ -e ${d}/${t}.expired ]; then exit 1; fi`);
  return result.code === 0;
}

/** Waits for the watchdog's own rollback to finish; returns its log, or undefined on time-out. */
export async function awaitWatchdogRollback(session: SshSession, activation: Activation, timeoutSeconds: number): Promise<{ code: number; log: string } | undefined> {
  const t = activation.token;
  const ticks = Math.ceil(timeoutSeconds * 5);
  const result = await session.run(
    `i=0; while [ ! -e ${STATE_DIR}/${t}.rolledback ] && [ $i -lt ${ticks} ]; do sleep 0.2; i=$((i+1)); done
[ -e ${STATE_DIR}/${t}.rolledback ] || exit 99
cat ${STATE_DIR}/${t}.rolledback; cat ${STATE_DIR}/${t}.rollback.log`,
  );
  if (result.code !== 0) return undefined;
  const [code, ...log] = result.stdout.split('\n');
  return { code: Number(code), log: log.join('\n').trim() };
}

/** Rolls back from the deployer's side; the result's code is 0 when the old system runs again. */
export async function rollBack(session: SshSession, activation: Activation): Promise<{ code: number; output: string }> {
  const result = await session.run(rollbackScript(activation) + ' 2>&1');
  return { code: result.code, output: result.stdout.trim() };
}

/**
 * The script that deletes all but the newest `keep` generations and collects what nothing
 * needs any more. The running system stays a root, as on NixOS, even when it came from `test`.
 */
export function collectScript(keep: number): string {
  return `[ "$(ls -d ${PROFILE}-*-link | wc -l)" -gt ${keep} ] || { echo "nothing to collect"; exit 0; }
mkdir -p /nix/var/nix/gcroots && { [ -L /nix/var/nix/gcroots/current-system ] || ln -s /run/current-system /nix/var/nix/gcroots/current-system; }
nix-env -p ${PROFILE} --delete-generations +${keep} 2>&1 && nix-store --gc 2>&1 | tail -n 1`;
}
