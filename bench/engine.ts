import execa from 'execa';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { deployMany, DeployRequest, evaluate } from '../lib/engine';
import { nixStore } from '../lib/engine/local-nix';
import { startProxy, TcpProxy } from '../world/tcp-proxy';
import { TestHost, World } from '../world/world';

/**
 * Engine benchmark: deploy time, no-change redeploy time and bytes sent, for 1 and 8
 * hosts, each against a baseline run in this same process on fresh hosts: a plain loop of
 * `nix-copy-closure --to` and `ssh … switch-to-configuration switch`. Bytes are counted by
 * a TCP relay in front of every host, for both.
 *   npm run bench:engine [-- --hosts 1,8 --payload-mb 8]
 */

const BENCH_WORLD = '/var/lib/cdktf-nixos-world/bench';

interface Run {
  seconds: number;
  bytes: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function makeFixture(payloadBytes: number): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-bench-'));
  const source = path.join(__dirname, '..', 'world', 'fixture-flake');
  for (const file of fs.readdirSync(source)) fs.copyFileSync(path.join(source, file), path.join(dir, file));
  const settings = JSON.parse(fs.readFileSync(path.join(dir, 'settings.json'), 'utf8'));
  settings.version = `bench-${Date.now()}`;
  settings.packages = Array.from({ length: 8 }, (_, i) => ({ name: `payload${i}`, version: '1.0', sizeBytes: Math.floor(payloadBytes / 8) }));
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify(settings));
  await execa('git', ['init', '-q'], { cwd: dir });
  await execa('git', ['add', '-A'], { cwd: dir });
  return dir;
}

async function withProxies<T>(hosts: TestHost[], work: (proxies: TcpProxy[]) => Promise<T>): Promise<{ result: T; bytes: number }> {
  const proxies = await Promise.all(hosts.map((h) => startProxy(h.address, h.port)));
  try {
    const result = await work(proxies);
    return { result, bytes: proxies.reduce((sum, p) => sum + p.bytesUp(), 0) };
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
  }
}

async function timed(work: () => Promise<number>): Promise<Run> {
  const start = process.hrtime.bigint();
  const bytes = await work();
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, bytes };
}

async function oursRun(world: World, hosts: TestHost[], flake: string, knownHosts: string, evalCacheDir: string): Promise<Run> {
  return timed(async () => {
    const { result, bytes } = await withProxies(hosts, (proxies) =>
      deployMany(
        hosts.map<DeployRequest>((h, i) => ({
          target: { host: h.address, port: proxies[i].port, privateKeyFile: world.clientKeyFile, hostKey: world.hostKey(h.name), knownHostsFile: knownHosts },
          system: { flake },
        })),
        { evalCacheDir },
      ),
    );
    const failed = result.filter((o) => !o.ok);
    if (failed.length) throw new Error(`our deploy failed: ${failed.map((f) => (f.ok ? '' : f.error.message)).join('; ')}`);
    return bytes;
  });
}

async function baselineRun(world: World, hosts: TestHost[], outPath: string): Promise<Run> {
  return timed(async () => {
    const { bytes } = await withProxies(hosts, async (proxies) => {
      for (const proxy of proxies) {
        const ssh = `-i ${world.clientKeyFile} -p ${proxy.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
        await execa('nix-copy-closure', ['--to', 'root@127.0.0.1', outPath], { env: { NIX_SSHOPTS: ssh } });
        await execa('ssh', [
          ...ssh.split(' '),
          'root@127.0.0.1',
          `nix-env -p /nix/var/nix/profiles/system --set ${outPath} && ${outPath}/bin/switch-to-configuration switch`,
        ]);
      }
    });
    return bytes;
  });
}

function row(cells: (string | number)[]): string {
  return `| ${cells.join(' | ')} |`;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(2);
}

async function main(): Promise<void> {
  const counts = arg('hosts', '1,8').split(',').map(Number);
  const payloadBytes = Number(arg('payload-mb', '8')) * 1024 * 1024;
  const world = await World.open(BENCH_WORLD);
  await world.removeAll();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-bench-run-'));
  const fixture = await makeFixture(payloadBytes);
  const flake = `${fixture}#good`;

  // Both sides start from a built closure: the benchmark compares getting it onto hosts.
  const evaluation = await evaluate({ flake }, path.join(work, 'eval'));
  await nixStore(['--realise', evaluation.drvPath!, '--add-root', path.join(work, 'result'), '--indirect']);
  const closureBytes = Number((await execa('nix', ['path-info', '--closure-size', evaluation.outPath])).stdout.trim().split(/\s+/).pop());

  const lines = [
    `Engine benchmark on ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.cpus()[0].model}; loopback links, no delay.`,
    `Closure: ${mib(closureBytes)} MiB (8 payload packages). Baseline: sequential nix-copy-closure --to + ssh switch-to-configuration, on fresh hosts.`,
    '',
    row(['scenario', 'hosts', 'ours s', 'baseline s', 'time ratio', 'ours MiB sent', 'baseline MiB sent', 'bytes ratio']),
    row(['---', '---', '---', '---', '---', '---', '---', '---']),
  ];
  for (const n of counts) {
    process.stderr.write(`bench: ${n} hosts\n`);
    const ours = await Promise.all(Array.from({ length: n }, (_, i) => world.createHost({ name: `ours${i}` })));
    const base = await Promise.all(Array.from({ length: n }, (_, i) => world.createHost({ name: `base${i}` })));
    const knownHosts = path.join(work, `known_hosts_${n}`);
    const scenarios: [string, Run, Run][] = [];
    const oursFirst = await oursRun(world, ours, flake, knownHosts, path.join(work, 'eval'));
    const baseFirst = await baselineRun(world, base, evaluation.outPath);
    scenarios.push(['first deploy', oursFirst, baseFirst]);
    const oursAgain = await oursRun(world, ours, flake, knownHosts, path.join(work, 'eval'));
    const baseAgain = await baselineRun(world, base, evaluation.outPath);
    scenarios.push(['no-change redeploy', oursAgain, baseAgain]);
    for (const [name, o, b] of scenarios) {
      lines.push(row([name, n, o.seconds.toFixed(2), b.seconds.toFixed(2), (o.seconds / b.seconds).toFixed(2), mib(o.bytes), mib(b.bytes), (o.bytes / b.bytes).toFixed(2)]));
    }
    for (const h of [...ours, ...base]) await world.removeHost(h.name);
  }
  console.log(lines.join('\n'));
  fs.rmSync(fixture, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
}

main().catch((error: Error) => {
  console.error(`bench: ${error.message}`);
  process.exit(1);
});
