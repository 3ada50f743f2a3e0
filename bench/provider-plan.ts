import { spawn, spawnSync } from 'child_process';
import execa from 'execa';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { installProvider, terraformEnv } from '../bin/provider-install';
import { makeSelfSignedCertificate } from '../providers/nixos/protocol/tls';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../providers/nixos/protocol/serve';
import { TestHost, World } from '../world/world';

/**
 * Provider benchmark, all measured in this one run:
 * - start-up: from spawning the bundled provider to its handshake line on stdout (median of N);
 * - wall time of a no-change `terraform plan` with 1 and 10 `nixos_system` resources (real
 *   test hosts, refreshed over SSH), against the same number of `terraform_data` resources
 *   only, as ratios.
 *   npm run bench:provider [-- --runs 5 --hosts 1,10]
 */

const BENCH_WORLD = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/bench-provider`;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${x.toFixed(0)} ms`;

/** Milliseconds from spawn to the handshake line; the process is then stopped. */
async function startupOnce(executable: string, certPem: string): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(executable, [], {
    env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_CLIENT_CERT: certPem, PLUGIN_PROTOCOL_VERSIONS: '6' },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('\n')) {
          if (!/^1\|6\|unix\|/.test(out)) reject(new Error(`unexpected handshake line: ${out.split('\n')[0]}`));
          resolve(Number(process.hrtime.bigint() - started) / 1e6);
        }
      });
      child.on('exit', (code) => reject(new Error(`the provider exited (${code}) before its handshake`)));
    });
  } finally {
    child.kill('SIGKILL');
  }
}

function terraform(dir: string, args: string[], env: NodeJS.ProcessEnv): number {
  const started = process.hrtime.bigint();
  const r = spawnSync('terraform', [...args, '-no-color', '-input=false'], { cwd: dir, env, encoding: 'utf8', timeout: 600_000 });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (r.status !== 0) throw new Error(`terraform ${args.join(' ')} in ${dir} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return elapsed;
}

async function main(): Promise<void> {
  const runs = Number(arg('runs', '5'));
  const counts = arg('hosts', '1,10').split(',').map(Number);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-bench-provider-'));
  const world = await World.open(BENCH_WORLD);
  try {
    await world.removeAll();
    const installed = await installProvider({ dir: path.join(work, 'providers') });
    const env: NodeJS.ProcessEnv = terraformEnv(installed);

    // 1. Start-up of the bundled provider.
    const cert = await makeSelfSignedCertificate('terraform');
    await startupOnce(installed.executable, cert.certPem); // warm the page cache
    const startups: number[] = [];
    for (let i = 0; i < runs; i++) startups.push(await startupOnce(installed.executable, cert.certPem));

    // 2. No-change plans: nixos_system on real hosts vs terraform_data only.
    const fixture = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-bench-fixture-'));
    const source = path.join(__dirname, '..', 'world', 'fixture-flake');
    for (const file of fs.readdirSync(source)) fs.copyFileSync(path.join(source, file), path.join(fixture, file));
    await execa('git', ['init', '-q'], { cwd: fixture });
    await execa('git', ['add', '-A'], { cwd: fixture });
    const max = Math.max(...counts);
    const hosts: TestHost[] = await Promise.all(Array.from({ length: max }, (_, i) => world.createHost({ name: `bench-${i}` })));
    const header = `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}\n`;
    const provider =
      `provider "nixos" {\n  private_key_file = ${JSON.stringify(world.clientKeyFile)}\n` +
      `  known_hosts_file = ${JSON.stringify(path.join(work, 'known_hosts'))}\n  eval_cache_dir = ${JSON.stringify(path.join(work, 'eval'))}\n}\n`;
    const results: { n: number; nixos: number[]; data: number[] }[] = [];
    for (const n of counts) {
      const nixosDir = path.join(work, `nixos-${n}`);
      const dataDir = path.join(work, `data-${n}`);
      fs.mkdirSync(nixosDir);
      fs.mkdirSync(dataDir);
      fs.writeFileSync(
        path.join(nixosDir, 'main.tf'),
        header +
          provider +
          hosts
            .slice(0, n)
            .map((h, i) => `resource "nixos_system" "h${i}" {\n  flake = ${JSON.stringify(`${fixture}#good`)}\n  host = ${JSON.stringify(h.address)}\n  port = ${h.port}\n}\n`)
            .join(''),
      );
      fs.writeFileSync(path.join(dataDir, 'main.tf'), Array.from({ length: n }, (_, i) => `resource "terraform_data" "d${i}" {\n  input = "x${i}"\n}\n`).join(''));
      for (const dir of [nixosDir, dataDir]) {
        terraform(dir, ['init'], env);
        terraform(dir, ['apply', '-auto-approve'], env);
      }
      const r = { n, nixos: [] as number[], data: [] as number[] };
      // Interleaved, so that both see the same machine load.
      for (let i = 0; i < runs; i++) {
        r.nixos.push(terraform(nixosDir, ['plan', '-detailed-exitcode'], env));
        r.data.push(terraform(dataDir, ['plan', '-detailed-exitcode'], env));
      }
      results.push(r);
    }
    fs.rmSync(fixture, { recursive: true, force: true });

    const lines = [
      `provider benchmark (terraform ${spawnSync('terraform', ['version'], { encoding: 'utf8' }).stdout.split('\n')[0].replace('Terraform ', '')}, ${os.cpus().length} CPUs, median of ${runs})`,
      `provider start-up to handshake line: ${ms(median(startups))} (${startups.map((x) => x.toFixed(0)).join(', ')})`,
      ...results.map(
        (r) =>
          `no-change plan, ${String(r.n).padStart(2)} host(s): nixos_system ${ms(median(r.nixos))}, terraform_data only ${ms(median(r.data))}, ratio ${(median(r.nixos) / median(r.data)).toFixed(2)}` +
          `  [nixos ${r.nixos.map((x) => x.toFixed(0)).join(', ')}; data ${r.data.map((x) => x.toFixed(0)).join(', ')}]`,
      ),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await world.removeAll();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
