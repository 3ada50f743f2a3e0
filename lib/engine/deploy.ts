import { randomBytes } from 'crypto';
import * as os from 'os';
import * as path from 'path';
import {
  activate,
  Activation,
  awaitWatchdogRollback,
  collectScript,
  confirm,
  disarm,
  newActivation,
  rollBack,
} from './activation';
import { pushToCache, substituteOnHost } from './binary-cache';
import { closeFetchConnections, fetchAhead, takeFetchAhead, takeFetchConnection } from './fetch-ahead';
import { buildLocally, buildRemotely } from './build';
import { copyClosure, CopyStats } from './copy';
import { DeployError, DeployStep, tail } from './errors';
import { DEFAULT_EVAL_CACHE_DIR, evaluate, Evaluation, parseFlakeRef } from './evaluate';
import { HostLock, lockHost } from './host-lock';
import { commitKeys, commitKeysScript, restoreKeysScript, uploadKeys, validateKey } from './keys';
import { HostStatus, parseStatus, STATUS_SCRIPT } from './status';
import { localValidPaths } from './local-nix';
import { runHealthChecks } from './health';
import { shellJoin } from './shell';
import { describeEndpoint, SshSession, targetLabel } from './ssh';
import { localStore, remoteStore, StoreSource } from './store';
import { Action, DeployRequest, DeployResult, EngineOptions, ProgressEvent, SshTarget } from './types';

const ACTIONS: readonly Action[] = ['switch', 'boot', 'test', 'dry-activate'];

type Report = (event: Omit<ProgressEvent, 'host'>) => void;

/** Runs one step, turning any error that is not already a DeployError into one of this step. */
async function step<T>(name: DeployStep, host: string, report: Report, message: string, work: () => Promise<T>): Promise<T> {
  report({ step: name, message });
  try {
    return await work();
  } catch (error) {
    if (error instanceof DeployError) throw error;
    throw new DeployError(name, host, (error as Error).message.replace(/\.?$/, '.'));
  }
}

/**
 * Checks a request before anything runs, so that bad input fails at once with a message
 * instead of half-way through a deploy.
 */
export function validateRequest(request: DeployRequest): Action {
  const host = targetLabel(request.target);
  const action = request.action ?? 'switch';
  if ('flake' in request.system) parseFlakeRef(request.system.flake);
  if (!ACTIONS.includes(action)) {
    throw new DeployError('activate', host, `the action "${action}" is unknown.`, `Use one of ${ACTIONS.join(', ')}.`);
  }
  if (request.magicRollback && !(request.magicRollback.timeoutSeconds > 0)) {
    throw new DeployError('confirm', host, `magicRollback.timeoutSeconds must be above 0 (it is ${request.magicRollback.timeoutSeconds}).`, 'Use a number of seconds such as 30, or false to turn it off.');
  }
  if (request.keepGenerations !== undefined && !(Number.isInteger(request.keepGenerations) && request.keepGenerations >= 1)) {
    throw new DeployError('activate', host, `keepGenerations must be a whole number of at least 1 (it is ${request.keepGenerations}).`, 'The running generation always stays.');
  }
  if (request.binaryCache && request.buildOn !== undefined && request.buildOn !== 'local') {
    throw new DeployError(
      'copy',
      host,
      'a binaryCache is pushed from the deployer\'s store, but buildOn builds the closure elsewhere, so it would never reach the cache.',
      "Build locally (buildOn 'local') when using a binary cache, or drop the binaryCache.",
    );
  }
  for (const [name, spec] of Object.entries(request.keys ?? {})) validateKey(name, spec, host);
  return action;
}

/**
 * Deploys one system to one host: evaluate, build, copy what is missing, upload keys,
 * activate, confirm over a fresh connection, check health. A failed activation, failed
 * confirmation or failed health check puts the previous system back, so the host is on
 * its old system or its new one. Cancelling through `options.signal` stops the work
 * before activation; an activation that has started is finished first.
 */
