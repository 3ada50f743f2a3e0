/**
 * The `nixos` provider under faults, with the real terraform binary and real test hosts:
 * ten hosts in one apply with one failing, and the provider process killed mid-apply.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluate } from '../../lib/engine';
import { installProvider, Installed, terraformEnv } from '../../bin/provider-install';
import { TestHost, World } from '../../world/world';
import { currentSystem, Fixture, tempDir, waitForService } from '../support/world';
import { runTerraform, TerraformRun } from '../support/terraform';

// CDKTF_NIXOS_TEST_WORLD_ROOT keeps concurrent runs (two checkouts) out of each other's hosts.
const WORLD_DIR = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/test-provider-faults`;
const HOSTS = 10;


interface ShownResource {
  address: string;
  values: { closure_path: string; generation: number | null; host: string; port: number };
}

describe('nixos_system under faults, with the real terraform', () => {
  let world: World;
  let hosts: TestHost[];
  let crashHost: TestHost;
  let fixture: Fixture;
  let work: string;
  let installed: Installed;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    world = await World.open(WORLD_DIR);
    await world.removeAll();
    const names = [...Array.from({ length: HOSTS }, (_, i) => `many-${i}`), 'crash'];
    const created = await Promise.all(names.map((name) => world.createHost({ name })));
    hosts = created.slice(0, HOSTS);
    crashHost = created[HOSTS];
    // A version of its own, so that no other run's processes share these closures.
    fixture = await Fixture.create({ version: `faults-${process.pid}-1`, slowServiceSeconds: 8 });
    work = tempDir('provider-faults');
    installed = await installProvider({ dir: path.join(work, 'providers') });
    env = terraformEnv(installed);
  });
  afterAll(async () => {
    if (world) await world.removeAll();
    fixture?.remove();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  function stackDir(name: string): string {
    const dir = path.join(work, name);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  function writeStack(dir: string, resources: { name: string; host: TestHost; flake: string; extra?: string }[]): void {
    const parts = [
      `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}`,
      `provider "nixos" {\n  private_key_file = ${JSON.stringify(world.clientKeyFile)}\n  known_hosts_file = ${JSON.stringify(path.join(work, 'known_hosts'))}\n  eval_cache_dir = ${JSON.stringify(path.join(work, 'eval'))}\n}`,
      ...resources.map(
        (r) =>
          `resource "nixos_system" "${r.name}" {\n  flake = ${JSON.stringify(r.flake)}\n  host  = ${JSON.stringify(r.host.address)}\n  port  = ${r.host.port}\n` +
          `  magic_rollback_seconds = 5\n  lock_wait_seconds = 30\n${r.extra ?? ''}}`,
      ),
    ];
    fs.writeFileSync(path.join(dir, 'main.tf'), parts.join('\n\n') + '\n');
  }

  function terraform(dir: string, args: string[]): TerraformRun {
    return runTerraform([...args, '-no-color', '-input=false'], { cwd: dir, env });
  }

  /** The resources of `terraform show -json` (the state), by address. */
  function shownState(dir: string): { [address: string]: ShownResource['values'] } {
    const r = spawnSync('terraform', ['show', '-json'], { cwd: dir, env, encoding: 'utf8' });
    expect(r.status).toBe(0);
    const resources: ShownResource[] = JSON.parse(r.stdout).values?.root_module?.resources ?? [];
    return Object.fromEntries(resources.map((res) => [res.address, res.values]));
  }

  const closureOf = async (name: string) => (await evaluate({ flake: fixture.flake(name) }, path.join(work, 'eval-test'))).outPath;

  test('ten hosts in one apply, one failing: nine get the new system, and the state is right for all ten', async () => {
    const dir = stackDir('many');
    const failing = 3;
    const resources = (failName: string) =>
      hosts.map((host, i) => ({ name: `h${i}`, host, flake: fixture.flake(i === failing ? failName : 'good') }));
    writeStack(dir, resources('good'));
    expect(terraform(dir, ['init']).status).toBe(0);
    const v1 = await closureOf('good');
    const first = terraform(dir, ['apply', '-auto-approve']);
    expect(first.out).toContain(`Apply complete! Resources: ${HOSTS} added`);
    expect(first.status).toBe(0);
    expect(await Promise.all(hosts.map((h) => currentSystem(world, h)))).toEqual(hosts.map(() => v1));

    // A new version for all, and for one of them a configuration whose activation fails.
    await fixture.update({ version: `faults-${process.pid}-2` });
    const v2 = await closureOf('good');
    const broken = await closureOf('fail-activation');
    writeStack(dir, resources('fail-activation'));
    const started = Date.now();
    const second = terraform(dir, ['apply', '-auto-approve']);
    const seconds = (Date.now() - started) / 1000;
    expect(second.status).toBe(1);
    expect(second.out).toMatch(new RegExp(`Deploying to 127\\.0\\.0\\.1 failed[\\s\\S]*nixos_system\\.h${failing}`));
    expect(second.out.match(/Error: Deploying to/g)).toHaveLength(1);
    expect(second.out).toContain(`Modifications complete after`);
    process.stderr.write(`ten hosts, one failing: apply took ${seconds.toFixed(1)} s\n`);

    // The hosts: nine on the new system, the failing one back on its old one.
    const running = await Promise.all(hosts.map((h) => currentSystem(world, h)));
    expect(running).toEqual(hosts.map((_, i) => (i === failing ? v1 : v2)));
    expect((await waitForService(hosts[failing])).system).toBe(v1);
    // The state says the same.
    const state = shownState(dir);
    expect(Object.keys(state).sort()).toEqual(hosts.map((_, i) => `nixos_system.h${i}`).sort());
    hosts.forEach((h, i) => {
      expect(state[`nixos_system.h${i}`]).toMatchObject({ closure_path: i === failing ? v1 : v2, port: h.port });
      if (i !== failing) expect(state[`nixos_system.h${i}`].generation).toBe(2);
    });
    // The next plan retries the failing host only.
    const again = terraform(dir, ['plan', '-detailed-exitcode']);
    expect(again.status).toBe(2);
    expect(again.out).toContain('0 to add, 1 to change, 0 to destroy');
    expect(again.out).toContain(`~ closure_path           = "${v1}" -> "${broken}"`);
    // Fixed, it converges.
    writeStack(dir, resources('good'));
    expect(terraform(dir, ['apply', '-auto-approve']).status).toBe(0);
    expect(await Promise.all(hosts.map((h) => currentSystem(world, h)))).toEqual(hosts.map(() => v2));
    expect(terraform(dir, ['plan', '-detailed-exitcode']).status).toBe(0);
  });

  test('the provider killed mid-apply: apply fails, the next plan reads the truth, and the apply after converges', async () => {
    const dir = stackDir('crash');
    writeStack(dir, [{ name: 'c', host: crashHost, flake: fixture.flake('good') }]);
    expect(terraform(dir, ['init']).status).toBe(0);
    expect(terraform(dir, ['apply', '-auto-approve']).status).toBe(0);
    const before = await currentSystem(world, crashHost);
    expect(before).toBe(await closureOf('good'));

    // An activation that takes 8 s; the provider dies while it runs.
    const slow = await closureOf('slow-activation');
    writeStack(dir, [{ name: 'c', host: crashHost, flake: fixture.flake('slow-activation') }]);
    const child = spawn('terraform', ['apply', '-auto-approve', '-no-color', '-input=false'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

    const pgrep = (pattern: string, parent?: number) =>
      spawnSync('pgrep', [...(parent ? ['-P', String(parent)] : []), '-f', pattern], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean)
        .map(Number);
    let activating: number[] = [];
    for (let i = 0; i < 300 && activating.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      activating = pgrep(`${slow}/bin/switch-to-configuration`);
    }
    expect(activating.length).toBeGreaterThan(0);
    // This apply's provider process only: a child of this terraform.
    const providers = pgrep('terraform-provider-nixos', child.pid);
    expect(providers.length).toBeGreaterThan(0);
    for (const pid of providers) process.kill(pid, 'SIGKILL');

    const code = await exited;
    expect(code).toBe(1);
    expect(out).toMatch(/plugin|provider/i);
    // The state still holds the old system: the crashed apply recorded nothing.
    expect(shownState(dir)['nixos_system.c'].closure_path).toBe(before);

    // Let the host settle: the activation finishes, and unconfirmed, magic rollback decides.
    for (let i = 0; i < 300 && pgrep(`${slow}/bin/switch-to-configuration`).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 7000));
    const truth = await currentSystem(world, crashHost);
    expect([before, slow]).toContain(truth);
    process.stderr.write(`after the provider crash the host runs the ${truth === before ? 'old (rolled back)' : 'new'} system\n`);

    // The next plan refreshes from the host and shows what remains to do.
    const p = terraform(dir, ['plan', '-detailed-exitcode']);
    expect(p.status).toBe(2);
    expect(p.out).toContain('1 to change');
    if (truth === before) expect(p.out).toContain(`~ closure_path           = "${before}" -> "${slow}"`);
    else expect(p.out).not.toMatch(/closure_path\s+= "[^"]+" ->/);

    const a = terraform(dir, ['apply', '-auto-approve']);
    expect(a.out).toContain('Apply complete!');
    expect(a.status).toBe(0);
    expect(await currentSystem(world, crashHost)).toBe(slow);
    expect(shownState(dir)['nixos_system.c'].closure_path).toBe(slow);
    expect(terraform(dir, ['plan', '-detailed-exitcode']).status).toBe(0);
  });
});
