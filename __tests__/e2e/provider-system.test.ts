/**
 * The `nixos` provider, bundled and installed by `cdktf-nixos provider install`, driven
 * by the real terraform binary against real test hosts (sshd, own store, own /run).
 * Plain HCL; no cdktf.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deploy, evaluate } from '../../lib/engine';
import { installProvider, Installed, terraformEnv } from '../../bin/provider-install';
import { TestHost, World } from '../../world/world';
import { currentSystem, Fixture, generations, tempDir, waitForService } from '../support/world';
import { runTerraform, TerraformRun } from '../support/terraform';

// CDKTF_NIXOS_TEST_WORLD_ROOT keeps concurrent runs (two checkouts) out of each other's hosts.
const WORLD_DIR = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/test-provider`;
const SECRET = 'correct-horse-battery-staple-4711';
const WO_SECRET = 'write-only-tuna-fish-8152';


describe('nixos_system with the real terraform and the bundled provider', () => {
  let world: World;
  let host: TestHost;
  let hostB: TestHost;
  let fixture: Fixture;
  let work: string;
  let stack: string;
  let installed: Installed;
  let env: NodeJS.ProcessEnv;
  const closures: { [version: string]: string } = {};
  let wo = { text: WO_SECRET, version: 1 };

  beforeAll(async () => {
    world = await World.open(WORLD_DIR);
    await world.removeAll();
    [host, hostB] = await Promise.all([world.createHost({ name: 'prov-a' }), world.createHost({ name: 'prov-b' })]);
    fixture = await Fixture.create({ version: '1' });
    work = tempDir('provider-e2e');
    stack = path.join(work, 'stack');
    fs.mkdirSync(stack);
    installed = await installProvider({ dir: path.join(work, 'providers') });
    fs.writeFileSync(path.join(work, 'secret'), `${SECRET}\n`);
    env = terraformEnv(installed);
  });
  afterAll(async () => {
    await world?.removeHost('prov-a');
    await world?.removeHost('prov-b');
    fixture?.remove();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  interface Options {
    extra?: string;
    healthCheck?: string;
    key?: boolean;
    second?: boolean;
  }
  function writeConfig(options: Options = {}): void {
    const systemA = [
      `  flake = ${JSON.stringify(fixture.flake('good'))}`,
      `  host  = ${JSON.stringify(host.address)}`,
      `  port  = ${host.port}`,
      `  magic_rollback_seconds = 10`,
      options.healthCheck ? `  health_checks {\n    command = ${JSON.stringify(options.healthCheck)}\n    retries = 1\n  }` : '',
      options.key ? `  keys "db" {\n    file = ${JSON.stringify(path.join(work, 'secret'))}\n    permissions = "0400"\n  }` : '',
      options.key ? `  keys "api" {\n    text_wo = var.api_secret\n    text_wo_version = ${wo.version}\n  }` : '',
    ].filter(Boolean);
    const parts = [
      `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}`,
      `provider "nixos" {\n  private_key_file = ${JSON.stringify(world.clientKeyFile)}\n  known_hosts_file = ${JSON.stringify(path.join(work, 'known_hosts'))}\n  eval_cache_dir = ${JSON.stringify(path.join(work, 'eval'))}\n}`,
      `resource "nixos_system" "a" {\n${systemA.join('\n')}\n}`,
      `output "closure" {\n  value = nixos_system.a.closure_path\n}`,
      `output "generation" {\n  value = nixos_system.a.generation\n}`,
    ];
    if (options.second) {
      parts.push(
        `resource "terraform_data" "peer" {\n  input = "peer-of-b"\n}`,
        `resource "nixos_system" "b" {\n  flake = ${JSON.stringify(fixture.flake('web'))}\n  host = ${JSON.stringify(hostB.address)}\n  port = ${hostB.port}\n` +
          `  special_args = {\n    peer = terraform_data.peer.id\n    replicas = 2\n  }\n}`,
      );
    }
    // The write-only text comes from an ephemeral variable (TF_VAR_api_secret): a literal would sit in the configuration.
    if (options.key) parts.push(`variable "api_secret" {\n  type      = string\n  ephemeral = true\n}`);
    if (options.extra) parts.push(options.extra);
    fs.writeFileSync(path.join(stack, 'main.tf'), parts.join('\n\n') + '\n');
  }

  function terraform(args: string[], extraEnv: NodeJS.ProcessEnv = {}, cwd = stack): TerraformRun {
    return runTerraform(args, { cwd, env: { ...env, TF_VAR_api_secret: wo.text, ...extraEnv } });
  }
  const plan = (...extra: string[]) => terraform(['plan', '-no-color', '-input=false', ...extra]);
  const apply = (...extra: string[]) => terraform(['apply', '-auto-approve', '-no-color', '-input=false', ...extra]);

  function stateOf(address: string): { [k: string]: unknown } | undefined {
    const state = JSON.parse(fs.readFileSync(path.join(stack, 'terraform.tfstate'), 'utf8'));
    const [type, name] = address.split('.');
    const resource = state.resources.find((r: { type: string; name: string }) => r.type === type && r.name === name);
    return resource?.instances?.[0]?.attributes;
  }

  async function closureOf(version: string): Promise<string> {
    if (!closures[version]) closures[version] = (await evaluate({ flake: fixture.flake('good') }, path.join(work, 'eval-test'))).outPath;
    return closures[version];
  }

  test('init works offline from the installed mirror', () => {
    writeConfig();
    const init = terraform(['init', '-no-color', '-input=false']);
    expect(init.out).toContain('Terraform has been successfully initialized');
    expect(init.status).toBe(0);
    const lock = fs.readFileSync(path.join(stack, '.terraform.lock.hcl'), 'utf8');
    expect(lock).toContain('registry.terraform.io/cdktf-nixos/nixos');
    expect(lock).toContain('"0.1.0"');
  });

  test('plan shows the closure path; apply deploys generation 1 and the service answers', async () => {
    const v1 = await closureOf('1');
    const p = plan('-out=tfplan');
    expect(p.status).toBe(0);
    expect(p.out).toContain(`closure_path           = "${v1}"`);
    expect(p.out).toContain('1 to add');

    const a = apply('tfplan');
    expect(a.out).toContain('Apply complete! Resources: 1 added');
    expect(a.status).toBe(0);
    expect(stateOf('nixos_system.a')).toMatchObject({ closure_path: v1, generation: 1, host_key_seen: world.hostKey(host.name), id: `${host.address}:${host.port}` });
    expect(await currentSystem(world, host)).toBe(v1);
    expect((await waitForService(host)).system).toBe(v1);
  });

  test('a second plan shows no changes', () => {
    const p = plan('-detailed-exitcode');
    expect(p.out).toContain('No changes');
    expect(p.status).toBe(0);
  });

  test('an edit of the fixture plans an in-place update old -> new; apply gives generation 2', async () => {
    const v1 = await closureOf('1');
    await fixture.update({ version: '2' });
    const v2 = await closureOf('2');
    expect(v2).not.toBe(v1);
    const p = plan('-detailed-exitcode', '-out=tfplan');
    expect(p.status).toBe(2);
    expect(p.out).toContain('~ update in-place');
    expect(p.out).toContain(`~ closure_path           = "${v1}" -> "${v2}"`);
    expect(p.out).toContain('1 to change');
    expect(p.out).not.toContain('must be replaced');

    const a = apply('tfplan');
    expect(a.status).toBe(0);
    expect(stateOf('nixos_system.a')).toMatchObject({ closure_path: v2, generation: 2 });
    expect(await generations(world, host)).toEqual([1, 2]);
    expect((await waitForService(host)).version).toBe('2');
  });

  test('drift: a system switched by hand shows in the plan, and apply puts the declared one back', async () => {
    const v1 = await closureOf('1');
    const v2 = await closureOf('2');
    // Someone deploys the old system by hand, outside Terraform.
    await deploy(
      { target: { host: host.address, port: host.port, privateKeyFile: world.clientKeyFile, knownHostsFile: path.join(work, 'known_hosts') }, system: { storePath: v1 }, magicRollback: false },
      { evalCacheDir: path.join(work, 'eval-test') },
    );
    expect(await currentSystem(world, host)).toBe(v1);
    const p = plan('-detailed-exitcode');
    expect(p.status).toBe(2);
    expect(p.out).toContain(`~ closure_path           = "${v1}" -> "${v2}"`);
    const a = apply();
    expect(a.status).toBe(0);
    expect(await currentSystem(world, host)).toBe(v2);
    expect(stateOf('nixos_system.a')).toMatchObject({ closure_path: v2, generation: 4 });
    expect(plan('-detailed-exitcode').status).toBe(0);
  });

  test('a failing health check rolls back, and the state keeps the old closure', async () => {
    const v2 = await closureOf('2');
    await fixture.update({ version: '3' });
    writeConfig({ healthCheck: 'false' });
    const a = apply();
    expect(a.status).toBe(1);
    expect(a.out).toMatch(/Deploying to .* failed/);
    expect(await currentSystem(world, host)).toBe(v2);
    expect(stateOf('nixos_system.a')).toMatchObject({ closure_path: v2 });
    // The next plan retries.
    expect(plan('-detailed-exitcode').status).toBe(2);
    writeConfig();
    const again = apply();
    expect(again.status).toBe(0);
    expect(stateOf('nixos_system.a')!.closure_path).not.toBe(v2);
    expect(plan('-detailed-exitcode').status).toBe(0);
  });

  test('a saved plan is never re-evaluated into something else: an edit after plan stops the apply', async () => {
    const before = await currentSystem(world, host);
    await fixture.update({ version: '4' });
    expect(plan('-out=tfplan').status).toBe(0);
    await fixture.update({ version: '5' });
    const a = apply('tfplan');
    expect(a.status).toBe(1);
    expect(a.out).toContain('inconsistent final plan');
    expect(await currentSystem(world, host)).toBe(before);
    expect(apply().status).toBe(0);
    expect((await waitForService(host)).version).toBe('5');
  });

  test('a secret reaches the host, and its text is in no state, plan or trace log', async () => {
    writeConfig({ key: true });
    const logFile = path.join(work, 'trace.log');
    const p = terraform(['plan', '-no-color', '-input=false', '-out=tfplan'], { TF_LOG: 'trace', TF_LOG_PATH: logFile });
    expect(p.status).toBe(0);
    expect(p.out).toContain('keys_hash');
    expect(p.out).toContain('(write-only attribute)');
    const shown = terraform(['show', '-json', 'tfplan']);
    expect(shown.status).toBe(0);
    const a = terraform(['apply', '-auto-approve', '-no-color', '-input=false', 'tfplan'], { TF_LOG: 'trace', TF_LOG_PATH: logFile });
    expect(a.status).toBe(0);
    expect((await world.exec(host.name, 'cat /run/keys/db')).stdout.trim()).toBe(SECRET);
    // The write-only text reached the host, through the apply's config only.
    expect((await world.exec(host.name, 'cat /run/keys/api')).stdout).toBe(WO_SECRET);
    expect(stateOf('nixos_system.a')!.keys_hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    const keysInState = stateOf('nixos_system.a')!.keys as { api: { text_wo: unknown; text_wo_version: number } };
    expect(keysInState.api).toMatchObject({ text_wo: null, text_wo_version: 1 });

    expect(plan('-detailed-exitcode').status).toBe(0);
    // A changed secret plans an update.
    fs.writeFileSync(path.join(work, 'secret'), `${SECRET}-rotated\n`);
    const changed = plan('-detailed-exitcode');
    expect(changed.status).toBe(2);
    expect(changed.out).toContain('~ keys_hash');
    expect(apply().status).toBe(0);
    expect((await world.exec(host.name, 'cat /run/keys/db')).stdout.trim()).toBe(`${SECRET}-rotated`);

    // A new write-only text with a new version plans an update and reaches the host.
    wo = { text: `${WO_SECRET}-rotated`, version: 2 };
    writeConfig({ key: true });
    const rotated = terraform(['plan', '-detailed-exitcode', '-no-color', '-input=false', '-out=tfplan2'], { TF_LOG: 'trace', TF_LOG_PATH: logFile });
    expect(rotated.status).toBe(2);
    expect(rotated.out).toMatch(/~ text_wo_version\s+= 1 -> 2/);
    const shown2 = terraform(['show', '-json', 'tfplan2']);
    expect(terraform(['apply', '-auto-approve', '-no-color', '-input=false', 'tfplan2'], { TF_LOG: 'trace', TF_LOG_PATH: logFile }).status).toBe(0);
    expect((await world.exec(host.name, 'cat /run/keys/api')).stdout).toBe(`${WO_SECRET}-rotated`);
    expect(plan('-detailed-exitcode').status).toBe(0);
    const shownState = terraform(['show', '-json']);
    expect(shownState.status).toBe(0);

    const files = [path.join(stack, 'terraform.tfstate'), path.join(stack, 'terraform.tfstate.backup'), path.join(stack, 'tfplan'), path.join(stack, 'tfplan2'), logFile].filter((f) => fs.existsSync(f));
    expect(files.length).toBe(5);
    for (const file of files) {
      const bytes = fs.readFileSync(file);
      for (const secret of [SECRET, WO_SECRET]) expect(bytes.includes(secret)).toBe(false);
    }
    for (const text of [shown.out, shown2.out, shownState.out, p.out, a.out, rotated.out]) {
      for (const secret of [SECRET, WO_SECRET]) expect(text.includes(secret)).toBe(false);
    }
    expect(fs.statSync(logFile).size).toBeGreaterThan(10_000);
  });

  test('special args from terraform_data, unknown until apply: the closure is known after apply', async () => {
    writeConfig({ key: true, second: true });
    const p = plan('-out=tfplan');
    expect(p.status).toBe(0);
    expect(p.out).toMatch(/closure_path\s+= \(known after apply\)/);
    const a = apply('tfplan');
    expect(a.status).toBe(0);
    const b = stateOf('nixos_system.b')!;
    const peer = stateOf('terraform_data.peer')!.id;
    const answer = await waitForService(hostB);
    expect(answer.system).toBe(b.closure_path);
    expect(answer.terraform).toEqual({ peer, replicas: 2 });
    expect(plan('-detailed-exitcode').status).toBe(0);
  });

  test('import adopts a running host; the next apply is a no-op and the plan is then clean', async () => {
    writeConfig({ key: true, second: true });
    const running = await currentSystem(world, host);
    expect(terraform(['state', 'rm', 'nixos_system.a']).status).toBe(0);
    const imp = terraform(['import', '-no-color', '-input=false', 'nixos_system.a', `root@${host.address}:${host.port}`]);
    expect(imp.out).toContain('Import successful');
    expect(imp.status).toBe(0);
    expect(stateOf('nixos_system.a')).toMatchObject({ closure_path: running, host: host.address, port: host.port, host_key_seen: world.hostKey(host.name) });
    const p = plan('-detailed-exitcode');
    // The configuration's own attributes (flake, ...) are not on the host: an in-place update that deploys nothing new.
    expect(p.status).toBe(2);
    expect(p.out).toContain('~ update in-place');
    expect(p.out).not.toMatch(/closure_path\s+= "[^"]+" ->/);
    const gens = await generations(world, host);
    expect(apply().status).toBe(0);
    expect(await generations(world, host)).toEqual(gens);
    expect(plan('-detailed-exitcode').status).toBe(0);
  });

  test('data source nixos_closure evaluates and builds without deploying', async () => {
    const dsStack = path.join(work, 'ds');
    fs.mkdirSync(dsStack);
    fs.writeFileSync(
      path.join(dsStack, 'main.tf'),
      `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}\n` +
        `provider "nixos" {\n  eval_cache_dir = ${JSON.stringify(path.join(work, 'eval'))}\n}\n` +
        `data "nixos_closure" "web" {\n  flake = ${JSON.stringify(fixture.flake('web'))}\n  special_args = { peer = "x" }\n  build = true\n}\n` +
        `output "out" {\n  value = data.nixos_closure.web.out_path\n}\noutput "drv" {\n  value = data.nixos_closure.web.drv_path\n}\noutput "size" {\n  value = data.nixos_closure.web.closure_size\n}\n`,
    );
    expect(terraform(['init', '-no-color', '-input=false'], {}, dsStack).status).toBe(0);
    const a = terraform(['apply', '-auto-approve', '-no-color', '-input=false'], {}, dsStack);
    expect(a.status).toBe(0);
    const out = JSON.parse(terraform(['output', '-json'], {}, dsStack).out.trim().split('\n\n')[0]);
    const expected = await evaluate({ flake: fixture.flake('web'), specialArgs: { peer: 'x' } }, path.join(work, 'eval-test'));
    expect(out.out.value).toBe(expected.outPath);
    expect(out.drv.value).toBe(expected.drvPath);
    expect(out.size.value).toBeGreaterThan(4096);
    expect(fs.existsSync(expected.outPath)).toBe(true);
  });

  test('timings: provider start-up, and a no-change plan of 1 host vs terraform_data only', async () => {
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const header = `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}\n`;
    const one = path.join(work, 'one-host');
    const data = path.join(work, 'data-only');
    fs.mkdirSync(one);
    fs.mkdirSync(data);
    fs.writeFileSync(
      path.join(one, 'main.tf'),
      header +
        `provider "nixos" {\n  private_key_file = ${JSON.stringify(world.clientKeyFile)}\n  known_hosts_file = ${JSON.stringify(path.join(work, 'known_hosts'))}\n  eval_cache_dir = ${JSON.stringify(path.join(work, 'eval'))}\n}\n` +
        `resource "nixos_system" "a" {\n  flake = ${JSON.stringify(fixture.flake('good'))}\n  host = ${JSON.stringify(host.address)}\n  port = ${host.port}\n}\n`,
    );
    fs.writeFileSync(path.join(data, 'main.tf'), `resource "terraform_data" "a" {\n  input = "x"\n}\n`);
    for (const dir of [one, data]) {
      expect(terraform(['init', '-no-color', '-input=false'], {}, dir).status).toBe(0);
      expect(terraform(['apply', '-auto-approve', '-no-color', '-input=false'], {}, dir).status).toBe(0);
    }
    const times = { one: [] as number[], data: [] as number[] };
    for (let i = 0; i < 5; i++) {
      const r1 = terraform(['plan', '-detailed-exitcode', '-no-color', '-input=false'], {}, one);
      expect(r1.status).toBe(0);
      times.one.push(r1.ms);
      const r2 = terraform(['plan', '-detailed-exitcode', '-no-color', '-input=false'], {}, data);
      expect(r2.status).toBe(0);
      times.data.push(r2.ms);
    }
    process.stderr.write(`no-change terraform plan, median of 5: 1 nixos_system ${median(times.one)} ms (${times.one.join(', ')}); terraform_data only ${median(times.data)} ms (${times.data.join(', ')})\n`);
    expect(median(times.one)).toBeLessThan(10_000);
  });

  test('a failed first deploy leaves no object in the state', async () => {
    const fresh = await world.createHost({ name: 'prov-c' });
    try {
      const dir = path.join(work, 'fail-create');
      fs.mkdirSync(dir);
      fs.writeFileSync(
        path.join(dir, 'main.tf'),
        `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}\n` +
          `provider "nixos" {\n  private_key_file = ${JSON.stringify(world.clientKeyFile)}\n  known_hosts_file = ${JSON.stringify(path.join(work, 'known_hosts'))}\n  eval_cache_dir = ${JSON.stringify(path.join(work, 'eval'))}\n}\n` +
          `resource "nixos_system" "c" {\n  flake = ${JSON.stringify(fixture.flake('fail-activation'))}\n  host = ${JSON.stringify(fresh.address)}\n  port = ${fresh.port}\n  magic_rollback_seconds = 5\n}\n`,
      );
      expect(terraform(['init', '-no-color', '-input=false'], {}, dir).status).toBe(0);
      const a = terraform(['apply', '-auto-approve', '-no-color', '-input=false'], {}, dir);
      expect(a.status).toBe(1);
      expect(a.out).toMatch(/Deploying to .* failed/);
      const state = JSON.parse(fs.readFileSync(path.join(dir, 'terraform.tfstate'), 'utf8'));
      expect(state.resources).toEqual([]);
      expect(terraform(['plan', '-detailed-exitcode', '-no-color', '-input=false'], {}, dir).out).toContain('1 to add');
    } finally {
      await world.removeHost('prov-c');
    }
  });

  test('an unreachable host gives a warning and keeps the state; the plan does not fail', async () => {
    const dir = path.join(work, 'gone');
    fs.mkdirSync(dir);
    fs.writeFileSync(
      path.join(dir, 'main.tf'),
      `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}\n` +
        `provider "nixos" {\n  private_key_file = ${JSON.stringify(world.clientKeyFile)}\n  known_hosts_file = ${JSON.stringify(path.join(work, 'known_hosts'))}\n  eval_cache_dir = ${JSON.stringify(path.join(work, 'eval'))}\n}\n` +
        `resource "nixos_system" "b" {\n  flake = ${JSON.stringify(fixture.flake('good'))}\n  host = ${JSON.stringify(hostB.address)}\n  port = ${hostB.port}\n}\n`,
    );
    expect(terraform(['init', '-no-color', '-input=false'], {}, dir).status).toBe(0);
    expect(terraform(['apply', '-auto-approve', '-no-color', '-input=false'], {}, dir).status).toBe(0);
    await world.removeHost('prov-b');
    const p = terraform(['plan', '-detailed-exitcode', '-no-color', '-input=false'], {}, dir);
    expect(p.out).toContain('Warning: Cannot read what');
    expect(p.out).toContain('No changes');
    expect(p.status).toBe(0);
  });

  test('destroy forgets the hosts and leaves them running', async () => {
    const running = await currentSystem(world, host);
    const d = terraform(['destroy', '-auto-approve', '-no-color', '-input=false']);
    expect(d.status).toBe(0);
    expect(d.out).toContain('destroyed');
    expect(stateOf('nixos_system.a')).toBeUndefined();
    expect(await currentSystem(world, host)).toBe(running);
    expect((await waitForService(host)).system).toBe(running);
  });
});
