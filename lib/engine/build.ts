import * as fs from 'fs';
import * as path from 'path';
import { copyClosure, CopyStats } from './copy';
import { DeployError, nixErrorText, tail } from './errors';
import { localValidPaths, nixStore } from './local-nix';
import { shellJoin } from './shell';
import { SshSession } from './ssh';
import { localStore } from './store';
import { ProgressEvent } from './types';

const FAILED_DRV = /builder for '(\/nix\/store\/[^']+\.drv)' failed/;

/**
 * Builds a system on the deployer, rooted under `gcRootDir` so that a garbage collection
 * on the deployer does not take it away before the copy.
 */
export async function buildLocally(drvPath: string, outPath: string, gcRootDir: string, host?: string): Promise<void> {
  if ((await localValidPaths([outPath])).has(outPath)) return;
  fs.mkdirSync(gcRootDir, { recursive: true });
  const root = path.join(gcRootDir, path.basename(outPath));
  const result = await nixStore(['--realise', drvPath, '--add-root', root, '--indirect']);
  if (result.exitCode === 0) return;
  const failed = FAILED_DRV.exec(result.stderr)?.[1];
  const log = failed ? (await nixStore(['--read-log', failed])).stdout : '';
  throw buildError(drvPath, failed, log || result.stderr, 'the deployer', host);
}

/**
 * Builds a system on a remote host (the target or a build host): its derivations are
 * copied there first, then realised there. Returns what the copy of derivations sent.
 */
export async function buildRemotely(
  session: SshSession,
  where: string,
  drvPath: string,
  outPath: string,
  report: (event: Omit<ProgressEvent, 'host'>) => void,
  host?: string,
): Promise<CopyStats> {
  const present = (await session.check(shellJoin(['nix-store', '--check-validity', '--print-invalid', outPath]))).trim() === '';
  if (present) return { paths: 0, bytes: 0 };
  const sent = await copyClosure(localStore, session, [drvPath], report);
  report({ step: 'build', message: `building ${path.basename(outPath)} on ${where}` });
  const result = await session.run(shellJoin(['nix-store', '--realise', drvPath]) + ' >/dev/null');
  if (result.code === 0) return sent;
  const failed = FAILED_DRV.exec(result.stderr)?.[1];
  const log = failed ? (await session.run(shellJoin(['nix-store', '--read-log', failed]))).stdout : '';
  throw buildError(drvPath, failed, log || result.stderr, where, host);
}

function buildError(drvPath: string, failed: string | undefined, log: string, where: string, host?: string): DeployError {
  if (!failed) return new DeployError('build', host, `building ${drvPath} on ${where} failed: ${nixErrorText(log)}`);
  return new DeployError(
    'build',
    host,
    `building ${drvPath} on ${where} failed, because the derivation ${failed} failed. The end of its log: ${tail(log)}`,
    `Fix that package; \`nix log ${failed}\` shows the whole log.`,
  );
}
