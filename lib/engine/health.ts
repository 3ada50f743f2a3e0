import { DeployError } from './errors';
import { SshSession } from './ssh';
import { HealthCheck } from './types';

/** A check's name in messages. */
function describeCheck(check: HealthCheck): string {
  return 'command' in check ? `command \`${check.command}\`` : `GET ${check.http.url}`;
}

async function attempt(session: SshSession, check: HealthCheck): Promise<string | undefined> {
  const timeoutSeconds = check.timeoutSeconds ?? 10;
  if ('command' in check) {
    try {
      const result = await session.run(check.command, { timeoutSeconds });
      return result.code === 0 ? undefined : `exit code ${result.code}${result.stderr.trim() ? `: ${result.stderr.trim().split('\n').pop()}` : ''}`;
    } catch (error) {
      return (error as Error).message;
    }
  }
  const expected = check.http.expectStatus ?? 200;
  try {
    const response = await fetch(check.http.url, { signal: AbortSignal.timeout(timeoutSeconds * 1000) });
    await response.arrayBuffer();
    return response.status === expected ? undefined : `status ${response.status}, expected ${expected}`;
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    return cause ?? (error as Error).message;
  }
}

/**
 * Runs the checks in order, each with its retries: commands on the host, HTTP requests
 * from the deployer. Throws a DeployError naming the first check that never passed.
 */
export async function runHealthChecks(session: SshSession, checks: readonly HealthCheck[], host: string, report: (message: string) => void): Promise<void> {
  for (const check of checks) {
    const tries = (check.retries ?? 10) + 1;
    let failure: string | undefined;
    for (let i = 1; i <= tries; i++) {
      failure = await attempt(session, check);
      if (failure === undefined) break;
      report(`${describeCheck(check)}: try ${i} of ${tries} failed (${failure})`);
      if (i < tries) await new Promise((r) => setTimeout(r, (check.intervalSeconds ?? 1) * 1000));
    }
    if (failure !== undefined) {
      throw new DeployError('health', host, `the health check ${describeCheck(check)} failed ${tries} times; the last time: ${failure}.`);
    }
    report(`${describeCheck(check)} passed`);
  }
}
