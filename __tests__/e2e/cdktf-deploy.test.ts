/**
 * The example app's `local` stack with the real cdktf CLI (`npx cdktf deploy`), the real
 * terraform and the bundled provider, against a test world of its own. It runs in a temp
 * copy of the app (main.ts, cdktf.json, tsconfig.json, package.json copied; lib, providers,
 * bin, node_modules and the world's scripts symlinked; the fixture flake copied so that the
 * test can change one machine), so its state and cdktf.out never touch the checkout's.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { installProvider } from '../../bin/provider-install';
import { TestHost, World } from '../../world/world';
import { currentSystem, generations, tempDir, waitForService } from '../support/world';
import { copyApp, flakeGit, localStackWorld, ROOT } from '../support/app';

const WORLD_DIR = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/test-cdktf-deploy`;

interface Run {
  status: number | null;
  out: string;
}

describe('cdktf deploy of the local stack (real cdktf CLI, terraform, provider, hosts)', () => {
  let world: World;
  let web: TestHost;
  let db: TestHost;
  let work: string;
  let app: string;
  let env: NodeJS.ProcessEnv;
  const before: { [name: string]: string } = {};

  beforeAll(async () => {
    ({ world, web, db } = await localStackWorld(WORLD_DIR));
    work = tempDir('cdktf-deploy');
    app = copyApp(work);
    const installed = await installProvider({ dir: path.join(work, 'providers') });
    env = {
      ...process.env,
      TF_CLI_CONFIG_FILE: installed.cliConfig,
      CHECKPOINT_DISABLE: '1',
      // cdktf otherwise links providers into ~/.terraform.d/plugin-cache, pointing at this test's temp mirror.
      CDKTF_DISABLE_PLUGIN_CACHE_ENV: '1',
      CDKTF_NIXOS_WORLD: WORLD_DIR,
      CDKTF_NIXOS_STACKS: 'local',
      CI: '1',
      FORCE_COLOR: '0',
    };
    delete env.TF_LOG;
  }, 300_000);
  afterAll(async () => {
    await world?.removeHost('host1');
    await world?.removeHost('host2');
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  function run(command: string, args: string[], cwd = app): Run {
    const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 400_000 });
    return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
  }
  const cdktf = (...args: string[]) => run('npx', ['cdktf', ...args, '--skip-provider-lock']);

  function state(): { [name: string]: { [k: string]: unknown } } {
    const s = JSON.parse(fs.readFileSync(path.join(app, 'terraform.local.tfstate'), 'utf8'));
    return Object.fromEntries(
      s.resources.filter((r: { type: string }) => r.type === 'nixos_system').map((r: { name: string; instances: { attributes: { [k: string]: unknown } }[] }) => [r.name.replace(/_[0-9A-F]{8}$/, ''), r.instances[0].attributes]),
    );
  }

  test('deploy: both machines active, services answer, web knows db\'s address from special args', async () => {
    const d = cdktf('deploy', 'local', '--auto-approve');
    expect(d.out).toContain('Apply complete');
    expect(d.status).toBe(0);
    const s = state();
    expect(Object.keys(s).sort()).toEqual(['db', 'web']);
    expect(await currentSystem(world, web)).toBe(s.web.closure_path);
    expect(await currentSystem(world, db)).toBe(s.db.closure_path);
    const webAnswer = await waitForService(web);
    const dbAnswer = await waitForService(db);
    expect(webAnswer.system).toBe(s.web.closure_path);
    expect(dbAnswer.system).toBe(s.db.closure_path);
    expect(webAnswer.terraform).toEqual({ db: { host: db.serviceAddress, port: db.servicePort } });
    before.web = s.web.closure_path as string;
    before.db = s.db.closure_path as string;
    expect(await generations(world, web)).toEqual([1]);
    expect(await generations(world, db)).toEqual([1]);
  });

  test('redeploy with no change: Terraform plans no changes, no new generation', async () => {
    const d = cdktf('deploy', 'local', '--auto-approve');
    expect(d.status).toBe(0);
    expect(d.out).toContain('No changes');
    expect(await generations(world, web)).toEqual([1]);
    expect(await generations(world, db)).toEqual([1]);
  });

  test('one machine changes: diff + plan-summary show exactly that update; deploy changes only db', async () => {
    const settingsFile = path.join(app, 'world', 'fixture-flake', 'settings.json');
    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    fs.writeFileSync(settingsFile, JSON.stringify({ ...settings, machinePackages: { db: [{ name: 'hello', version: '2.13', sizeBytes: 20480 }] } }, null, 2));
    flakeGit(app, ['commit', '-qam', 'db gets hello 2.13']);

    const diff = cdktf('diff', 'local');
    expect(diff.status).toBe(0);
    expect(diff.out).toContain('1 to change');
    const planFile = path.join(app, 'cdktf.out', 'stacks', 'local', 'plan');
    expect(fs.existsSync(planFile)).toBe(true);
    const show = spawnSync('terraform', ['show', '-json', 'plan'], { cwd: path.dirname(planFile), env, encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(show.status).toBe(0);
    const planJson = path.join(work, 'plan.json');
    fs.writeFileSync(planJson, show.stdout);
    const summary = run('node', [path.join(ROOT, 'bin', 'cdktf-nixos.js'), 'plan-summary', planJson, '--title', 'Stack `local`'], work);
    process.stderr.write(`plan-summary of the real change:\n${summary.out}\n`);
    expect(summary.status).toBe(0);
    const md = summary.out;
    const newDb = JSON.parse(show.stdout).resource_changes.find((r: { type: string; name: string }) => r.type === 'nixos_system' && r.name.startsWith('db_')).change.after.closure_path as string;
    expect(newDb).not.toBe(before.db);
    const short = (p: string) => `${path.basename(p).slice(0, 8)}…${path.basename(p).slice(32)}`;
    expect(md).toContain('1 to update; 1 unchanged.');
    expect(md).toMatch(new RegExp(`\\| \`nixos_system\\.db_[0-9A-F]{8}\` \\| \`${db.address}:${db.port}\` \\| update \\| \`${short(before.db)}\` → \`${short(newDb)}\` \\|`));
    expect(md).toMatch(/1 host unchanged: `web_[0-9A-F]{8}`\./);
    expect(md).toContain('- changed: `hello` 2.12 → 2.13');
    expect(md).not.toContain('added:');
    expect(md).not.toContain('removed:');
    // The size delta, computed here independently from the two closures in the local store.
    const size = (p: string) => {
      const r = spawnSync('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '-rS', '--json', p], { encoding: 'utf8' });
      const info = JSON.parse(r.stdout);
      const entries: { narSize: number }[] = Array.isArray(info) ? info : Object.values(info);
      return entries.reduce((a, e) => a + e.narSize, 0);
    };
    const delta = size(newDb) - size(before.db);
    expect(delta).toBeGreaterThan(16_000);
    expect(md).toContain(`(+${(delta / 1024).toFixed(1)} KiB)`);

    const d = cdktf('deploy', 'local', '--auto-approve');
    expect(d.status).toBe(0);
    expect(d.out).toContain('1 changed');
    const s = state();
    expect(s.db.closure_path).toBe(newDb);
    expect(s.web.closure_path).toBe(before.web);
    expect(await currentSystem(world, db)).toBe(newDb);
    expect(await currentSystem(world, web)).toBe(before.web);
    expect(await generations(world, db)).toEqual([1, 2]);
    expect(await generations(world, web)).toEqual([1]);
    expect((await waitForService(web)).system).toBe(before.web);
    expect((await waitForService(db)).system).toBe(newDb);
  });
});
