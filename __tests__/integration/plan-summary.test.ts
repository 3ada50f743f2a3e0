/**
 * plan-summary with real closures built from the fixture flake: both closures local, a
 * planned closure built from its derivation, and an old closure that exists only on a test
 * host (read over SSH with the host key from the plan's prior state).
 */
import execa from 'execa';
import * as fs from 'fs';
import * as path from 'path';
import { deploy, evaluate } from '../../lib/engine';
import { localClosureInfo, planSummary, summarizeSystems } from '../../lib/plan-summary';
import { TestHost, World } from '../../world/world';
import { currentSystem, Fixture, tempDir } from '../support/world';

const WORLD_DIR = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/test-plan-summary`;

describe('plan-summary with real closures', () => {
  let fixture: Fixture;
  let work: string;
  let world: World;
  let host: TestHost;
  const unique = `${process.pid}${Date.now()}`;

  beforeAll(async () => {
    fixture = await Fixture.create({ version: `ps${unique}` });
    work = tempDir('plan-summary');
    world = await World.open(WORLD_DIR);
    host = await world.createHost({ name: 'ps-a' });
  }, 120_000);
  afterAll(async () => {
    await world?.removeHost('ps-a');
    fixture?.remove();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** Evaluates the fixture's `db` as it is now; builds it unless told not to. */
  async function db(build = true): Promise<{ outPath: string; drvPath: string }> {
    const e = await evaluate({ flake: fixture.flake('db') }, path.join(work, 'eval'));
    if (build) await execa('nix-store', ['--realise', e.drvPath!]);
    return { outPath: e.outPath, drvPath: e.drvPath! };
  }

  function planJson(before: string, after: { outPath: string; drvPath: string }, knownHostsFile?: string) {
    const attrs = (closure: string, drv: string | null) => ({
      host: host.address,
      port: host.port,
      user: null,
      private_key_file: null,
      host_key: null,
      host_key_seen: world.hostKey(host.name),
      bastion: null,
      closure_path: closure,
      drv_path: drv,
    });
    return {
      format_version: '1.2',
      resource_changes: [
        { address: 'nixos_system.db', mode: 'managed', type: 'nixos_system', name: 'db', provider_config_key: 'nixos', change: { actions: ['update'], before: attrs(before, null), after: attrs(after.outPath, after.drvPath), after_unknown: {} } },
        { address: 'nixos_system.web', mode: 'managed', type: 'nixos_system', name: 'web', provider_config_key: 'nixos', change: { actions: ['no-op'], before: attrs('/nix/store/x', null), after: attrs('/nix/store/x', null), after_unknown: {} } },
      ],
      configuration: {
        provider_config: {
          nixos: { name: 'nixos', expressions: { private_key_file: { constant_value: world.clientKeyFile }, ...(knownHostsFile ? { known_hosts_file: { constant_value: knownHostsFile } } : {}) } },
        },
      },
    };
  }

  const total = async (p: string) => [...(await localClosureInfo(p)).sizes.values()].reduce((a, b) => a + b, 0);

  test('both closures local: a package version change, an added package, and the size delta', async () => {
    const v1 = await db();
    await fixture.update({ machinePackages: { db: [{ name: 'hello', version: '2.13', sizeBytes: 12288 }, { name: 'zstd', version: '1.5.5', sizeBytes: 2048 }] } });
    // The new closure is not built yet: plan-summary builds it from the plan's derivation.
    const v2 = await db(false);
    expect((await execa('nix-store', ['--check-validity', v2.outPath], { reject: false })).exitCode).not.toBe(0);
    const [s] = await summarizeSystems(planJson(v1.outPath, v2));
    expect(s.note).toBeUndefined();
    expect(s.diff!.changed).toEqual([{ name: 'hello', from: '2.12', to: '2.13' }]);
    expect(s.diff!.added).toEqual([{ name: 'zstd', version: '1.5.5' }]);
    expect(s.diff!.removed).toEqual([]);
    expect(s.oldSource).toBe('the deployer');
    const delta = (await total(v2.outPath)) - (await total(v1.outPath));
    expect(delta).toBeGreaterThan(8192 + 2048);
    expect(s.diff!.sizeAfter - s.diff!.sizeBefore).toBe(delta);
    const md = await planSummary(planJson(v1.outPath, v2));
    expect(md).toContain(`(+${(delta / 1024).toFixed(1)} KiB)`);
    expect(md).toContain('1 host unchanged: `web`.');
  });

  test('--no-build: a planned closure that is not built is reported, not built', async () => {
    const v1 = await db();
    await fixture.update({ machinePackages: { db: [{ name: 'hello', version: '2.14', sizeBytes: 100 }] } });
    const v3 = await db(false);
    const [s] = await summarizeSystems(planJson(v1.outPath, v3), { build: false });
    expect(s.note).toMatch(/is not built/);
    expect((await execa('nix-store', ['--check-validity', v3.outPath], { reject: false })).exitCode).not.toBe(0);
  });

  test('the old closure exists only on the host: its contents are read over SSH', async () => {
    await fixture.update({ version: `ps-host-${unique}`, machinePackages: { db: [{ name: 'openssl', version: '1.1.1', sizeBytes: 1000 }] } });
    const old = await db();
    const knownHosts = path.join(work, 'known_hosts');
    await deploy({ target: { host: host.address, port: host.port, privateKeyFile: world.clientKeyFile, knownHostsFile: knownHosts }, system: { storePath: old.outPath }, magicRollback: false }, { evalCacheDir: path.join(work, 'eval') });
    expect(await currentSystem(world, host)).toBe(old.outPath);
    // Gone from the deployer's store (only the system root; its packages may be shared).
    const del = await execa('nix-store', ['--delete', old.outPath], { reject: false });
    expect(del.exitCode).toBe(0);
    expect((await execa('nix-store', ['--check-validity', old.outPath], { reject: false })).exitCode).not.toBe(0);

    await fixture.update({ machinePackages: { db: [{ name: 'openssl', version: '3.0.2', sizeBytes: 1000 }] } });
    const next = await db();
    const [s] = await summarizeSystems(planJson(old.outPath, next, knownHosts));
    expect(s.note).toBeUndefined();
    expect(s.oldSource).toBe(`${host.address}:${host.port}`);
    expect(s.diff!.changed).toEqual([{ name: 'openssl', from: '1.1.1', to: '3.0.2' }]);
    const hostSizes = JSON.parse((await world.exec(host.name, `nix --extra-experimental-features nix-command path-info -rS --json ${old.outPath}`)).stdout);
    const oldTotal = (Array.isArray(hostSizes) ? hostSizes : Object.values(hostSizes)).reduce((a: number, e: { narSize: number }) => a + e.narSize, 0);
    expect(s.diff!.sizeBefore).toBe(oldTotal);
    expect(s.diff!.sizeAfter).toBe(await total(next.outPath));
    const md = await planSummary(planJson(old.outPath, next, knownHosts));
    expect(md).toContain('(old closure read from the host)');
    expect(md).toContain('- changed: `openssl` 1.1.1 → 3.0.2');

    // A wrong pinned host key is refused: the summary says so instead of reading.
    const wrong = planJson(old.outPath, next, knownHosts);
    (wrong.resource_changes[0].change.before as { host_key_seen: string }).host_key_seen = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4N8sVspYasBq6pJ6B3joKVObN/1NILlYhF9agYlBkt';
    const [bad] = await summarizeSystems(wrong);
    expect(bad.diff).toBeUndefined();
    expect(bad.note).toMatch(/neither in the local store nor readable on/);
  });
});
