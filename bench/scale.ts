import { ChildProcessWithoutNullStreams, spawn, spawnSync } from 'child_process';
import execa from 'execa';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { installProvider } from '../bin/provider-install';
import { deployMany, DeployRequest, evaluate } from '../lib/engine';
import { nixStore } from '../lib/engine/local-nix';
import { TestHost, World } from '../world/world';

/**
 * Deploy speed and scale (issue 5, first step: measurement only).
 *
 * Test hosts live in network namespaces on the bridge nixw-br0. `tc tbf` caps every host's
 * link (its veth, toward the host); an htb class caps the deployer's uplink (the bridge
 * device's egress, for this run's hosts only). A delay relay (world/tcp-proxy.ts, in a process of its own)
 * sits in front of every sshd and adds half the round-trip time each way; the deployer
 * connects to it and it counts bytes and connections.
 *
 * Scenarios, for each N: 1 first deploy, 2 deploy of the changed version, 3 no-change
 * redeploy (engine deployMany), 4 no-change plan (real terraform + bundled provider).
 * Baselines on fresh hosts in the same run: (a) sequential nix-copy-closure --to + ssh
 * switch-to-configuration switch, (b) the same 8 at a time.
 *
 *   npm run bench:scale [-- --hosts 1,8,32 --payload-mb 64 --changed-mb 8
 *                          --host-mbit 50 --uplink-mbit 100 --delay-ms 50]
 *   npm run bench:scale -- --smoke     (N = 2, tiny closure, no caps, 5 ms delay)
 */

const WORLD_ROOT = process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world';
const BRIDGE = 'nixw-br0';
/** Round trips no deploy can avoid: TCP, SSH key exchange, auth, session. */
const CONNECT_RTTS = 4;
/** Plus: ask what the host has and lacks, then transfer and activate. */
const DEPLOY_RTTS = CONNECT_RTTS + 2;
/** Plus: ask what the host runs. */
const CHECK_RTTS = CONNECT_RTTS + 1;

const argv = process.argv.slice(2);
const smoke = argv.includes('--smoke');
function arg(name: string, fallback: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback;
}

interface Config {
  counts: number[];
  payloadBytes: number;
  changedBytes: number;
  /** Mbit/s, 0 = uncapped. */
  hostMbit: number;
  uplinkMbit: number;
  delayMs: number;
  parallel: number;
  plan: boolean;
  worldDir: string;
}

function config(): Config {
  const num = (name: string, normal: number, smokeValue: number) => Number(arg(name, String(smoke ? smokeValue : normal)));
  return {
    counts: arg('hosts', smoke ? '2' : '1,8,32').split(',').map(Number),
    payloadBytes: Math.round(num('payload-mb', 64, 0.5) * 1024 * 1024),
    changedBytes: Math.round(num('changed-mb', 8, 0.125) * 1024 * 1024),
    hostMbit: num('host-mbit', 50, 0),
    uplinkMbit: num('uplink-mbit', 100, 0),
    delayMs: num('delay-ms', 50, 5),
    parallel: num('parallel', 8, 8),
    plan: !argv.includes('--no-plan'),
    worldDir: `${WORLD_ROOT}/${smoke ? 'bench-scale-smoke' : 'bench-scale'}`,
  };
}

// ---------------------------------------------------------------------------------------
// Fixture: K payload packages of `changedBytes` each; configuration `v2` has payload0 at
// another version, so exactly one package (plus the toplevel) differs.

interface Fixture {
  dir: string;
  v1: string;
  v2: string;
  v1Out: string;
  v2Out: string;
  /** NAR bytes of v1's closure. */
  closureBytes: number;
  /** NAR bytes of v2's paths that v1's closure lacks. */
  changedBytes: number;
  packages: number;
}

