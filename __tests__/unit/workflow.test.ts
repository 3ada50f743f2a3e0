/**
 * The pull-request workflow (.github/workflows/plan-summary.yml): its YAML is parsed, and
 * its non-GitHub commands (provider install; synth, cdktf diff, terraform show -json and
 * plan-summary through scripts/pr-plan-summary.sh) are RUN verbatim for stack `local`, in a
 * temp copy of the app, against a test world of its own. Fetching hashicorp/aws from the
 * registry and posting the comment need GitHub and the network: they do not run here.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { World } from '../../world/world';
import { copyApp, localStackWorld, ROOT } from '../support/app';
import { tempDir } from '../support/world';

const WORLD_DIR = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/test-workflow`;

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: { [k: string]: unknown };
  env?: { [k: string]: string };
}
interface Workflow {
  on: { [event: string]: unknown };
  permissions: { [k: string]: string };
  jobs: { [id: string]: { steps: Step[]; env?: { [k: string]: string } } };
}

const workflow = parse(fs.readFileSync(path.join(ROOT, '.github', 'workflows', 'plan-summary.yml'), 'utf8')) as Workflow;
const steps = workflow.jobs.plan.steps;
const step = (name: string) => {
  const s = steps.find((x) => x.name === name);
  if (!s?.run) throw new Error(`the workflow has no step "${name}" with a run command`);
  return s.run;
};

describe('the plan-summary workflow', () => {
  test('runs on pull requests: checkout, node 20, npm install, provider install, the script, the comment', () => {
    expect(Object.keys(workflow.on)).toEqual(['pull_request']);
    expect(workflow.permissions['pull-requests']).toBe('write');
    expect(steps.map((s) => s.uses ?? s.name)).toEqual([
      'actions/checkout@v4',
      'actions/setup-node@v4',
      'cachix/install-nix-action@v27',
      'hashicorp/setup-terraform@v3',
      'npm install',
      'mirror hashicorp/aws',
      'provider install',
      'SSH key for reading hosts',
      'synth, diff, terraform show -json, plan-summary',
      'job summary',
      'post the comment (edits the last one)',
    ]);
    expect(steps[1].with).toEqual({ 'node-version': 20 });
    expect(step('npm install')).toBe('npm install');
    expect(step('synth, diff, terraform show -json, plan-summary')).toContain('scripts/pr-plan-summary.sh plan-summary.md');
    expect(step('post the comment (edits the last one)')).toContain('gh pr comment "$PR" --body-file plan-summary.md --edit-last');
  });

  describe('its commands, run for stack `local`', () => {
    let world: World;
    let work: string;
    let app: string;

    beforeAll(async () => {
      ({ world } = await localStackWorld(WORLD_DIR));
      work = tempDir('workflow');
      app = copyApp(work);
    }, 120_000);
    afterAll(async () => {
      await world?.removeHost('host1');
      await world?.removeHost('host2');
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    test('provider install, then synth, diff, show -json and plan-summary give the comment', () => {
      const githubEnv = path.join(work, 'github-env');
      fs.writeFileSync(githubEnv, '');
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        CHECKPOINT_DISABLE: '1',
        // cdktf otherwise links providers into ~/.terraform.d/plugin-cache, pointing at this test's temp mirror.
        CDKTF_DISABLE_PLUGIN_CACHE_ENV: '1',
        CI: '1',
        FORCE_COLOR: '0',
        GITHUB_ENV: githubEnv,
        RUNNER_TEMP: work,
        STACKS: 'local',
        CDKTF_NIXOS_WORLD: WORLD_DIR,
      };
      delete env.TF_LOG;
      const bash = (script: string) => spawnSync('bash', ['-e', '-c', script], { cwd: app, env, encoding: 'utf8', timeout: 400_000 });

      const install = bash(step('provider install'));
      expect(install.stderr).toBe('');
      expect(install.status).toBe(0);
      const exported = fs.readFileSync(githubEnv, 'utf8').trim();
      expect(exported).toBe(`TF_CLI_CONFIG_FILE=${work}/tf-providers/terraform.rc`);
      env.TF_CLI_CONFIG_FILE = exported.split('=')[1];

      const r = bash(step('synth, diff, terraform show -json, plan-summary'));
      expect(`${r.stdout}\n${r.stderr}`).toContain('wrote plan-summary.md');
      expect(r.status).toBe(0);
      expect(fs.existsSync(path.join(app, 'cdktf.out', 'stacks', 'local', 'plan'))).toBe(true);
      const md = fs.readFileSync(path.join(app, 'plan-summary.md'), 'utf8');
      process.stderr.write(`workflow comment:\n${md}\n`);
      // A fresh state: both machines are created, with the closures the plan shows.
      const plan = JSON.parse(fs.readFileSync(path.join(app, 'cdktf.out', 'stacks', 'local', 'plan.json'), 'utf8'));
      const closures = plan.resource_changes.filter((c: { type: string }) => c.type === 'nixos_system').map((c: { change: { after: { closure_path: string } } }) => c.change.after.closure_path);
      expect(closures).toHaveLength(2);
      expect(md.startsWith('<!-- cdktf-nixos plan-summary -->\n### Stack `local`')).toBe(true);
      expect(md).toContain('2 to create; 0 unchanged.');
      for (const c of closures) expect(md).toContain(`| create | \`${path.basename(c).slice(0, 8)}…${path.basename(c).slice(32)}\` |`);
      expect(md).toMatch(/\| `nixos_system\.web_[0-9A-F]{8}` \| `127\.0\.0\.1:\d+` \| create \|/);
      expect(md).toMatch(/\| `nixos_system\.db_[0-9A-F]{8}` \| `127\.0\.0\.1:\d+` \| create \|/);
    });
  });
});
