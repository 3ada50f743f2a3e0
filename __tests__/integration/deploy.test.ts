import * as path from 'path';
import { deploy, DeployRequest, readAhead, rollback, status, statusReadAhead } from '../../lib/engine';
import { lockHost } from '../../lib/engine/host-lock';
import { localClosure, narSizes } from '../../lib/engine/local-nix';
import { SshSession } from '../../lib/engine/ssh';
import { TestHost, World } from '../../world/world';
import { startProxy } from '../../world/tcp-proxy';
import { createHosts, currentSystem, Fixture, generations, openWorld, serviceAnswer, targetFor, tempDir, waitForService } from '../support/world';

describe('deploying a system to a real test host', () => {
  let world: World;
  let host: TestHost;
  let fixture: Fixture;
  let dir: string;
  let request: (extra?: Partial<DeployRequest>) => DeployRequest;

  beforeAll(async () => {
    world = await openWorld();
    [host] = await createHosts(world, 'deploy', ['a']);
    fixture = await Fixture.create({ version: '1' });
    dir = tempDir('deploy');
    request = (extra = {}) => ({
      target: targetFor(world, host, path.join(dir, 'known_hosts')),
      system: { flake: fixture.flake('web'), specialArgs: { peer: '10.0.0.2', replicas: 3 } },
      magicRollback: { timeoutSeconds: 10 },
      ...extra,
    });
  });
  afterAll(async () => {
    await world.removeHost(host.name);
    fixture.remove();
  });

  it('puts the system on the host as generation 1 and starts its service with the special args', async () => {
    const events: string[] = [];
    const result = await deploy(request(), { evalCacheDir: path.join(dir, 'eval'), onProgress: (e) => events.push(e.step) });

    expect(result.generation).toBe(1);
    expect(await currentSystem(world, host)).toBe(result.outPath);
    expect(await generations(world, host)).toEqual([1]);
    const answer = await waitForService(host);
    expect(answer).toEqual({ system: result.outPath, version: '1', terraform: { peer: '10.0.0.2', replicas: 3 } });
    expect(events).toEqual(expect.arrayContaining(['evaluate', 'connect', 'lock', 'build', 'copy', 'activate', 'confirm', 'done']));
    expect(result.hostKey).toBe(world.hostKey(host.name));
  });

  it('sends nothing and keeps the generation on a no-change redeploy', async () => {
    const result = await deploy(request(), { evalCacheDir: path.join(dir, 'eval') });
    expect(result).toMatchObject({ generation: 1, pathsCopied: 0, bytesSent: 0 });
    expect(await generations(world, host)).toEqual([1]);
  });

  it('sends only the changed paths: their NAR size plus a small overhead, as measured on the wire', async () => {
    const before = await currentSystem(world, host);
    const hostClosure = new Set(await localClosure([before]));
    await fixture.update({ version: '2', packages: [...fixture.settings().packages, { name: 'extra', version: '1.0', sizeBytes: 300_000 }] });
    const proxy = await startProxy(host.address, host.port);
    try {
      const result = await deploy(request({ target: { ...request().target, port: proxy.port, hostKey: world.hostKey(host.name) } }), { evalCacheDir: path.join(dir, 'eval') });
      const missing = (await localClosure([result.outPath])).filter((p) => !hostClosure.has(p));
      const narBytes = [...(await narSizes(missing)).values()].reduce((a, b) => a + b, 0);

      expect(result.generation).toBe(2);
      expect(result.pathsCopied).toBe(missing.length);
      expect(result.bytesSent).toBeGreaterThanOrEqual(narBytes);
      expect(result.bytesSent).toBeLessThan(narBytes + 4096);
      // Everything on the wire, SSH framing and all the other commands included.
      expect(proxy.bytesUp()).toBeGreaterThan(narBytes);
      expect(proxy.bytesUp()).toBeLessThan(narBytes * 1.05 + 64 * 1024);
      expect((await waitForService(host)).version).toBe('2');
    } finally {
      await proxy.close();
    }
  });

  it('reports current and booted system and the generations', async () => {
    const report = await status(request().target);
    expect(report.currentSystem).toBe(await currentSystem(world, host));
    expect(report.generation).toBe(2);
    expect(report.generations.map((g) => [g.number, g.current])).toEqual([
      [1, false],
      [2, true],
    ]);
  });

  it('rolls back to the previous generation, and forward to generation N', async () => {
    const gen2 = await currentSystem(world, host);
    const back = await rollback(request().target);
    expect(back.generation).toBe(1);
    expect((await waitForService(host)).version).toBe('1');
    expect(await currentSystem(world, host)).not.toBe(gen2);

    const forward = await rollback(request().target, 2);
    expect(forward.generation).toBe(2);
    expect(await currentSystem(world, host)).toBe(gen2);
    await expect(rollback(request().target, 7)).rejects.toThrow(/generation 7 does not exist \(generations: 1, 2\)/);
  });

  it('test activates without a new generation; boot makes one without activating; dry-activate changes nothing', async () => {
    await fixture.update({ version: '3' });
    const tested = await deploy(request({ action: 'test' }), { evalCacheDir: path.join(dir, 'eval') });
    expect(await currentSystem(world, host)).toBe(tested.outPath);
    expect(await generations(world, host)).toEqual([1, 2]);

    await fixture.update({ version: '4' });
    const running = await currentSystem(world, host);
    const booted = await deploy(request({ action: 'boot' }), { evalCacheDir: path.join(dir, 'eval') });
    expect(booted.generation).toBe(3);
    expect(await currentSystem(world, host)).toBe(running);
    expect((await world.exec(host.name, 'readlink /run/world/next-boot')).stdout.trim()).toBe(booted.outPath);

    await fixture.update({ version: '5' });
    const dry = await deploy(request({ action: 'dry-activate' }), { evalCacheDir: path.join(dir, 'eval') });
    expect(dry.dryActivateOutput).toMatch(/would activate .*version 5/);
    expect(await currentSystem(world, host)).toBe(running);
    expect(await generations(world, host)).toEqual([1, 2, 3]);
    expect((await serviceAnswer(host))?.version).toBe('3');
  });

  it('takes the lock back from its own stale holder, but never from another deploy', async () => {
    const first = await SshSession.connect(request().target);
    const second = await SshSession.connect(request().target);
    try {
      await lockHost(first, 'a', 0, 'token-one');
      // Another deploy (another token) is refused at once, naming the holder.
      await expect(lockHost(second, 'a', 0, 'token-two')).rejects.toThrow(/another deploy holds the host's lock: .*\(pid \d+/);
      // The same deploy on a new connection (its old one lost) ends its old holder and goes on.
      const again = await lockHost(second, 'a', 5, 'token-one');
      again.release();
    } finally {
      first.close();
      second.close();
    }
  });

  it('keeps only the newest N generations and collects the older closures', async () => {
    const oldest = (await world.exec(host.name, 'readlink -f /nix/var/nix/profiles/system-1-link')).stdout.trim();
    await fixture.update({ version: '6' });
    const result = await deploy(request({ keepGenerations: 2 }), { evalCacheDir: path.join(dir, 'eval') });
    expect(result.generation).toBe(4);
    expect(await generations(world, host)).toEqual([3, 4]);
    expect((await world.exec(host.name, `test -e ${oldest}`)).exitCode).not.toBe(0);
  });

  it('reads ahead: one connection answers both the early read and the later ask, which then reads afresh', async () => {
    const running = await currentSystem(world, host);
    const proxy = await startProxy(host.address, host.port);
    try {
      const target = { ...request().target, port: proxy.port, hostKey: world.hostKey(host.name) };
      readAhead([target, target]);
      const first = await statusReadAhead({ ...target, connectTimeoutSeconds: 3 });
      expect(first.currentSystem).toBe(running);
      expect(proxy.connections()).toBe(1);
      // The answer is taken once: the next ask reads the host again.
      expect((await statusReadAhead(target)).currentSystem).toBe(running);
      expect(proxy.connections()).toBe(2);
    } finally {
      await proxy.close();
    }
  });
});