async function makeFixture(cfg: Config, work: string): Promise<Fixture> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-bench-scale-'));
  const source = path.join(__dirname, '..', 'world', 'fixture-flake');
  for (const file of fs.readdirSync(source)) fs.copyFileSync(path.join(source, file), path.join(dir, file));
  const settings = JSON.parse(fs.readFileSync(path.join(dir, 'settings.json'), 'utf8'));
  const packages = Math.max(1, Math.round(cfg.payloadBytes / cfg.changedBytes));
  const size = Math.floor(cfg.payloadBytes / packages);
  settings.version = `scale-${Date.now()}`;
  settings.packages = Array.from({ length: packages }, (_, i) => ({ name: `payload${i}`, version: '1.0', sizeBytes: size }));
  settings.machines = ['v2'];
  settings.machinePackages = { v2: [{ name: 'payload0', version: '2.0', sizeBytes: size }] };
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify(settings));
  await execa('git', ['init', '-q'], { cwd: dir });
  await execa('git', ['add', '-A'], { cwd: dir });

  // Both sides start from built closures: the benchmark compares getting them onto hosts.
  // The evaluation cache is warmed too (a no-change deploy should answer from it).
  const outs: string[] = [];
  for (const name of ['good', 'v2']) {
    const evaluation = await evaluate({ flake: `${dir}#${name}` }, path.join(work, 'eval'));
    await nixStore(['--realise', evaluation.drvPath!, '--add-root', path.join(work, `result-${name}`), '--indirect']);
    outs.push(evaluation.outPath);
  }
  const narSizes = async (out: string) => {
    const info = JSON.parse((await execa('nix', ['path-info', '--json', '-r', out])).stdout) as { path: string; narSize: number }[];
    return new Map(info.map((p) => [p.path, p.narSize]));
  };
  const v1 = await narSizes(outs[0]);
  const v2 = await narSizes(outs[1]);
  const sum = (xs: Iterable<number>) => [...xs].reduce((a, b) => a + b, 0);
  return {
    dir,
    v1: `${dir}#good`,
    v2: `${dir}#v2`,
    v1Out: outs[0],
    v2Out: outs[1],
    closureBytes: sum(v1.values()),
    changedBytes: sum([...v2].filter(([p]) => !v1.has(p)).map(([, s]) => s)),
    packages,
  };
}

// ---------------------------------------------------------------------------------------
// Links: tbf on each host's veth, and on the bridge for this run's hosts (the uplink).

async function hostVeth(host: TestHost): Promise<string> {
  const links = (await execa('ip', ['-n', host.netns!, '-o', 'link', 'show'])).stdout;
  const m = /nxp(\d+)@/.exec(links);
  if (!m) throw new Error(`no nxp veth in netns ${host.netns}: ${links}`);
  return `nxv${m[1]}`;
}

/** tbf arguments for a rate; the bucket holds 10 ms at that rate and at least one GSO packet. */
function tbf(mbit: number): string[] {
  const burst = Math.max(128 * 1024, Math.round((mbit * 1e6) / 8 / 100));
  return ['tbf', 'rate', `${mbit}mbit`, 'burst', String(burst), 'latency', '200ms'];
}

async function capHost(host: TestHost, mbit: number): Promise<void> {
  if (mbit <= 0) return;
  await execa('tc', ['qdisc', 'replace', 'dev', await hostVeth(host), 'root', ...tbf(mbit)]);
}

/**
 * The uplink: an htb qdisc on the bridge device with one class at the uplink rate; only
 * traffic to this run's hosts is filtered into it, so other worlds sharing the bridge are
 * not slowed (unclassified traffic goes out unshaped). htb, not tbf, because a classless tbf
 * at the root would cap the whole shared bridge, and sch_prio (to put a tbf under a
 * filter) is not available in this kernel.
 */
async function capUplink(mbit: number): Promise<void> {
  if (mbit <= 0) return;
  await uncapUplink();
  await execa('tc', ['qdisc', 'add', 'dev', BRIDGE, 'root', 'handle', '1:', 'htb', 'default', '9999']);
  const burst = String(Math.max(128 * 1024, Math.round((mbit * 1e6) / 8 / 100)));
  await execa('tc', ['class', 'add', 'dev', BRIDGE, 'parent', '1:', 'classid', '1:1', 'htb', 'rate', `${mbit}mbit`, 'ceil', `${mbit}mbit`, 'burst', burst, 'cburst', burst]);
}

async function uplinkFilter(host: TestHost, mbit: number): Promise<void> {
  if (mbit <= 0) return;
  await execa('tc', ['filter', 'add', 'dev', BRIDGE, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'dst', `${host.address}/32`, 'flowid', '1:1']);
}

async function uncapUplink(): Promise<void> {
  const shown = await execa('tc', ['qdisc', 'show', 'dev', BRIDGE], { reject: false });
  if (/qdisc htb 1: root/.test(shown.stdout)) await execa('tc', ['qdisc', 'del', 'dev', BRIDGE, 'root'], { reject: false });
}

// ---------------------------------------------------------------------------------------
// Relays (own process) and the peak-memory sampler.

interface Relays {
  ports: number[];
  pid: number;
  stats(): Promise<{ bytes: number; connections: number }>;
  close(): Promise<void>;
}