export async function deploy(request: DeployRequest, options: EngineOptions = {}): Promise<DeployResult> {
  const host = targetLabel(request.target);
  const report: Report = (event) => options.onProgress?.({ host, ...event });
  const signal = options.signal;
  const action = validateRequest(request);
  const cacheDir = options.evalCacheDir ?? DEFAULT_EVAL_CACHE_DIR;
  if (signal?.aborted) throw new DeployError('cancelled', host, 'the deploy was cancelled before it started; the host was not touched.');

  // Evaluation and connecting are independent and both take a while.
  const [evaluated, connected] = await Promise.allSettled([
    step('evaluate', host, report, 'evaluating', () => evaluate(request.system, cacheDir, host)),
    step('connect', host, report, `connecting to ${describeEndpoint(request.target)}`, async () => (await takeFetchConnection(request.target)) ?? SshSession.connect(request.target)),
  ]);
  if (evaluated.status === 'rejected' || connected.status === 'rejected') {
    if (connected.status === 'fulfilled') connected.value.close();
    throw evaluated.status === 'rejected' ? evaluated.reason : (connected as PromiseRejectedResult).reason;
  }
  const evaluation = evaluated.value;
  let session = connected.value;
  let lock: HostLock | undefined;
  let buildSession: SshSession | undefined;
  try {
    signal?.throwIfAborted();
    const lockToken = randomBytes(8).toString('hex');
    // One round trip: the lock, whether the host has Nix, and what it runs.
    lock = await step('lock', host, report, 'taking the deploy lock', () => lockHost(session, host, request.lockWaitSeconds ?? 0, lockToken, HOST_REPORT));
    report({ step: 'lock', message: 'holding the deploy lock' });
    requireNix(lock.report, session, host);
    const running = parseStatus(lock.report, host, session.hostKey);

    const buildOn = request.buildOn ?? 'local';
    let source: StoreSource = localStore;
    let derivationsSent: CopyStats = { paths: 0, bytes: 0 };
    if (evaluation.drvPath) {
      const drvPath = evaluation.drvPath;
      if (buildOn === 'local') {
        await step('build', host, report, 'building on the deployer', () => buildLocally(drvPath, evaluation.outPath, path.join(cacheDir, 'gcroots'), host));
      } else if (buildOn === 'target') {
        derivationsSent = await step('build', host, report, 'building on the host', () => buildRemotely(session, 'the host', drvPath, evaluation.outPath, report, host));
      } else {
        const builder = await step('connect', host, report, `connecting to the build host ${describeEndpoint(buildOn.buildHost)}`, () => SshSession.connect(buildOn.buildHost));
        buildSession = builder;
        const where = `the build host ${targetLabel(buildOn.buildHost)}`;
        await step('build', host, report, `building on ${where}`, () => buildRemotely(builder, where, drvPath, evaluation.outPath, report, host));
        source = remoteStore(builder, where);
      }
    }
    signal?.throwIfAborted();

    let copied: CopyStats = { paths: 0, bytes: 0 };
    const retries = request.copyRetries ?? 2;
    // A system the host runs or keeps as a generation is whole in its store.
    const onHost = running.currentSystem === evaluation.outPath || running.generations.some((g) => g.system === evaluation.outPath);
    if (onHost) report({ step: 'copy', message: 'the host has the closure already' });
    for (let attempt = 0; !onHost; attempt++) {
      try {
        copied = await step('copy', host, report, 'copying the closure', () => copyToHost(request, evaluation, source, session, report, signal));
        break;
      } catch (error) {
        signal?.throwIfAborted();
        if (!session.lost || attempt >= retries) throw explainCopyFailure(error, host, session.lost, attempt + 1);
        report({ step: 'copy', message: `the connection broke (${session.lost}); trying again (${attempt + 1} of ${retries})` });
        lock?.release();
        session.close();
        session = await step('connect', host, report, 'connecting again', () => SshSession.connect(request.target));
        // Our own holder on the broken connection is ended by the token; others are waited for.
        lock = await step('lock', host, report, 'taking the deploy lock again', () => lockHost(session, host, Math.max(request.lockWaitSeconds ?? 0, 15), lockToken));
      }
    }

    // dry-activate changes nothing on the host, keys included.
    let keyFiles: string[] = [];
    if (action !== 'dry-activate' && request.keys && Object.keys(request.keys).length > 0) {
      const keys = request.keys;
      keyFiles = await step('keys', host, report, `uploading ${Object.keys(keys).length} keys`, () => uploadKeys(session, keys, host));
    }
    signal?.throwIfAborted();

    // From here on the host changes: no cancellation until it is on a whole system.
    const result = await step('activate', host, report, `activating (${action})`, () => activateAndVerify(request, action, evaluation, session, running, report, keyFiles));
    return {
      ...result,
      drvPath: evaluation.drvPath,
      hostKey: session.hostKey,
      pathsCopied: copied.paths + derivationsSent.paths,
      bytesSent: copied.bytes + derivationsSent.bytes,
    };
  } catch (error) {
    if (signal?.aborted && !(error instanceof DeployError)) {
      throw new DeployError('cancelled', host, 'the deploy was cancelled before activation; the host is on the system it had.');
    }
    throw error;
  } finally {
    lock?.release();
    session.close();
    buildSession?.close();
  }
}

