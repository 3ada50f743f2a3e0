import execa from 'execa';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { deploy, DeployError, DeployRequest, DeployResult, EngineOptions, evaluate, SshTarget } from '../../lib/engine';
import { localClosure } from '../../lib/engine/local-nix';
import { freePort, TestHost, World } from '../../world/world';
import { startProxy } from '../../world/tcp-proxy';
import { createHosts, currentSystem, Fixture, generations, targetFor, tempDir, TEST_WORLD_DIR, waitForService } from '../support/world';

/**
 * Bad input and faults on the way: each gives one readable paragraph (what, where, the
 * fix), and the host keeps the system it had, with its service still answering.
 */
describe('faults give a clear error and lose nothing', () => {
  let world: World;
  let main: TestHost;
  let copyHost: TestHost;
  let rekey: TestHost;
  let full: TestHost;
  let readOnly: TestHost;
  let noNix: TestHost;
  let fixture: Fixture;
  let big: Fixture;
  let dir: string;
  let evalCacheDir: string;
  /** What `main` ran before each fault: the `good` system as generation 1. */
  let baseline: DeployResult;

  const knownHosts = (name: string) => path.join(dir, `known_hosts-${name}`);
  const target = (host: TestHost, extra: Partial<SshTarget> = {}) => targetFor(world, host, knownHosts(host.name), extra);
  const request = (host: TestHost, extra: Partial<DeployRequest> = {}): DeployRequest => ({
    target: target(host),
    system: { flake: fixture.flake('good') },
    magicRollback: { timeoutSeconds: 5 },
    ...extra,
  });
  const run = (req: DeployRequest, options: EngineOptions = {}) => deploy(req, { evalCacheDir, ...options });

  /** Deploys and expects a readable DeployError: one paragraph with the fix. */
  async function failure(req: DeployRequest, options: EngineOptions = {}): Promise<DeployError> {
    let result: DeployResult;
    try {
      result = await run(req, options);
    } catch (error) {
      expect(error).toBeInstanceOf(DeployError);
      const e = error as DeployError;
      expect(e.message).not.toMatch(/\n/);
      expect(e.message).not.toMatch(/\[object|undefined|AbortError|at .*\.ts:\d+/);
      return e;
    }
    throw new Error(`the deploy should have failed, but it succeeded: ${JSON.stringify(result)}`);
  }

  /** The host still runs `before`: same current system, same generations, service answers it. */
  async function expectUnchanged(host: TestHost, before: DeployResult, gens: number[] = [before.generation!]): Promise<void> {
    expect(await currentSystem(world, host)).toBe(before.outPath);
    expect(await generations(world, host)).toEqual(gens);
    expect((await waitForService(host)).system).toBe(before.outPath);
  }

  /** Whether the host's store has `storePath` as a valid (registered) path. */
  async function validOnHost(host: TestHost, storePath: string): Promise<boolean> {
    return (await world.exec(host.name, `nix-store --check-validity ${storePath}`)).exitCode === 0;
  }

  /** The payload package of the big fixture, built on the deployer. */
  async function bigPayloadPath(): Promise<string> {
    const { outPath } = await evaluate({ flake: big.flake('good') }, evalCacheDir);
    const payload = (await localClosure([outPath])).find((p) => /-big-1$/.test(p));
    if (!payload) throw new Error(`no big-1 in the closure of ${outPath}`);
    return payload;
  }

  async function freshKey(name: string): Promise<string> {
    const file = path.join(dir, name);
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
    return file;
  }

  beforeAll(async () => {
    // A world of its own: a concurrent jest run's global setup clears the shared test world.
    world = await World.open(path.join(path.dirname(TEST_WORLD_DIR), 'test-faults'));
    await world.removeAll();
    dir = tempDir('faults');
    evalCacheDir = path.join(dir, 'eval');
    [fixture, big] = await Promise.all([
      Fixture.create({ version: '1' }),
      Fixture.create({ version: 'big', packages: [{ name: 'big', version: '1', sizeBytes: 4_000_000 }] }),
    ]);
    [main, copyHost, rekey] = await createHosts(world, 'faults', ['main', 'copy', 'rekey']);
    [full] = await createHosts(world, 'faults', ['full'], { store: 2_000_000 });
    [readOnly] = await createHosts(world, 'faults', ['ro'], { store: 'read-only' });
    [noNix] = await createHosts(world, 'faults', ['nonix'], { nix: false });
    baseline = await run(request(main));
    expect(baseline.generation).toBe(1);
    await waitForService(main);
  });

  afterAll(async () => {
    for (const host of [main, copyHost, rekey, full, readOnly, noNix]) if (host) await world.removeHost(host.name);
    fixture?.remove();
    big?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('connecting', () => {
    it('names a host name that does not resolve', async () => {
      const error = await failure(request(main, { target: { ...target(main), host: 'no-such-host.invalid', port: 22 } }));
      expect(error.step).toBe('connect');
      expect(error.message).toMatch(/no-such-host\.invalid: connect failed: the host name "no-such-host\.invalid" cannot be resolved\. Check the host name/);
    });

    it('names a port where nothing listens', async () => {
      const port = await freePort();
      const error = await failure(request(main, { target: { ...target(main), port } }));
      expect(error.step).toBe('connect');
      expect(error.message).toMatch(new RegExp(`nothing listens on root@127\\.0\\.0\\.1:${port} \\(connection refused\\)\\. Check the port and that sshd runs`));
    });

    it('says that the host refused the key, and which key', async () => {
      const key = await freshKey('id_refused');
      const error = await failure(request(main, { target: target(main, { privateKeyFile: key }) }));
      expect(error.step).toBe('connect');
      expect(error.message).toContain(`refused the login (key ${key})`);
      expect(error.fix).toMatch(/authorized keys/);
      await expectUnchanged(main, baseline);
    });

    it('refuses a host whose key differs from the pinned hostKey', async () => {
      const other = fs.readFileSync(`${await freshKey('id_other_host')}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
      const error = await failure(request(main, { target: target(main, { hostKey: other }) }));
      expect(error.step).toBe('connect');
      expect(error.message).toContain(`presented the host key "${world.hostKey(main.name)}", but "${other}" is pinned`);
      expect(error.fix).toMatch(/set hostKey to the new key/);
      await expectUnchanged(main, baseline);
    });

    it('refuses a host whose key changed since the first deploy recorded it, and names the known_hosts file', async () => {
      const first = await run(request(rekey));
      expect(fs.readFileSync(knownHosts(rekey.name), 'utf8')).toContain(world.hostKey(rekey.name));
      const recorded = world.hostKey(rekey.name);
      await world.regenerateHostKey(rekey.name);

      const error = await failure(request(rekey));
      expect(error.step).toBe('connect');
      expect(error.message).toMatch(new RegExp(`but "${recorded.replace(/[+/]/g, '\\$&')}" is pinned in ${knownHosts(rekey.name)}\\. The connection was refused`));
      expect(error.fix).toContain(`delete its line from ${knownHosts(rekey.name)}`);
      await expectUnchanged(rekey, first);
    });

    it('says when the host accepts TCP but never speaks SSH within connectTimeoutSeconds', async () => {
      const sockets: net.Socket[] = [];
      const silent = net.createServer((s) => sockets.push(s));
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      const port = (silent.address() as net.AddressInfo).port;
      try {
        const started = Date.now();
        const error = await failure(request(main, { target: { ...target(main), port, connectTimeoutSeconds: 2 } }));
        expect(Date.now() - started).toBeLessThan(10_000);
        expect(error.step).toBe('connect');
        expect(error.message).toMatch(new RegExp(`root@127\\.0\\.0\\.1:${port} did not answer within 2 s\\. Check that the address and port are right`));
      } finally {
        for (const s of sockets) s.destroy();
        await new Promise((r) => silent.close(r));
      }
    });

    it('says that the target has no Nix, and how to get it', async () => {
      const error = await failure(request(noNix));
      expect(error.step).toBe('connect');
      expect(error.message).toMatch(/the host has no Nix: nix-store and nix-env are not on root's PATH there\. Install NixOS/);
      expect(await generations(world, noNix)).toEqual([]);
    });
  });

  describe('evaluating and building', () => {
    it('lists the available configurations for a flake attribute that does not exist', async () => {
      const error = await failure(request(main, { system: { flake: fixture.flake('no-such-config') } }));
      expect(error.step).toBe('evaluate');
      expect(error.message).toContain(`has no nixosConfigurations.no-such-config`);
      expect(error.fix).toMatch(/^Use one of: .*\bgood\b.*/);
      expect(error.fix).toMatch(/\bweb\b/);
      expect(error.fix).toMatch(/\bdb\b/);
      await expectUnchanged(main, baseline);
    });

    it("carries Nix's own message for a configuration that fails evaluation", async () => {
      const error = await failure(request(main, { system: { flake: fixture.flake('eval-error') } }));
      expect(error.step).toBe('evaluate');
      expect(error.message).toMatch(/evaluating .*#eval-error gave an error: .*The option `services\.fixture\.port' is used but not defined/);
      expect(error.fix).toBeTruthy();
      await expectUnchanged(main, baseline);
    });

    it('names the derivation that failed to build and shows the end of its log', async () => {
      const error = await failure(request(main, { system: { flake: fixture.flake('build-fail') } }));
      expect(error.step).toBe('build');
      expect(error.message).toMatch(/because the derivation \/nix\/store\/[0-9a-z]{32}-fixture-broken-1\.drv failed\. The end of its log: .*fails to build on purpose/);
      expect(error.fix).toMatch(/nix log \/nix\/store\/.*-fixture-broken-1\.drv/);
      await expectUnchanged(main, baseline);
    });
  });

  describe('activating and checking', () => {
    it('rolls back a failed activation to the previous generation', async () => {
      const error = await failure(request(main, { system: { flake: fixture.flake('fail-activation') } }));
      expect(error.step).toBe('activate');
      expect(error.message).toMatch(/switch-to-configuration switch of \/nix\/store\/\S+-nixos-system-fail-activation-1 exited with code 4: .*fails on purpose.*Rolled back to generation 1\./);
      expect(error.fix).toBeTruthy();
      await expectUnchanged(main, baseline);
    });

    it('puts the keys back with the system: the old system keeps its old secrets', async () => {
      const keysOf = async () => (await world.exec(main.name, 'cd /run/keys 2>/dev/null && for f in .[!.]* *; do [ -e "$f" ] && printf "%s=%s;" "$f" "$(cat "$f")"; done; true')).stdout;
      const ok = await run(request(main, { keys: { db: { text: 'old-secret' } } }));
      expect(ok.generation).toBe(1);
      expect(await keysOf()).toBe('db=old-secret;');

      const error = await failure(request(main, { system: { flake: fixture.flake('fail-activation') }, keys: { db: { text: 'new-secret' }, extra: { text: 'added' } } }));
      expect(error.message).toMatch(/Rolled back to generation 1\./);
      // The rotated key has its old content again, the added one is gone, no backups are left.
      expect(await keysOf()).toBe('db=old-secret;');
      await expectUnchanged(main, baseline);

      const changed = await run(request(main, { keys: { db: { text: 'rotated' } } }));
      expect(changed.generation).toBe(1);
      expect(await keysOf()).toBe('db=rotated;');
    });

    it('rolls back when a command health check fails', async () => {
      const error = await failure(
        request(main, { system: { flake: fixture.flake('web') }, healthChecks: [{ command: 'test -e /nonexistent', retries: 1, intervalSeconds: 0.2 }] }),
      );
      expect(error.step).toBe('health');
      expect(error.message).toMatch(/the health check command `test -e \/nonexistent` failed 2 times; the last time: exit code 1\. Rolled back to generation 1\./);
      expect(error.fix).toBeTruthy();
      await expectUnchanged(main, baseline);
    });

    it('rolls back when an HTTP health check fails', async () => {
      const url = `http://${main.serviceAddress}:${main.servicePort}/`;
      const error = await failure(
        request(main, { system: { flake: fixture.flake('service-down') }, healthChecks: [{ http: { url }, retries: 2, intervalSeconds: 0.2 }] }),
      );
      expect(error.step).toBe('health');
      expect(error.message).toMatch(new RegExp(`the health check GET ${url.replace(/\./g, '\\.')} failed 3 times; the last time: ECONNREFUSED\\. Rolled back to generation 1\\.`));
      await expectUnchanged(main, baseline);
    });

    it('stops an activation that takes longer than activationTimeoutSeconds and rolls back', async () => {
      const started = Date.now();
      const error = await failure(request(main, { system: { flake: fixture.flake('slow-activation') }, activationTimeoutSeconds: 2 }));
      expect(error.step).toBe('activate');
      expect(error.message).toMatch(/switch-to-configuration switch of \S+-nixos-system-slow-activation-1 did not finish within 2 s and was stopped; its last output: .*hangs in activation on purpose.*Rolled back to generation 1\./);
      expect(error.fix).toMatch(/activationTimeoutSeconds/);
      expect(error.fix).toBeTruthy();
      expect(Date.now() - started).toBeLessThan(20_000);
      await expectUnchanged(main, baseline);
      // The stopped activation must not come back to life after the rollback.
      await new Promise((r) => setTimeout(r, (fixture.settings().slowServiceSeconds ?? 4) * 1000));
      await expectUnchanged(main, baseline);
    });
  });

  describe('copying', () => {
    let copyBaseline: DeployResult;

    beforeAll(async () => {
      copyBaseline = await run(request(copyHost));
      await waitForService(copyHost);
    });

    it('gives up with a readable error when every connection is cut mid-copy, and registers no half path', async () => {
      const proxy = await startProxy(copyHost.address, copyHost.port, { cutAfterBytes: 1_500_000, cuts: Infinity });
      try {
        const error = await failure(
          request(copyHost, { target: target(copyHost, { port: proxy.port, hostKey: world.hostKey(copyHost.name) }), system: { flake: big.flake('good') }, copyRetries: 1 }),
        );
        expect(error.step).toBe('copy');
        expect(error.message).toMatch(/the connection was lost during the copy \(.*\), on each of 2 tries\. Check the network/);
        expect(error.fix).toBeTruthy();
        expect(proxy.connections()).toBe(2);
      } finally {
        await proxy.close();
      }
      const payload = await bigPayloadPath();
      expect(await validOnHost(copyHost, payload)).toBe(false);
      const verify = await world.exec(copyHost.name, 'nix-store --verify 2>&1');
      expect(verify.exitCode).toBe(0);
      expect(verify.stdout).not.toMatch(/error|invalid|disappeared/i);
      await expectUnchanged(copyHost, copyBaseline);
    });

    it('tries a cut copy again on a new connection and succeeds', async () => {
      const proxy = await startProxy(copyHost.address, copyHost.port, { cutAfterBytes: 1_500_000, cuts: 1 });
      const messages: string[] = [];
      try {
        const result = await run(
          request(copyHost, { target: target(copyHost, { port: proxy.port, hostKey: world.hostKey(copyHost.name) }), system: { flake: big.flake('good') } }),
          { onProgress: (e) => messages.push(e.message) },
        );
        const payload = await bigPayloadPath();
        expect(result.generation).toBe(2);
        expect(messages.some((m) => /the connection broke .*trying again \(1 of 2\)/.test(m))).toBe(true);
        expect(proxy.connections()).toBeGreaterThanOrEqual(2);
        expect(await validOnHost(copyHost, payload)).toBe(true);
        expect((await world.exec(copyHost.name, `nix-store --verify-path ${payload}`)).exitCode).toBe(0);
        expect((await waitForService(copyHost)).version).toBe('big');
      } finally {
        await proxy.close();
      }
    });

    it('stops a copy when cancelled and leaves the host on its system', async () => {
      const controller = new AbortController();
      const error = await failure(request(main, { system: { flake: big.flake('good') } }), {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.step === 'copy' && e.copied && !controller.signal.aborted) controller.abort();
        },
      });
      expect(error.step).toBe('cancelled');
      expect(error.message).toMatch(/the deploy was cancelled before activation; the host is on the system it had/);
      expect(await validOnHost(main, await bigPayloadPath())).toBe(false);
      await expectUnchanged(main, baseline);
    });

    it('says that the host store is full', async () => {
      const before = await run(request(full));
      const error = await failure(request(full, { system: { flake: big.flake('good') } }));
      expect(error.step).toBe('copy');
      expect(error.message).toMatch(/the host's Nix store has no space left: .*No space left on device/);
      expect(error.fix).toBeTruthy();
      await expectUnchanged(full, before);
    });

    it('says that the host store is read-only', async () => {
      const error = await failure(request(readOnly));
      expect(error.step).toBe('copy');
      expect(error.message).toMatch(/the host's Nix store is read-only/);
      expect(error.fix).toBeTruthy();
      expect(await generations(world, readOnly)).toEqual([]);
    });
  });
});
