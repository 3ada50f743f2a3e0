import execa from 'execa';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { BinaryCacheSpec, deploy, DeployError, deployMany, DeployRequest, targetLabel } from '../../lib/engine';
import { localClosure } from '../../lib/engine/local-nix';
import { TestHost, World } from '../../world/world';
import { createHosts, currentSystem, Fixture, generations, targetFor, tempDir, TEST_WORLD_DIR, waitForService } from '../support/world';

/** A fixture version nothing has built yet, on this machine or elsewhere. */
function freshVersion(label: string): string {
  return `${label}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Whether the deployer's own store holds `storePath`. */
async function locallyValid(storePath: string): Promise<boolean> {
  return (await execa('nix-store', ['--check-validity', storePath], { reject: false })).exitCode === 0;
}

/** Whether the host's store holds every one of `paths`. */
async function validOnHost(world: World, host: TestHost, paths: readonly string[]): Promise<boolean> {
  return (await world.exec(host.name, `nix-store --check-validity ${paths.join(' ')}`)).exitCode === 0;
}

/** A signing key pair made by Nix itself: `{ secretKeyFile, publicKey }`. */
async function signingKey(dir: string, name: string): Promise<{ secretKeyFile: string; publicKey: string }> {
  fs.mkdirSync(dir, { recursive: true });
  const secretKeyFile = path.join(dir, `${name}.sk`);
  const publicFile = path.join(dir, `${name}.pk`);
  await execa('nix-store', ['--generate-binary-cache-key', name, secretKeyFile, publicFile]);
  return { secretKeyFile, publicKey: fs.readFileSync(publicFile, 'utf8').trim() };
}

/** The .narinfo files of a file:// cache folder. */
function narinfos(cacheDir: string): string[] {
  return fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir).filter((f) => f.endsWith('.narinfo')) : [];
}

/** The narinfo file name of a store path: its hash part. */
function narinfoName(storePath: string): string {
  return `${path.basename(storePath).slice(0, 32)}.narinfo`;
}

/** A static file server for a folder on 127.0.0.1 that records every request. */
async function serveFolder(root: string): Promise<{ port: number; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent((req.url ?? '/').split('?')[0]);
    requests.push(`${req.method} ${url}`);
    const file = path.join(root, path.normalize(url));
    const found = file.startsWith(root + path.sep) && fs.existsSync(file) && fs.statSync(file).isFile();
    if (!found) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-length': fs.statSync(file).size, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { port, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('building elsewhere and copying through binary caches, on real test hosts', () => {
  let world: World;
  let fixture: Fixture;
  let dir: string;
  let hosts: Record<string, TestHost>;
  const extraHosts: string[] = [];
  let evalCacheDir: string;
  let knownHosts: string;

  const request = (host: TestHost, extra: Partial<DeployRequest> = {}, name = 'good'): DeployRequest => ({
    target: targetFor(world, host, knownHosts),
    system: { flake: fixture.flake(name) },
    magicRollback: { timeoutSeconds: 15 },
    ...extra,
  });

  beforeAll(async () => {
    // A world of its own: a jest run's global setup (of another suite run at the same time) empties the shared one.
    world = await World.open(path.join(path.dirname(TEST_WORLD_DIR), 'test-build-copy'));
    const names = ['on-target', 'builder', 'via-builder', 'cache-a', 'cache-b', 'wrong-key', 'http', 'many-1', 'many-2', 'many-3', 'many-4', 'ahead-1', 'ahead-2', 'ahead-3'];
    const created = await createHosts(world, 'build', names);
    hosts = Object.fromEntries(names.map((n, i) => [n, created[i]]));
    fixture = await Fixture.create({ version: freshVersion('bc') });
    dir = tempDir('build-copy');
    evalCacheDir = path.join(dir, 'eval');
    knownHosts = path.join(dir, 'known_hosts');
  });
  afterAll(async () => {
    for (const host of Object.values(hosts ?? {})) await world.removeHost(host.name);
    for (const name of extraHosts) await world.removeHost(name);
    fixture?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("buildOn 'target': the host builds from the derivations; the deployer never builds the system", async () => {
    await fixture.update({ version: freshVersion('on-target') });
    const host = hosts['on-target'];
    const result = await deploy(request(host, { buildOn: 'target' }), { evalCacheDir });

    expect(result.drvPath).toMatch(/\.drv$/);
    expect(await validOnHost(world, host, [result.outPath])).toBe(true);
    expect(await currentSystem(world, host)).toBe(result.outPath);
    expect(result.generation).toBe(1);
    // What crossed to the host were the derivations to build from.
    expect(result.pathsCopied).toBeGreaterThan(0);
    expect(result.bytesSent).toBeGreaterThan(0);
    // The derivation is on the deployer (evaluation wrote it), its output is not.
    expect(await locallyValid(result.drvPath!)).toBe(true);
    expect(await locallyValid(result.outPath)).toBe(false);
    // The host really built it: its store knows the deriver and has the build's log.
    const deriver = (await world.exec(host.name, `nix-store --query --deriver ${result.outPath}`)).stdout.trim();
    expect(deriver).toBe(result.drvPath);
    expect((await waitForService(host)).system).toBe(result.outPath);
  });

  it('buildOn a build host: the build host builds, the target gets the closure through the deployer', async () => {
    await fixture.update({ version: freshVersion('via-builder') });
    const builder = hosts['builder'];
    const target = hosts['via-builder'];
    const result = await deploy(request(target, { buildOn: { buildHost: targetFor(world, builder, knownHosts) } }), { evalCacheDir });

    expect(await validOnHost(world, builder, [result.outPath])).toBe(true);
    expect(await validOnHost(world, target, [result.outPath])).toBe(true);
    expect(await locallyValid(result.outPath)).toBe(false);
    expect(await currentSystem(world, target)).toBe(result.outPath);
    // The whole runtime closure went from the build host to the target; the builder has no system of its own.
    const closure = (await world.exec(builder.name, `nix-store --query --requisites ${result.outPath}`)).stdout.trim().split('\n');
    expect(result.pathsCopied).toBe(closure.length);
    expect(result.bytesSent).toBeGreaterThan(20_000);
    expect(await validOnHost(world, target, closure)).toBe(true);
    expect((await world.exec(builder.name, 'test -e /run/current-system')).exitCode).not.toBe(0);
  });

  describe('a signed binary cache', () => {
    let keys: { secretKeyFile: string; publicKey: string };
    let cacheDir: string;
    let cache: BinaryCacheSpec;

    beforeAll(async () => {
      keys = await signingKey(path.join(dir, 'keys'), 'build-copy-test-1');
      cacheDir = path.join(dir, 'cache');
      cache = { uri: `file://${cacheDir}`, publicKey: keys.publicKey, secretKeyFile: keys.secretKeyFile };
    });

    it('file://: pushed once, signed, and two hosts fetch from it instead of from the deployer', async () => {
      await fixture.update({ version: freshVersion('file-cache') });
      const targets = [hosts['cache-a'], hosts['cache-b']];
      const outcomes = await deployMany(targets.map((h) => request(h, { binaryCache: cache })), { evalCacheDir });

      expect(outcomes.map((o) => o.ok)).toEqual([true, true]);
      const results = outcomes.map((o) => (o.ok ? o.result : undefined)!);
      const outPath = results[0].outPath;
      expect(results[1].outPath).toBe(outPath);
      const closure = await localClosure([outPath]);

      const files = narinfos(cacheDir);
      for (const p of closure) expect(files).toContain(narinfoName(p));
      for (const file of files) {
        expect(fs.readFileSync(path.join(cacheDir, file), 'utf8')).toMatch(/^Sig: build-copy-test-1:[A-Za-z0-9+/=]+$/m);
      }
      for (const [i, host] of targets.entries()) {
        expect(results[i]).toMatchObject({ bytesSent: 0, pathsCopied: 0, generation: 1 });
        expect(await validOnHost(world, host, closure)).toBe(true);
        expect(await currentSystem(world, host)).toBe(outPath);
      }
    });

    it('a wrong public key: the host refuses the unverifiable paths, and the engine copies them itself', async () => {
      await fixture.update({ version: freshVersion('wrong-key') });
      const host = hosts['wrong-key'];
      // Same key name, another key: every signature in the cache fails to verify.
      const impostor = await signingKey(path.join(dir, 'impostor'), 'build-copy-test-1');
      expect(impostor.publicKey).not.toBe(keys.publicKey);
      const result = await deploy(request(host, { binaryCache: { ...cache, publicKey: impostor.publicKey } }), { evalCacheDir });

      const closure = await localClosure([result.outPath]);
      // The push itself happened (signed with the real key) ...
      expect(narinfos(cacheDir)).toContain(narinfoName(result.outPath));
      // ... but the host took nothing from the cache: every path came from the deployer.
      expect(result.pathsCopied).toBe(closure.length);
      expect(result.bytesSent).toBeGreaterThan(0);
      expect(await validOnHost(world, host, closure)).toBe(true);
      expect(await currentSystem(world, host)).toBe(result.outPath);
    });

    it('http://: the host substitutes over HTTP from a server in front of the cache folder', async () => {
      await fixture.update({ version: freshVersion('http-cache') });
      const host = hosts['http'];
      const httpCacheDir = path.join(dir, 'http-cache');
      const server = await serveFolder(httpCacheDir);
      try {
        const spec: BinaryCacheSpec = { ...cache, uri: `file://${httpCacheDir}`, substituterUri: `http://127.0.0.1:${server.port}` };
        const result = await deploy(request(host, { binaryCache: spec }), { evalCacheDir });

        const closure = await localClosure([result.outPath]);
        expect(result).toMatchObject({ bytesSent: 0, pathsCopied: 0 });
        expect(await validOnHost(world, host, closure)).toBe(true);
        expect(server.requests).toContain(`GET /${narinfoName(result.outPath)}`);
        expect(server.requests.filter((r) => /^GET \/nar\/\S+\.nar/.test(r)).length).toBeGreaterThanOrEqual(closure.length);
        expect((await waitForService(host)).system).toBe(result.outPath);
      } finally {
        await server.close();
      }
    });

    it('hosts waiting for their turn fetch from the cache ahead: the last host has the closure before its own deploy starts', async () => {
      await fixture.update({ version: freshVersion('ahead') });
      const targets = ['ahead-1', 'ahead-2', 'ahead-3'].map((n) => hosts[n]);
      const events: { host: string; message: string }[] = [];
      let lastHostHadItWhenFirstWasDone: Promise<boolean> | undefined;
      const outcomes = await deployMany(
        targets.map((h) => request(h, { binaryCache: cache })),
        {
          evalCacheDir,
          concurrency: 1,
          onProgress: (e) => {
            events.push({ host: e.host, message: e.message });
            if (e.host === targetLabel(request(targets[0]).target) && e.step === 'done') {
              lastHostHadItWhenFirstWasDone = validOnHost(world, targets[2], [e.message.split(' ')[0]]);
            }
          },
        },
      );

      expect(outcomes.map((o) => o.ok)).toEqual([true, true, true]);
      expect(await lastHostHadItWhenFirstWasDone).toBe(true);
      const label = (h: TestHost) => targetLabel(request(h).target);
      // One at a time, and the third one's deploy began after the first was done.
      const firstDone = events.findIndex((e) => e.host === label(targets[0]) && /is active/.test(e.message));
      expect(events.findIndex((e) => e.host === label(targets[2]))).toBeGreaterThan(firstDone);
      for (const host of targets.slice(1)) {
        expect(events.filter((e) => e.host === label(host)).map((e) => e.message)).toContain('waiting for the fetch from the binary cache that started ahead');
      }
      for (const outcome of outcomes) expect(outcome.ok && outcome.result).toMatchObject({ bytesSent: 0, pathsCopied: 0, generation: 1 });
    });

    it("substituteOnTarget: the host fetches from its own substituters (its own nix.conf)", async () => {
      await fixture.update({ version: freshVersion('own-subst') });
      // Build on the deployer and fill a cache that only the host is configured to use.
      const own = await signingKey(path.join(dir, 'own'), 'host-own-cache-1');
      const ownCache = path.join(dir, 'own-cache');
      const { stdout } = await execa('nix', ['eval', '--raw', `${fixture.dir}#nixosConfigurations.good.config.system.build.toplevel.outPath`]);
      const outPath = stdout.trim();
      await execa('nix', ['build', '--no-link', `${fixture.dir}#nixosConfigurations.good.config.system.build.toplevel`]);
      await execa('nix', ['copy', '--to', `file://${ownCache}?secret-key=${own.secretKeyFile}`, outPath]);

      const name = 'build-own-subst';
      extraHosts.push(name);
      const host = await world.createHost({ name, nixConf: `substituters = file://${ownCache}\ntrusted-public-keys = ${own.publicKey}` });
      expect((await world.exec(name, 'cat /etc/nix/nix.conf')).stdout).toContain(`substituters = file://${ownCache}`);
      expect(fs.readFileSync('/etc/nix/nix.conf', 'utf8')).not.toContain(ownCache);

      const result = await deploy(request(host, { substituteOnTarget: true }), { evalCacheDir });
      const closure = await localClosure([outPath]);
      expect(result.outPath).toBe(outPath);
      expect(result).toMatchObject({ bytesSent: 0, pathsCopied: 0, generation: 1 });
      expect(await validOnHost(world, host, closure)).toBe(true);
      expect(await currentSystem(world, host)).toBe(outPath);
    });
  });

  it('many hosts at once: one failing activation neither stops nor touches the others', async () => {
    const many = ['many-1', 'many-2', 'many-3', 'many-4'].map((n) => hosts[n]);
    const first = freshVersion('many-v1');
    await fixture.update({ version: first });
    const initial = await deployMany(many.map((h) => request(h)), { evalCacheDir });
    expect(initial.map((o) => o.ok)).toEqual([true, true, true, true]);
    const before = await Promise.all(many.map((h) => currentSystem(world, h)));

    const second = freshVersion('many-v2');
    await fixture.update({ version: second });
    const requests = many.map((h, i) => request(h, {}, i === 2 ? 'fail-activation' : 'good'));
    const outcomes = await deployMany(requests, { evalCacheDir, concurrency: 4 });

    expect(outcomes.map((o) => o.host)).toEqual(requests.map((r) => targetLabel(r.target)));
    expect(outcomes.map((o) => o.host)).toEqual(many.map((h) => `127.0.0.1:${h.port}`));
    for (const [i, outcome] of outcomes.entries()) {
      const host = many[i];
      if (i === 2) {
        expect(outcome.ok).toBe(false);
        const error = (outcome as { error: Error }).error;
        expect(error).toBeInstanceOf(DeployError);
        expect((error as DeployError).step).toBe('activate');
        expect(error.message).toMatch(/exited with code 4/);
        expect(error.message).toMatch(/Rolled back to generation 1/);
        expect(await currentSystem(world, host)).toBe(before[i]);
        expect(await generations(world, host)).toEqual([1]);
        expect((await waitForService(host)).version).toBe(first);
      } else {
        expect(outcome.ok).toBe(true);
        const result = (outcome as { result: { outPath: string; generation?: number } }).result;
        expect(result.generation).toBe(2);
        expect(await currentSystem(world, host)).toBe(result.outPath);
        expect((await waitForService(host)).version).toBe(second);
      }
    }
  });
});