/** Says what a failed copy means and what to do about it, for the failures Nix and SSH report. */
function explainCopyFailure(error: unknown, host: string, lost: string | undefined, attempts: number): unknown {
  if (!(error instanceof DeployError) || error.step !== 'copy' || error.fix) return error;
  const problem = error.problem;
  if (/no space left on device/i.test(problem)) {
    return new DeployError('copy', host, `the host's Nix store has no space left: ${problem}`, 'Free space there (nix-collect-garbage -d, or a lower keepGenerations) or give /nix more room, then deploy again. The system running on the host is unchanged.');
  }
  if (/read-only file system|remounting \S+ writable|readonly database/i.test(problem)) {
    return new DeployError('copy', host, `the host's Nix store is read-only: ${problem}`, '/nix on the host must be writable for a deploy; check how it is mounted. The system running on the host is unchanged.');
  }
  if (lost) {
    return new DeployError(
      'copy',
      host,
      `${problem.replace(/\.$/, '')}, ${attempts === 1 ? 'and the copy was not tried again' : `on each of ${attempts} tries`}.`,
      'Check the network to the host and deploy again: paths that arrived whole stay there and are not sent again (copyRetries allows more tries). The system running on the host is unchanged.',
    );
  }
  return new DeployError('copy', host, problem, "Check the host's Nix store (space, permissions) and deploy again. The system running on the host is unchanged.");
}

const HOST_REPORT = `if command -v nix-store >/dev/null && command -v nix-env >/dev/null; then echo "nix yes"; else echo "nix no"; fi
${STATUS_SCRIPT}`;

/** Refuses a host without Nix, from the lock's HOST_REPORT. */
function requireNix(hostReport: string, session: SshSession, host: string): void {
  if (/^nix yes$/m.test(hostReport)) return;
  throw new DeployError(
    'connect',
    host,
    `the host has no Nix: nix-store and nix-env are not on ${session.target.user && session.target.user !== 'root' ? 'sudo\'s' : "root's"} PATH there.`,
    'Install NixOS on the machine first (for example with nixos-anywhere or nixos-infect), or deploy to a NixOS host.',
  );
}