/** Relay processes: never counted as the deployer's memory. */
const relayPids = new Set<number>();

async function startRelays(hosts: TestHost[], delayMs: number): Promise<Relays> {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'proxy-server.ts'), JSON.stringify({ targets: hosts.map((h) => ({ host: h.address, port: h.port })), delayMs })],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  child.stderr.on('data', (d) => process.stderr.write(d));
  const lines = readline.createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      waiting.push(resolve);
      child.once('exit', (code) => reject(new Error(`relay process exited (${code})`)));
    });
  relayPids.add(child.pid!);
  const { ports } = JSON.parse(await nextLine()) as { ports: number[] };
  return {
    ports,
    pid: child.pid!,
    async stats() {
      const answer = nextLine();
      child.stdin.write('stats\n');
      const s = JSON.parse(await answer) as { bytes: number[]; connections: number[] };
      return { bytes: s.bytes.reduce((a, b) => a + b, 0), connections: s.connections.reduce((a, b) => a + b, 0) };
    },
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin.end();
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Peak resident memory of the deploying processes, sampled every 50 ms: this process (when
 * `self`) plus all its descendants, except the relay processes' trees.
 */
function sampleMemory(self: boolean): () => number {
  let peak = 0;
  const sample = () => {
    let total = self ? process.memoryUsage().rss : 0;
    const stack = childrenOf(process.pid).filter((p) => !relayPids.has(p));
    while (stack.length) {
      const pid = stack.pop()!;
      total += rssOf(pid);
      stack.push(...childrenOf(pid));
    }
    peak = Math.max(peak, total);
  };
  sample();
  const timer = setInterval(sample, 50);
  return () => {
    clearInterval(timer);
    sample();
    return peak;
  };
}

// ---------------------------------------------------------------------------------------
// Runs.

interface Run {
  seconds: number;
  bytes: number;
  connections: number;
  peakRss: number;
  note?: string;
}

async function measure(relays: Relays, self: boolean, work: () => Promise<string | void>): Promise<Run> {
  const before = await relays.stats();
  const stop = sampleMemory(self);
  const start = process.hrtime.bigint();
  let note: string | void;
  let peakRss = 0;
  try {
    note = await work();
  } finally {
    peakRss = stop();
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const after = await relays.stats();
  return { seconds, bytes: after.bytes - before.bytes, connections: after.connections - before.connections, peakRss, note: note || undefined };
}

async function engineDeploy(world: World, hosts: TestHost[], relays: Relays, flake: string, work: string): Promise<void> {
  const outcomes = await deployMany(
    hosts.map<DeployRequest>((h, i) => ({
      target: { host: '127.0.0.1', port: relays.ports[i], privateKeyFile: world.clientKeyFile, hostKey: world.hostKey(h.name), knownHostsFile: path.join(work, 'known_hosts_engine') },
      system: { flake },
    })),
    { evalCacheDir: path.join(work, 'eval') },
  );
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length) throw new Error(`engine deploy failed: ${failed.map((f) => (f.ok ? '' : `${f.host}: ${f.error.message}`)).join('; ')}`);
}

async function baselineDeploy(world: World, relays: Relays, outPath: string, parallel: number): Promise<void> {
  let next = 0;
  const one = async (port: number) => {
    const ssh = `-i ${world.clientKeyFile} -p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
    await execa('nix-copy-closure', ['--to', 'root@127.0.0.1', outPath], { env: { NIX_SSHOPTS: ssh } });
    await execa('ssh', [...ssh.split(' '), 'root@127.0.0.1', `nix-env -p /nix/var/nix/profiles/system --set ${outPath} && ${outPath}/bin/switch-to-configuration switch`]);
  };
  const worker = async () => {
    while (next < relays.ports.length) await one(relays.ports[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, relays.ports.length) }, worker));
}

/** Terraform working directory of nixos_system resources for the engine's hosts (already deployed). */
async function preparePlan(world: World, hosts: TestHost[], relays: Relays, fixture: Fixture, work: string, env: NodeJS.ProcessEnv): Promise<string> {
  const dir = path.join(work, `tf-${hosts.length}`);
  fs.mkdirSync(dir);
  const text =
    `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}\n` +
    `provider "nixos" {\n  private_key_file = ${JSON.stringify(world.clientKeyFile)}\n` +
    `  known_hosts_file = ${JSON.stringify(path.join(work, 'known_hosts_tf'))}\n  eval_cache_dir = ${JSON.stringify(path.join(work, 'eval'))}\n}\n` +
    hosts
      .map(
        (h, i) =>
          `resource "nixos_system" "h${i}" {\n  flake = ${JSON.stringify(fixture.v2)}\n  host = "127.0.0.1"\n  port = ${relays.ports[i]}\n` +
          `  host_key = ${JSON.stringify(world.hostKey(h.name))}\n}\n`,
      )
      .join('');
  fs.writeFileSync(path.join(dir, 'main.tf'), text);
  await terraform(dir, ['init'], env);
  await terraform(dir, ['apply', '-auto-approve'], env);
  return dir;
}

async function terraform(dir: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const r = await execa('terraform', [...args, '-no-color', '-input=false'], { cwd: dir, env, reject: false, timeout: 1_800_000 });
  if (r.exitCode !== 0 && !(args.includes('-detailed-exitcode') && r.exitCode === 2)) {
    throw new Error(`terraform ${args.join(' ')} in ${dir} exited ${r.exitCode}:\n${r.stdout}\n${r.stderr}`);
  }
  return r.exitCode;
}

// ---------------------------------------------------------------------------------------
// Limits and the table.

type Scenario = 'first deploy' | 'changed deploy' | 'no-change redeploy' | 'no-change plan';
const SCENARIOS: Scenario[] = ['first deploy', 'changed deploy', 'no-change redeploy', 'no-change plan'];

/** Seconds: the bytes every host must receive over its link, and the deployer must send at least once over its uplink, at the narrower rate; plus the unavoidable round trips. */
function limitSeconds(cfg: Config, bytes: number, rtts: number): number {
  const rate = (mbit: number) => (mbit > 0 ? (mbit * 1e6) / 8 : Infinity);
  const transfer = bytes === 0 ? 0 : Math.max(bytes / rate(cfg.uplinkMbit), bytes / rate(cfg.hostMbit));
  return transfer + (rtts * 2 * cfg.delayMs) / 1000;
}

const mib = (b: number) => (b / 1024 / 1024).toFixed(2);
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;

async function main(): Promise<void> {
  const cfg = config();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-bench-scale-run-'));
  const world = await World.open(cfg.worldDir);
  const capped = cfg.uplinkMbit > 0;
  let fixture: Fixture | undefined;
  const log = (s: string) => process.stderr.write(`bench:scale: ${s}\n`);
  try {
    await world.removeAll();
    if (capped) await capUplink(cfg.uplinkMbit);
    log('building the fixture closures');
    fixture = await makeFixture(cfg, work);
    let tfEnv: NodeJS.ProcessEnv | undefined;
    if (cfg.plan) {
      const installed = await installProvider({ dir: path.join(work, 'providers') });
      tfEnv = { ...process.env, TF_CLI_CONFIG_FILE: installed.cliConfig, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };
      delete tfEnv.TF_LOG;
    }

    const results: { n: number; scenario: Scenario; ours: Run | undefined; a: Run | undefined; b: Run | undefined }[] = [];
    for (const n of cfg.counts) {
      log(`${n} host(s): creating ${3 * n} hosts`);
      const sets: Record<'ours' | 'a' | 'b', TestHost[]> = { ours: [], a: [], b: [] };
      // One at a time: a netns host picks the first free address on the bridge.
      for (const kind of ['ours', 'a', 'b'] as const) {
        for (let i = 0; i < n; i++) {
          const host = await world.createHost({ name: `${kind[0]}${n}-${i}`, network: 'netns' });
          await capHost(host, cfg.hostMbit);
          if (capped) await uplinkFilter(host, cfg.uplinkMbit);
          sets[kind].push(host);
        }
      }
      const relays = {
        ours: await startRelays(sets.ours, cfg.delayMs),
        a: await startRelays(sets.a, cfg.delayMs),
        b: await startRelays(sets.b, cfg.delayMs),
      };
      try {
        const f = fixture;
        const ours: Partial<Record<Scenario, Run>> = {};
        const a: Partial<Record<Scenario, Run>> = {};
        const b: Partial<Record<Scenario, Run>> = {};
        const steps: [Scenario, string, string][] = [
          ['first deploy', f.v1, f.v1Out],
          ['changed deploy', f.v2, f.v2Out],
          ['no-change redeploy', f.v2, f.v2Out],
        ];
        for (const [scenario, flake, out] of steps) {
          log(`${n} host(s): ${scenario}: ours`);
          ours[scenario] = await measure(relays.ours, true, () => engineDeploy(world, sets.ours, relays.ours, flake, work));
          log(`${n} host(s): ${scenario}: baseline (a)`);
          a[scenario] = await measure(relays.a, false, () => baselineDeploy(world, relays.a, out, 1));
          log(`${n} host(s): ${scenario}: baseline (b)`);
          b[scenario] = await measure(relays.b, false, () => baselineDeploy(world, relays.b, out, cfg.parallel));
        }
        if (tfEnv) {
          log(`${n} host(s): no-change plan: terraform init + apply (not timed)`);
          const dir = await preparePlan(world, sets.ours, relays.ours, f, work, tfEnv);
          log(`${n} host(s): no-change plan: terraform plan`);
          // The deploying processes are terraform and the provider, children of this process.
          ours['no-change plan'] = await measure(relays.ours, false, async () => {
            const code = await terraform(dir, ['plan', '-detailed-exitcode'], tfEnv!);
            return code === 2 ? 'plan showed changes' : undefined;
          });
        }
        for (const scenario of SCENARIOS) results.push({ n, scenario, ours: ours[scenario], a: a[scenario], b: b[scenario] });
      } finally {
        await Promise.all(Object.values(relays).map((r) => r.close()));
        for (const host of [...sets.ours, ...sets.a, ...sets.b]) await world.removeHost(host.name);
      }
    }

    const cpu = os.cpus();
    const link = (mbit: number) => (mbit > 0 ? `${mbit} Mbit/s` : 'uncapped');
    const lines = [
      `Scale benchmark${smoke ? ' (smoke)' : ''}: ${cpu.length} cores (${cpu[0].model}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, ` +
        `terraform ${spawnSync('terraform', ['version'], { encoding: 'utf8' }).stdout.split('\n')[0].replace('Terraform ', '')}.`,
      `Links: host ${link(cfg.hostMbit)} (tc tbf on its veth), deployer uplink ${link(cfg.uplinkMbit)} (tc htb class on the bridge); RTT ${2 * cfg.delayMs} ms (delay relay in front of each sshd).`,
      `Closure: ${mib(fixture.closureBytes)} MiB NAR (${fixture.packages} payload packages); changed version: ${mib(fixture.changedBytes)} MiB new.`,
      `Baselines on fresh hosts: (a) sequential nix-copy-closure --to + ssh switch-to-configuration switch; (b) the same, ${cfg.parallel} at a time.`,
      `Sent = bytes from the deployer through the relays; conns = TCP connections through the relays (SSH connections opened).`,
      `Peak RSS = deploying processes: for ours, this process (engine in-process) + its children; for the plan, terraform + provider; for baselines, the nix-copy-closure/ssh processes.`,
      `Limit = max(bytes / uplink, bytes / host link) + round trips (${DEPLOY_RTTS} for a deploy, ${CHECK_RTTS} for no-change); bytes = closure, changed paths, or 0.`,
      '',
      row(['N', 'scenario', 'run', 'wall s', 'MiB sent', 'conns', 'peak RSS MiB', 'limit s', '÷ limit', '÷ (a)', '÷ (b)']),
      row(Array(11).fill('---')),
    ];
    for (const r of results) {
      const bytes = r.scenario === 'first deploy' ? fixture.closureBytes : r.scenario === 'changed deploy' ? fixture.changedBytes : 0;
      const limit = limitSeconds(cfg, bytes, bytes > 0 ? DEPLOY_RTTS : CHECK_RTTS);
      for (const [label, run] of [['ours', r.ours], ['(a)', r.a], ['(b)', r.b]] as const) {
        if (!run) {
          if (label === 'ours') lines.push(row([r.n, r.scenario, label, 'not measured yet', '', '', '', '', '', '', '']));
          else if (r.scenario === 'no-change plan') lines.push(row([r.n, r.scenario, label, 'n/a (no plan step)', '', '', '', '', '', '', '']));
          continue;
        }
        const ratio = (base: Run | undefined) => (base ? (run.seconds / base.seconds).toFixed(2) : 'n/a');
        lines.push(
          row([
            r.n,
            r.scenario,
            label + (run.note ? ` (${run.note})` : ''),
            run.seconds.toFixed(2),
            mib(run.bytes),
            run.connections,
            mib(run.peakRss),
            limit.toFixed(2),
            (run.seconds / limit).toFixed(2),
            ratio(r.a),
            ratio(r.b),
          ]),
        );
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await world.removeAll();
    if (capped) await uncapUplink();
    if (fixture) fs.rmSync(fixture.dir, { recursive: true, force: true });
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`bench:scale: ${e instanceof Error ? e.stack : e}\n`);
  process.exit(1);
});
