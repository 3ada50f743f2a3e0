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
}

/**
 * Takes the host's deploy lock, waiting up to `waitSeconds` for another deployer to let
 * go. The lock is an flock held by a process whose standard input is our channel: if the
 * deployer dies, the connection drops and the lock is free again. `token` names one
 * deploy: taking the lock again with it (after a lost connection) ends the old holder at
 * once, which sshd may otherwise keep until TCP notices the connection is gone.
 */
export async function lockHost(session: SshSession, host: string, waitSeconds: number, token: string): Promise<HostLock> {
  const owner = `${os.userInfo().username}@${os.hostname()} (pid ${process.pid}, since ${new Date().toISOString()})`;
  // lock.owner is "TOKEN HOLDER-PID OWNER": the holder is the shell that becomes `cat`.
  const hold = `echo "${token} $$ "${shellQuote(owner)} > ${LOCK}.owner; echo locked; exec cat >/dev/null`;
  const script = `mkdir -p ${STATE_DIR}
if read -r t pid rest < ${LOCK}.owner 2>/dev/null && [ "$t" = ${token} ] && [ "$(cat /proc/$pid/comm 2>/dev/null)" = cat ]; then kill "$pid"; fi
exec flock -w ${waitSeconds} -E 75 ${LOCK} sh -c ${shellQuote(hold)}`;
  const channel: ClientChannel = await session.open(script);
  return new Promise((resolve, reject) => {
    let output = '';
    channel.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('locked\n')) resolve({ release: () => channel.end() });
    });
    channel.on('close', async (code: number | null) => {
      if (output.includes('locked\n')) return;
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