async function copyToHost(
  request: DeployRequest,
  evaluation: Evaluation,
  source: StoreSource,
  session: SshSession,
  report: Report,
  signal?: AbortSignal,
): Promise<CopyStats> {
  const outPath = evaluation.outPath;
  const host = targetLabel(request.target);
  if (request.binaryCache) {
    const cache = request.binaryCache;
    const ahead = takeFetchAhead(request.target, outPath);
    if (ahead) {
      report({ step: 'copy', message: 'waiting for the fetch from the binary cache that started ahead' });
      if (await ahead) return { paths: 0, bytes: 0 };
    }
    report({ step: 'copy', message: `pushing to the binary cache ${cache.uri}` });
    await pushToCache(cache, outPath, host);
    report({ step: 'copy', message: 'the host fetches from the binary cache' });
    // A realised path means a whole closure: nothing is left to ask about or copy.
    const fetched = await substituteOnHost(session, outPath, cache);
    if (fetched.realised) return { paths: 0, bytes: 0 };
    report({ step: 'copy', message: `the host could not fetch all of it from the binary cache (${fetched.problem}); the deployer sends the rest` });
  } else if (request.substituteOnTarget) {
    report({ step: 'copy', message: "the host fetches what it can from its own substituters" });
    if ((await substituteOnHost(session, outPath)).realised) return { paths: 0, bytes: 0 };
  }
  if (source === localStore && !evaluation.drvPath && !(await localValidPaths([outPath])).has(outPath)) {
    const onHost = (await session.run(shellJoin(['nix-store', '--check-validity', outPath]))).code === 0;
    if (onHost) return { paths: 0, bytes: 0 };
    throw new DeployError(
      'copy',
      host,
      `the store path ${outPath} is neither in the deployer's store nor on the host.`,
      'Build it on the deployer first (or copy it there), or give a binaryCache or substituteOnTarget from which the host can fetch it.',
    );
  }
  if (request.buildOn === 'target' && evaluation.drvPath) return { paths: 0, bytes: 0 };
  return copyClosure(source, session, [outPath], report, signal);
}

type Activated = Pick<DeployResult, 'host' | 'action' | 'outPath' | 'generation' | 'dryActivateOutput'>;

