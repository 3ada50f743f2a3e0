/**
 * State backends with the real terraform: the `pg` backend against a real PostgreSQL
 * cluster started for this suite (world/postgres.ts) and a real test host, and the S3
 * backend's synthesized configuration (S3 itself cannot be reached here: no apply).
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, DataResource, TerraformOutput, TerraformStack } from 'cdktf';
import { installProvider, terraformEnv } from '../../bin/provider-install';
import { NixosProvider, NixosSystem, useStateBackend } from '../../lib';
import { buildApp } from '../../main';
import { PgCluster, psqlQuery, startPostgres, stopPostgres } from '../../world/postgres';
import { TestHost, World } from '../../world/world';
import { currentSystem, Fixture, tempDir } from '../support/world';

// A world of its own: jest's global setup (of this or a concurrent run) clears the shared test world.
const WORLD_DIR = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/test-backends`;

interface Run {
  status: number | null;
  out: string;
  ms: number;
  /** When it finished (epoch ms). */
  end: number;
}

function run(cwd: string, env: NodeJS.ProcessEnv, args: string[]): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child: ChildProcess = spawn('terraform', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.on('close', (status) => resolve({ status, out, ms: Date.now() - started, end: Date.now() }));
  });
}

describe('the pg backend against a real PostgreSQL: concurrent deploys of one stack', () => {
  let work: string;
  let pg: PgCluster;
  let world: World;
  let host: TestHost;
  let fixture: Fixture;
  let stackDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = tempDir('backends');
    fs.chmodSync(work, 0o755); // the cluster lives below it and runs as the postgres user
    world = await World.open(WORLD_DIR);
    await world.removeAll();
    [pg, host, fixture] = await Promise.all([
      startPostgres(path.join(work, 'pg')),
      world.createHost({ name: 'backends-a' }),
      Fixture.create({ version: '1' }),
    ]);
    const installed = await installProvider({ dir: path.join(work, 'providers') });

    const app = new App({ outdir: path.join(work, 'cdktf.out') });
    const stack = new TerraformStack(app, 'shared');
    // No connection string in the configuration: Terraform reads PG_CONN_STR.
    useStateBackend(stack, { type: 'pg' });
    new NixosProvider(stack, 'nixos', {
      privateKeyFile: world.clientKeyFile,
      knownHostsFile: path.join(work, 'known_hosts'),
      evalCacheDir: path.join(work, 'eval'),
    });
    const marker = new DataResource(stack, 'marker', { input: { tag: 'shared-state' } });
    const system = new NixosSystem(stack, 'slow', {
      flake: fixture.flake('good'),
      host: host.address,
      port: host.port,
      hostKey: world.hostKey(host.name),
      specialArgs: { marker: marker.id },
      // A slow health check: the deploy holds the state lock for several seconds.
      healthChecks: [{ command: 'sleep 6; test -e /run/current-system', retries: 1 }],
    });
    new TerraformOutput(stack, 'closure', { value: system.closurePath });
    app.synth();
    stackDir = path.join(work, 'cdktf.out', 'stacks', 'shared');
    env = { ...terraformEnv(installed), PG_CONN_STR: pg.connStr };
  });
  afterAll(async () => {
    await world?.removeHost('backends-a');
    fixture?.remove();
    if (pg) await stopPostgres(pg.dir);
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('the synthesized backend is pg with a schema of its own and no password in it', () => {
    const json = JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8'));
    expect(json.terraform.backend).toEqual({ pg: { schema_name: 'cdktf_nixos_shared' } });
    expect(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8')).not.toContain(pg.password);
  });

  test('init connects to PostgreSQL', async () => {
    const init = await run(stackDir, env, ['init', '-no-color', '-input=false']);
    expect(init.out).toContain('Successfully configured the backend "pg"');
    expect(init.status).toBe(0);
  });

  test('while one apply holds the lock, a second one fails with the lock message and a third waits; the state is intact', async () => {
    const apply = (lockTimeout: string) => run(stackDir, env, ['apply', '-auto-approve', '-no-color', '-input=false', `-lock-timeout=${lockTimeout}`]);
    const first = apply('0s');
    // Terraform's pg backend locks with a PostgreSQL advisory lock: wait until it is held.
    const advisory = () => psqlQuery(pg, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted");
    let held = false;
    for (let i = 0; i < 300 && !held; i++) {
      held = Number(await advisory()) > 0;
      if (!held) await new Promise((r) => setTimeout(r, 50));
    }
    expect(held).toBe(true);

    const second = await apply('0s');
    expect(second.status).toBe(1);
    expect(second.out).toContain('Error acquiring the state lock');
    expect(second.out).not.toContain('Apply complete');

    const third = apply('5m');
    const a = await first;
    const c = await third;
    expect(a.out).toContain('Apply complete! Resources: 2 added, 0 changed, 0 destroyed.');
    expect(a.status).toBe(0);
    // The third waited for the first and then found nothing left to do.
    expect(c.status).toBe(0);
    expect(c.end).toBeGreaterThanOrEqual(a.end);
    expect(c.out).toMatch(/No changes|Resources: 0 added, 0 changed, 0 destroyed/);
    expect(c.out).not.toContain('Error acquiring the state lock');

    // The state in PostgreSQL holds both resources, once each, and the host runs the closure.
    const list = spawnSync('terraform', ['state', 'list'], { cwd: stackDir, env, encoding: 'utf8' });
    const addresses = list.stdout.trim().split('\n').sort();
    expect(addresses).toHaveLength(2);
    expect(addresses[0]).toMatch(/^nixos_system\.slow_[0-9A-F]{8}$/);
    expect(addresses[1]).toBe('terraform_data.marker');
    const stored = JSON.parse(await psqlQuery(pg, 'SELECT data FROM cdktf_nixos_shared.states'));
    expect(stored.resources.map((r: { type: string }) => r.type).sort()).toEqual(['nixos_system', 'terraform_data']);
    const closure = stored.outputs.closure.value;
    expect(closure).toMatch(/^\/nix\/store\/.*-nixos-system-good-1$/);
    expect(await currentSystem(world, host)).toBe(closure);
    expect(Number(await advisory())).toBe(0);

    const plan = await run(stackDir, env, ['plan', '-no-color', '-input=false', '-detailed-exitcode']);
    expect(plan.out).toContain('No changes');
    expect(plan.status).toBe(0);
  });
});

describe('the S3 backend with locking (synthesized and validated; S3 cannot be reached here)', () => {
  let work: string;

  beforeAll(() => {
    work = tempDir('backends-s3');
  });
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('CDKTF_NIXOS_BACKEND=s3 synthesizes use_lockfile = true; terraform init -backend=false and validate accept it', async () => {
    const installed = await installProvider({ dir: path.join(work, 'providers') });
    const app = new App({ outdir: path.join(work, 'cdktf.out') });
    const saved = { ...process.env };
    Object.assign(process.env, { CDKTF_NIXOS_BACKEND: 's3', CDKTF_NIXOS_S3_BUCKET: 'example-tf-state', CDKTF_NIXOS_S3_REGION: 'eu-central-1' });
    try {
      buildApp(app, ['aws']);
    } finally {
      for (const k of ['CDKTF_NIXOS_BACKEND', 'CDKTF_NIXOS_S3_BUCKET', 'CDKTF_NIXOS_S3_REGION']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
    app.synth();
    const stackDir = path.join(work, 'cdktf.out', 'stacks', 'aws');
    const json = JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8'));
    expect(json.terraform.backend).toEqual({
      s3: { bucket: 'example-tf-state', key: 'cdktf-nixos/aws.tfstate', region: 'eu-central-1', encrypt: true, use_lockfile: true },
    });

    const env = terraformEnv(installed);
    const init = await run(stackDir, env, ['init', '-backend=false', '-no-color', '-input=false']);
    expect(init.out).toContain('Terraform has been successfully initialized');
    expect(init.status).toBe(0);
    const validate = await run(stackDir, env, ['validate', '-no-color']);
    expect(validate.out).toContain('Success! The configuration is valid.');
    expect(validate.status).toBe(0);
  });

  test('an unknown CDKTF_NIXOS_BACKEND or a missing bucket is refused with the fix', () => {
    const withEnv = (vars: { [k: string]: string }, fn: () => void) => {
      const keys = Object.keys(vars);
      const saved = keys.map((k) => process.env[k]);
      Object.assign(process.env, vars);
      try {
        fn();
      } finally {
        keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
      }
    };
    withEnv({ CDKTF_NIXOS_BACKEND: 'consul' }, () =>
      expect(() => buildApp(new App({ outdir: path.join(work, 'refused') }), ['aws'])).toThrow(/CDKTF_NIXOS_BACKEND="consul" is not a backend; use "local" \(default\), "pg" or "s3"/),
    );
    withEnv({ CDKTF_NIXOS_BACKEND: 's3', CDKTF_NIXOS_S3_BUCKET: '' }, () =>
      expect(() => buildApp(new App({ outdir: path.join(work, 'refused') }), ['aws'])).toThrow(/needs CDKTF_NIXOS_S3_BUCKET/),
    );
  });
});
