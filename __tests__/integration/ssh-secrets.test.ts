import { randomBytes } from 'crypto';
import execa from 'execa';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { deploy, DeployError, DeployRequest, DeployResult, EngineOptions, KeySpec, ProgressEvent, SshTarget, status } from '../../lib/engine';
import { localClosure } from '../../lib/engine/local-nix';
import { TestHost, World } from '../../world/world';
import { createHosts, currentSystem, Fixture, generations, serviceAnswer, targetFor, tempDir, TEST_WORLD_DIR, waitForService } from '../support/world';

/** The rejection of `promise`, which must reject. */
async function failure(promise: Promise<unknown>): Promise<DeployError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(DeployError);
    return error as DeployError;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

describe('SSH access and secrets on real test hosts', () => {
  let world: World;
  let fixture: Fixture;
  let dir: string;
  let hosts: Record<string, TestHost>;
  let bastion: TestHost;
  let inner: TestHost;
  const engine = (extra: EngineOptions = {}): EngineOptions => ({ evalCacheDir: path.join(dir, 'eval'), ...extra });
  /** A known_hosts file of its own, which does not exist yet. */
  let knownHostsCount = 0;
  const freshKnownHosts = () => path.join(dir, `known_hosts-${++knownHostsCount}`);

  beforeAll(async () => {
    // A world of its own: another suite's global setup clearing the shared one cannot stop these hosts.
    world = await World.open(path.join(path.dirname(TEST_WORLD_DIR), 'test-ssh-secrets'));
    await world.removeAll();
    dir = tempDir('ssh-secrets');
    const [created, fixtureMade, outer] = await Promise.all([
      createHosts(world, 'ssh', ['agent', 'sudo', 'pin', 'lock', 'secrets', 'rollback']),
      Fixture.create({ version: '1', slowServiceSeconds: 2 }),
      world.createHost({ name: 'ssh-bastion', network: 'netns' }),
    ]);
    fixture = fixtureMade;
    hosts = Object.fromEntries(created.map((h) => [h.name.replace(/^ssh-/, ''), h]));
    bastion = outer;
    inner = await world.createHost({ name: 'ssh-inner', insideNetnsOf: bastion.name });
  });

  afterAll(async () => {
    // The inner host lives in the bastion's netns: it goes first.
    await world.removeHost('ssh-inner');
    await world.removeHost('ssh-bastion');
    for (const host of Object.values(hosts ?? {})) await world.removeHost(host.name);
    fixture?.remove();
    // It holds a secret file and known_hosts files.
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('deploys through a jump host to a host that only the jump host can reach', async () => {
    expect(bastion.netns).toBeDefined();
    expect(inner.netns).toBe(bastion.netns);
    expect(inner.address).toBe('127.0.0.1');
    const knownHostsFile = freshKnownHosts();

    // Straight from the deployer, the inner host's address is the deployer's own loopback.
    const direct = await failure(status(targetFor(world, inner, knownHostsFile, { connectTimeoutSeconds: 3 })));
    expect(direct.step).toBe('connect');

    const target: SshTarget = {
      ...targetFor(world, inner, knownHostsFile),
      bastion: { host: bastion.address, port: bastion.port, privateKeyFile: world.clientKeyFile, hostKey: world.hostKey(bastion.name) },
    };
    const result = await deploy({ target, system: { flake: fixture.flake('good') }, magicRollback: { timeoutSeconds: 10 } }, engine());

    expect(result.generation).toBe(1);
    expect(result.hostKey).toBe(world.hostKey(inner.name));
    expect(await currentSystem(world, inner)).toBe(result.outPath);
    expect(await generations(world, inner)).toEqual([1]);
    // The jump host only forwarded: nothing was deployed there.
    expect((await world.exec(bastion.name, 'test -e /run/current-system || test -e /nix/var/nix/profiles/system')).exitCode).not.toBe(0);
    // The service answers inside the namespace.
    const answer = await world.exec(
      inner.name,
      `for i in $(seq 50); do curl -sf http://127.0.0.1:${inner.servicePort}/ && exit 0; sleep 0.1; done; exit 1`,
    );
    expect(answer.exitCode).toBe(0);
    expect(JSON.parse(answer.stdout)).toMatchObject({ system: result.outPath, version: '1' });
    // The inner host's key was recorded under the address the jump host reached it at.
    expect(fs.readFileSync(knownHostsFile, 'utf8')).toBe(`[127.0.0.1]:${inner.port} ${world.hostKey(inner.name)}\n`);

    const report = await status(target);
    expect(report.currentSystem).toBe(result.outPath);
  });

  it('logs in with a key held by a real ssh-agent, without a key file', async () => {
    const host = hosts.agent;
    const socket = path.join(dir, 'agent.sock');
    const agent = execa('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
      const env = { SSH_AUTH_SOCK: socket };
      const target: SshTarget = { host: host.address, port: host.port, agent: socket, knownHostsFile: freshKnownHosts(), connectTimeoutSeconds: 10 };

      // An empty agent has nothing to offer: a readable refusal.
      const refused = await failure(status(target));
      expect(refused.step).toBe('connect');
      expect(refused.message).toMatch(/refused the login \(keys from the SSH agent\)/);

      await execa('ssh-add', ['-q', world.clientKeyFile], { env });
      expect((await execa('ssh-add', ['-l'], { env })).stdout).toMatch(/ED25519/);
      const result = await deploy({ target, system: { flake: fixture.flake('good') }, magicRollback: { timeoutSeconds: 10 } }, engine());
      expect(result.generation).toBe(1);
      expect(await currentSystem(world, host)).toBe(result.outPath);
      expect((await waitForService(host)).system).toBe(result.outPath);
    } finally {
      agent.kill();
      await agent.catch(() => undefined);
    }
  });

  it('deploys as a user with password-less sudo instead of root', async () => {
    const host = hosts.sudo;
    const target = targetFor(world, host, freshKnownHosts(), { user: 'nixdeploy' });
    const whoami = await world.exec(host.name, 'id -u nixdeploy');
    expect(whoami.stdout.trim()).not.toBe('0');

    const result = await deploy({ target, system: { flake: fixture.flake('web') }, magicRollback: { timeoutSeconds: 10 } }, engine());
    expect(result.generation).toBe(1);
    expect(await currentSystem(world, host)).toBe(result.outPath);
    expect(await generations(world, host)).toEqual([1]);
    expect((await waitForService(host)).system).toBe(result.outPath);
    // The profile and the engine's state were written through sudo, as root.
    const owners = await world.exec(host.name, 'stat -c %U /nix/var/nix/profiles/system-1-link /run/cdktf-nixos');
    expect(owners.stdout.trim().split('\n')).toEqual(['root', 'root']);
    const report = await status(target);
    expect(report.generation).toBe(1);
  });

  it('records the host key on first contact, enforces it later, and accepts a key given explicitly', async () => {
    const host = hosts.pin;
    const knownHostsFile = freshKnownHosts();
    const request = (target: SshTarget): DeployRequest => ({ target, system: { flake: fixture.flake('good') }, magicRollback: { timeoutSeconds: 10 } });
    const line = `[127.0.0.1]:${host.port} ${world.hostKey(host.name)}\n`;

    const first = await deploy(request(targetFor(world, host, knownHostsFile)), engine());
    expect(first.hostKey).toBe(world.hostKey(host.name));
    expect(world.hostKey(host.name)).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    expect(fs.readFileSync(knownHostsFile, 'utf8')).toBe(line);

    const second = await deploy(request(targetFor(world, host, knownHostsFile)), engine());
    expect(second.generation).toBe(1);
    expect(fs.readFileSync(knownHostsFile, 'utf8')).toBe(line);

    const unrecorded = freshKnownHosts();
    const explicit = await deploy(request(targetFor(world, host, unrecorded, { hostKey: world.hostKey(host.name) })), engine());
    expect(explicit.hostKey).toBe(world.hostKey(host.name));
    expect(fs.existsSync(unrecorded)).toBe(false);

    // A reinstalled (or spoofed) host is refused, with both keys named.
    const oldKey = world.hostKey(host.name);
    await world.regenerateHostKey(host.name);
    const refused = await failure(deploy(request(targetFor(world, host, knownHostsFile)), engine()));
    expect(refused.step).toBe('connect');
    expect(refused.message).toContain(`presented the host key "${world.hostKey(host.name)}", but "${oldKey}" is pinned in ${knownHostsFile}`);
    const refusedExplicit = await failure(status(targetFor(world, host, unrecorded, { hostKey: oldKey })));
    expect(refusedExplicit.message).toMatch(/set hostKey to the new key/);
    expect(fs.readFileSync(knownHostsFile, 'utf8')).toBe(line);
  });

  it('lets one of two simultaneous deploys hold the host lock; with a wait, both run one after the other', async () => {
    const host = hosts.lock;
    const request: DeployRequest = {
      target: targetFor(world, host, freshKnownHosts(), { hostKey: world.hostKey(host.name) }),
      system: { flake: fixture.flake('slow-service') },
      magicRollback: { timeoutSeconds: 10 },
      // The slow service answers after 2 s: the deploy holds the lock at least that long.
      healthChecks: [{ http: { url: `http://${host.serviceAddress}:${host.servicePort}/` }, retries: 40, intervalSeconds: 0.25 }],
    };

    const raced = await Promise.allSettled([deploy(request, engine()), deploy(request, engine())]);
    const won = raced.filter((r): r is PromiseFulfilledResult<DeployResult> => r.status === 'fulfilled');
    const lost = raced.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    const error = lost[0].reason as DeployError;
    expect(error).toBeInstanceOf(DeployError);
    expect(error.step).toBe('lock');
    expect(error.message).toContain("another deploy holds the host's lock");
    expect(error.message).toContain(`${os.userInfo().username}@${os.hostname()} (pid ${process.pid}`);
    expect(await currentSystem(world, host)).toBe(won[0].value.outPath);

    // With a wait, the second takes the lock when the first lets go.
    const spans: { locked: number; done: number }[] = [];
    const timed = async () => {
      const span = { locked: 0, done: 0 };
      spans.push(span);
      const onProgress = (e: ProgressEvent) => {
        if (e.message === 'holding the deploy lock') span.locked = Date.now();
        if (e.step === 'done') span.done = Date.now();
      };
      return deploy({ ...request, lockWaitSeconds: 60 }, engine({ onProgress }));
    };
    const both = await Promise.allSettled([timed(), timed()]);
    expect(both.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    const [first, second] = [...spans].sort((a, b) => a.locked - b.locked);
    expect(first.locked).toBeGreaterThan(0);
    expect(second.locked).toBeGreaterThanOrEqual(first.done);
    expect(await generations(world, host)).toEqual([1]);
    expect((await serviceAnswer(host))?.system).toBe(won[0].value.outPath);
  });

  it('places keys from a file, a command and text with owner, group and mode on tmpfs, and leaks them nowhere', async () => {
    const host = hosts.secrets;
    const id = randomBytes(8).toString('hex');
    const secrets = {
      file: `s3cr3t-file-${id}`,
      command: `s3cr3t-cmd-${id}`,
      text: `s3cr3t-text-${id}`,
      refused: `s3cr3t-refused-${id}`,
      failing: `s3cr3t-failing-${id}`,
    };
    const secretFile = path.join(dir, 'secret-file');
    fs.writeFileSync(secretFile, secrets.file, { mode: 0o600 });
    const destDir = `/run/secrets-test-${id}/app`;
    const keys: Record<string, KeySpec> = {
      'from-file': { file: secretFile, group: 'nogroup', permissions: '0440' },
      // The command's output, not its text, is the secret.
      'from-command': { command: `printf '%s-%s' s3cr3t-cmd ${id}`, user: 'nixdeploy', group: 'nixdeploy', permissions: '0400', destDir },
      'from-text': { text: secrets.text },
    };
    const events: ProgressEvent[] = [];
    const onProgress = (e: ProgressEvent) => events.push(e);
    const target = targetFor(world, host, freshKnownHosts());
    const result = await deploy({ target, system: { flake: fixture.flake('good') }, keys, magicRollback: { timeoutSeconds: 10 } }, engine({ onProgress }));
    expect(await currentSystem(world, host)).toBe(result.outPath);

    const placed = await world.exec(
      host.name,
      `stat -c '%n %U:%G:%a' /run/keys/from-file ${destDir}/from-command /run/keys/from-text
echo; cat /run/keys/from-file; echo; cat ${destDir}/from-command; echo; cat /run/keys/from-text; echo
stat -f -c %T /run/keys ${destDir}; ls -A /run/keys; ls -A ${destDir}`,
    );
    expect(placed.exitCode).toBe(0);
    expect(placed.stdout.split('\n')).toEqual([
      '/run/keys/from-file root:nogroup:440',
      `${destDir}/from-command nixdeploy:nixdeploy:400`,
      '/run/keys/from-text root:root:600',
      '',
      secrets.file,
      secrets.command,
      secrets.text,
      'tmpfs',
      'tmpfs',
      'from-file',
      'from-text',
      'from-command',
    ]);

    // A folder on disk is refused before anything is written, and the error is readable.
    const diskDir = `/var/tmp/keys-test-${id}`;
    const refused = await failure(
      deploy({ target, system: { flake: fixture.flake('good') }, keys: { 'on-disk': { text: secrets.refused, destDir: diskDir } } }, engine({ onProgress })),
    );
    expect(refused.step).toBe('keys');
    expect(refused.message).toMatch(new RegExp(`key "on-disk" could not be written to ${diskDir}/on-disk: the folder is on \\S+, not on tmpfs`));
    expect(refused.message).toContain('Choose a destDir on tmpfs');
    expect((await world.exec(host.name, `test -e ${diskDir}`)).exitCode).not.toBe(0);
    expect(fs.existsSync(diskDir)).toBe(false);

    // A command that fails says so, without its output.
    const failed = await failure(
      deploy(
        {
          target,
          system: { flake: fixture.flake('good') },
          keys: { broken: { command: `printf '%s-%s' s3cr3t-failing ${id}; echo 'vault: permission denied' >&2; exit 3` } },
        },
        engine({ onProgress }),
      ),
    );
    expect(failed.step).toBe('keys');
    expect(failed.message).toMatch(/key "broken": its command exited with code 3/);
    // The command line itself may carry secret material (a token argument): it is not shown.
    expect(failed.message).not.toContain('s3cr3t-failing');
    expect(failed.message).not.toContain('printf');
    expect(failed.message).toContain('Run the command by hand');
    expect(await currentSystem(world, host)).toBe(result.outPath);

    // Nowhere: not in the host's store or database, not in its folder on disk, not in the
    // deployer's store (the deployed closure included), not in the evaluation cache, not in
    // progress reports or errors.
    const patterns = Object.values(secrets).flatMap((s) => ['-e', s]);
    const onHost = await world.exec(host.name, `grep -rlsF ${patterns.join(' ')} /nix; true`);
    expect(onHost.stdout).toBe('');
    const closure = await localClosure([result.outPath]);
    expect(closure).toContain(result.outPath);
    for (const where of [[host.dir], ['/nix/store'], closure, [path.join(dir, 'eval')]]) {
      const found = await execa('grep', ['-rlsF', ...patterns, ...where], { reject: false });
      expect({ where: where[0], found: found.stdout }).toEqual({ where: where[0], found: '' });
    }
    const reported = JSON.stringify(events);
    const errors = [refused.message, refused.stack ?? '', failed.message, failed.stack ?? ''].join('\n');
    expect(events.length).toBeGreaterThan(10);
    for (const secret of Object.values(secrets)) {
      expect(reported).not.toContain(secret);
      expect(errors).not.toContain(secret);
    }
    expect(reported).toContain('uploading 3 keys');
  });

  it('rolls back by itself when the new system breaks SSH logins, and keeps it when magic rollback is off', async () => {
    const host = hosts.rollback;
    const target = targetFor(world, host, freshKnownHosts());
    const good = await deploy({ target, system: { flake: fixture.flake('good') }, magicRollback: { timeoutSeconds: 5 } }, engine());
    expect(good.generation).toBe(1);

    const started = Date.now();
    const broken = await failure(deploy({ target, system: { flake: fixture.flake('break-ssh') }, magicRollback: { timeoutSeconds: 5 } }, engine()));
    expect(broken.step).toBe('confirm');
    expect(broken.message).toMatch(/no new SSH login could confirm the new system within 5 s/);
    expect(broken.message).toMatch(/rolled back to its previous system by itself/);
    expect(Date.now() - started).toBeLessThan(30_000);

    expect(await currentSystem(world, host)).toBe(good.outPath);
    expect(await generations(world, host)).toEqual([1]);
    expect((await world.exec(host.name, 'test -e /run/world/ssh-login-disabled')).exitCode).not.toBe(0);
    expect((await waitForService(host)).system).toBe(good.outPath);
    const report = await status(target);
    expect(report).toMatchObject({ currentSystem: good.outPath, generation: 1 });
    const again = await deploy({ target, system: { flake: fixture.flake('good') }, magicRollback: { timeoutSeconds: 5 } }, engine());
    expect(again).toMatchObject({ outPath: good.outPath, generation: 1, pathsCopied: 0 });

    // Without magic rollback the broken system stays, and locks the deployer out.
    const kept = await deploy({ target, system: { flake: fixture.flake('break-ssh') }, magicRollback: false }, engine());
    expect(kept.generation).toBe(2);
    expect(await currentSystem(world, host)).toBe(kept.outPath);
    expect((await world.exec(host.name, 'test -e /run/world/ssh-login-disabled')).exitCode).toBe(0);
    const lockedOut = await failure(status(target));
    expect(lockedOut.step).toBe('connect');
    expect(lockedOut.message).toMatch(/refused the login/);

    await world.exec(host.name, 'rm -f /run/world/ssh-login-disabled');
    expect((await status(target)).generation).toBe(2);
  });
});