async function activateAndVerify(
  request: DeployRequest,
  action: Action,
  evaluation: Evaluation,
  session: SshSession,
  running: HostStatus,
  report: Report,
  keyFiles: readonly string[],
): Promise<Activated> {
  const outPath = evaluation.outPath;
  const host = running.host;
  const previous = {
    generation: running.generation,
    system: running.currentSystem,
    profileSystem: running.generations.find((g) => g.current)?.system,
  };
  const activation = newActivation(action, outPath, previous, keyFiles);
  const live = action === 'switch' || action === 'test';
  if (alreadyActive(action, outPath, previous)) {
    try {
      if (request.healthChecks?.length) await runHealthChecks(session, request.healthChecks, host, (message) => report({ step: 'health', message }));
    } catch (error) {
      // The system did not change, the keys may have: they go back with the failure.
      await session.run(restoreKeysScript(keyFiles)).catch(() => undefined);
      throw error;
    }
    await commitKeys(session, keyFiles);
    report({ step: 'done', message: `${outPath} is already active${previous.generation !== undefined ? ` as generation ${previous.generation}` : ''}; nothing to activate` });
    return { host, action, outPath, generation: previous.generation };
  }
  const magic = live && request.magicRollback !== false ? (request.magicRollback || { timeoutSeconds: 30 }).timeoutSeconds : undefined;
  const timeoutSeconds = request.activationTimeoutSeconds ?? 600;

  let outcome;
  try {
    outcome = await activate(session, outPath, action, activation, { magicRollbackSeconds: magic, timeoutSeconds });
  } catch (error) {
    const undone = await undo(session, activation);
    throw new DeployError(
      'activate',
      host,
      `switch-to-configuration ${action} did not complete: ${(error as Error).message}. ${undone}`,
      'Check the connection to the host and what its activation does, then deploy again.',
    );
  }
  if (action === 'dry-activate') {
    return { host, action, outPath, generation: previous.generation, dryActivateOutput: outcome.output };
  }
  if (outcome.timedOut) {
    const undone = await undo(session, activation);
    throw new DeployError(
      'activate',
      host,
      `switch-to-configuration ${action} of ${outPath} did not finish within ${timeoutSeconds} s and was stopped; its last output: ${tail(outcome.output, 3)}. ${undone}`,
      'Find the step that hangs in that output and fix it, or allow more time with activationTimeoutSeconds.',
    );
  }
  if (outcome.code !== 0) {
    const undone = await undo(session, activation);
    throw new DeployError(
      'activate',
      host,
      `switch-to-configuration ${action} of ${outPath} exited with code ${outcome.code}: ${tail(outcome.output, 5)}. ${undone}`,
      'Fix the configuration; the activation output above says which unit or step failed.',
    );
  }
  const generation = outcome.generation ?? previous.generation;
  const keep = request.keepGenerations ?? 10;
  const finish = finishScript(action, keep, keyFiles);
  const checks = live && request.healthChecks?.length ? request.healthChecks : undefined;
  // Without health checks the deploy stands once confirmed: finish in the same round trip.
  // With them, the previous generation must stay until they pass.
  let finished: string | undefined;
  if (magic !== undefined) finished = await confirmFresh(request.target, session, activation, magic, host, report, checks ? '' : finish);
  if (checks) {
    try {
      await runHealthChecks(session, checks, host, (message) => report({ step: 'health', message }));
    } catch (error) {
      const undone = await undo(session, activation);
      throw new DeployError('health', host, `${(error as DeployError).problem} ${undone}`, 'Look at the service on the host; the new system is still in its store for inspection.');
    }
  }
  if (finish && (finished === undefined || checks)) {
    finished = await session.run(finish).then(
      (r) => r.stdout,
      (error: Error) => `finishing failed: ${error.message}`,
    );
  }
  reportFinish(finished ?? '', keep, report);
  report({ step: 'done', message: generation !== undefined ? `${outPath} is active as generation ${generation}` : `${outPath} is active` });
  return { host, action, outPath, generation };
}

/**
 * What follows a deploy that stands: old generations are collected (switch, boot) and what
 * the keys replaced is dropped. Prints one line about the collection.
 */
function finishScript(action: Action, keep: number, keyFiles: readonly string[]): string {
  const collect =
    action === 'switch' || action === 'boot'
      ? `if out=$( ( ${collectScript(keep)} ) 2>&1 ); then echo "collected: $(echo "$out" | tail -n 1)"; else echo "collect failed: $(echo "$out" | tail -n 3 | tr '\\n' ' ')"; fi`
      : '';
  return [collect, commitKeysScript(keyFiles)].filter(Boolean).join('\n');
}

/** Reports what finishScript printed; a failure there does not undo the deploy. */
function reportFinish(output: string, keep: number, report: Report): void {
  const collected = /^collected: (.*)$/m.exec(output)?.[1];
  if (collected !== undefined) report({ step: 'activate', message: `kept the newest ${keep} generations; ${collected}` });
  const failed = /^(?:collect|finishing) failed: (.*)$/m.exec(output)?.[1];
  if (failed !== undefined) report({ step: 'activate', message: `collecting old generations failed (the deploy itself succeeded): ${failed.trim()}` });
}

/**
 * A host that already runs the system (and, for switch, boots it) needs no activation: a
 * no-change redeploy then costs one connection and no new generation.
 */
function alreadyActive(action: Action, outPath: string, previous: { system?: string; profileSystem?: string }): boolean {
  if (action === 'switch') return previous.system === outPath && previous.profileSystem === outPath;
  if (action === 'test') return previous.system === outPath;
  return false;
}

