import * as os from 'os';
import { ClientChannel } from 'ssh2';
import { STATE_DIR } from './activation';
import { DeployError } from './errors';
import { shellQuote } from './shell';
import { SshSession } from './ssh';

const LOCK = `${STATE_DIR}/lock`;

/** A held deploy lock on a host; released by `release()` or when the connection ends. */
export interface HostLock {
  release(): void;
  /** What the `report` script printed once the lock was held. */
  readonly report: string;
}

/**
 * Takes the host's deploy lock, waiting up to `waitSeconds` for another deployer to let
 * go. The lock is an flock held by a process whose standard input is our channel: if the
 * deployer dies, the connection drops and the lock is free again. `token` names one
 * deploy: taking the lock again with it (after a lost connection) ends the old holder at
 * once, which sshd may otherwise keep until TCP notices the connection is gone.
 * `report` runs once the lock is held, in the same round trip: what the host runs is
 * then read by the deploy that may change it.
 */
export async function lockHost(session: SshSession, host: string, waitSeconds: number, token: string, report = ''): Promise<HostLock> {
  const owner = `${os.userInfo().username}@${os.hostname()} (pid ${process.pid}, since ${new Date().toISOString()})`;
  const marker = `cdktf-nixos-locked-${token}`;
  // lock.owner is "TOKEN HOLDER-PID OWNER": the holder is the shell that becomes `cat`.
  const hold = `echo "${token} $$ "${shellQuote(owner)} > ${LOCK}.owner
${report}
echo ${marker}; exec cat >/dev/null`;
  const script = `mkdir -p ${STATE_DIR}
if read -r t pid rest < ${LOCK}.owner 2>/dev/null && [ "$t" = ${token} ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = cat ]; then kill "$pid"; fi
exec flock -w ${waitSeconds} -E 75 ${LOCK} sh -c ${shellQuote(hold)}`;
  const channel: ClientChannel = await session.open(script);
  return new Promise((resolve, reject) => {
    let output = '';
    channel.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.endsWith(`${marker}\n`)) resolve({ release: () => channel.end(), report: output.slice(0, -`${marker}\n`.length) });
    });
    channel.on('close', async (code: number | null) => {
      if (output.endsWith(`${marker}\n`)) return;
      if (code === 75) {
        const holder = (await session.run(`cut -d' ' -f3- ${LOCK}.owner 2>/dev/null`).catch(() => ({ stdout: '' }))).stdout.trim();
        reject(
          new DeployError(
            'lock',
            host,
            `another deploy holds the host's lock${holder ? `: ${holder}` : ''}; waited ${waitSeconds} s.`,
            'Let it finish and try again, or allow a longer wait (lockWaitSeconds).',
          ),
        );
      } else if (code === null || code === undefined) {
        reject(new DeployError('lock', host, `the connection was lost while taking the deploy lock (${session.lost ?? 'channel closed'}).`, 'Check the network to the host and deploy again.'));
      } else {
        reject(new DeployError('lock', host, `taking the deploy lock failed (exit code ${code}).`, 'Check that flock (util-linux) is installed on the host.'));
      }
    });
  });
}