/** Puts the previous system back from the deployer's side and says how that went. */
async function undo(session: SshSession, activation: Activation): Promise<string> {
  try {
    if (!(await disarm(session, activation))) {
      const done = await awaitWatchdogRollback(session, activation, 120);
      return done && done.code === 0 ? 'The host rolled back to its previous system.' : 'The host\'s own rollback did not report success.';
    }
    const result = await rollBack(session, activation);
    const where = activation.previous.generation !== undefined ? `generation ${activation.previous.generation}` : 'its previous system';
    if (result.code === 0) return `Rolled back to ${where}.`;
    if (result.code === 3) return 'There was no previous system to roll back to (first deploy to this host).';
    return `Rolling back failed too: ${tail(result.output, 3)}.`;
  } catch (error) {
    return `Rolling back was not possible: ${(error as Error).message}.`;
  }
}

/**
 * Magic rollback: a brand-new SSH connection must log in and confirm within the time
 * limit. If that fails, the host's watchdog restores the previous system by itself.
 */
async function confirmFresh(target: SshTarget, session: SshSession, activation: Activation, timeoutSeconds: number, host: string, report: Report, then: string): Promise<string> {
  report({ step: 'confirm', message: `confirming over a new SSH connection (the host rolls back by itself after ${timeoutSeconds} s)` });
  const deadline = Date.now() + timeoutSeconds * 1000;
  let reason = '';
  while (Date.now() < deadline) {
    try {
      const fresh = await SshSession.connect({ ...target, connectTimeoutSeconds: Math.max(1, Math.ceil((deadline - Date.now()) / 1000)) });
      try {
        const output = await confirm(fresh, activation, then);
        if (output !== null) return output;
        reason = 'the host had already given up waiting';
        break;
      } finally {
        fresh.close();
      }
    } catch (error) {
      reason = error instanceof DeployError ? error.problem : (error as Error).message;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const rolledBack = session.lost ? undefined : await awaitWatchdogRollback(session, activation, timeoutSeconds + 60).catch(() => undefined);
  const outcome = rolledBack
    ? rolledBack.code === 0
      ? 'The host rolled back to its previous system by itself.'
      : `The host's own rollback failed: ${tail(rolledBack.log, 3)}.`
    : 'The host will roll back by itself; its outcome could not be observed.';
  throw new DeployError(
    'confirm',
    host,
    `after activation no new SSH login could confirm the new system within ${timeoutSeconds} s (${reason}). ${outcome}`,
    'The new configuration probably breaks SSH access (sshd settings, users, keys or firewall): fix that and deploy again.',
  );
}

/** One host's outcome in a many-host deploy. */
export type HostOutcome = { readonly host: string; readonly ok: true; readonly result: DeployResult } | { readonly host: string; readonly ok: false; readonly error: Error };

/**
 * Deploys many hosts at once, at most `concurrency` at a time. Each host gets its own
 * outcome; one host failing neither stops nor touches the others.
 */
export async function deployMany(requests: readonly DeployRequest[], options: EngineOptions & { readonly concurrency?: number } = {}): Promise<HostOutcome[]> {
  const outcomes: HostOutcome[] = new Array(requests.length);
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const index = next++;
      const host = targetLabel(requests[index].target);
      try {
        outcomes[index] = { host, ok: true, result: await deploy(requests[index], options) };
      } catch (error) {
        outcomes[index] = { host, ok: false, error: error as Error };
      }
    }
  };
  const concurrency = Math.max(1, Math.min(options.concurrency ?? Math.max(8, os.cpus().length * 4), requests.length));
  if (requests.length > concurrency) {
    // Hosts waiting for their turn fetch their closure from the cache meanwhile.
    for (const r of requests) {
      const cache = r.binaryCache;
      if (!cache || (r.buildOn ?? 'local') !== 'local') continue;
      evaluate(r.system, options.evalCacheDir).then(
        (closure) => fetchAhead(r.target, closure, cache, options.evalCacheDir),
        () => undefined, // the host's own deploy reports it
      );
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  await closeFetchConnections();
  return outcomes;
}
