import { ChildProcessWithoutNullStreams, spawn, spawnSync } from 'child_process';
import execa from 'execa';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as readline from 'readline';
import { installProvider, terraformEnv } from '../bin/provider-install';
import { evaluate } from '../lib/engine';
import { nixStore } from '../lib/engine/local-nix';
import { TestHost, World } from '../world/world';

/**
 * Deploy speed and scale (issue 5).
 *
 * Test hosts live in network namespaces on the bridge nixw-br0. `tc tbf` caps every host's
 * link (its veth, toward the host); an htb class caps the deployer's uplink (the bridge
 * device's egress, for this run's hosts only). A delay relay (world/tcp-proxy.ts, in a
 * process of its own) sits in front of every sshd and adds half the round-trip time each
 * way; the deployer connects through it, and it counts bytes and connections.
 *
 * Ours is `terraform apply` of N nixos_system resources through the bundled provider, with
 * a binary cache: an HTTP store on a host of its own (uncapped, as S3 is), which the
 * deployer reaches over its uplink through a delay relay and the hosts reach directly.
 *
 * Scenarios, for each N: first deploy, deploy of the changed version, no-change redeploy
 * (`terraform apply` again), no-change plan, and one host changed. Baselines on fresh hosts
 * in the same run: (a) sequential nix-copy-closure --to + ssh switch-to-configuration
 * switch, (b) the same 8 at a time; for the plan, the same stack of terraform_data only.
 *
 *   npm run bench:scale [-- --hosts 1,8,32 --payload-mb 64 --changed-mb 8
 *                          --host-mbit 50 --uplink-mbit 100 --delay-ms 50 --parallelism 10]
 *   npm run bench:scale -- --smoke     (N = 2, tiny closure, no caps, 5 ms delay)
 */

const WORLD_ROOT = process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world';
const BRIDGE = 'nixw-br0';
const CACHE_PORT = 8081;
/** Round trips no deploy can avoid: TCP, SSH key exchange, auth, session. */
const CONNECT_RTTS = 4;
/** Plus: ask what the host has and lacks, then transfer and activate. */
const DEPLOY_RTTS = CONNECT_RTTS + 2;
/** Plus: ask what the host runs. */
const CHECK_RTTS = CONNECT_RTTS + 1;
/** Plan timings are the median of this many runs. */
const PLAN_RUNS = 3;

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
  /** Baseline (b)'s parallel copies. */
  parallel: number;
  /** terraform -parallelism. */
  tfParallelism: number;
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
    tfParallelism: num('parallelism', 10, 10),
    worldDir: `${WORLD_ROOT}/${smoke ? 'bench-scale-smoke' : 'bench-scale'}`,
  };
}

const log = (s: string) => process.stderr.write(`bench:scale: ${s}\n`);

// ---------------------------------------------------------------------------------------
// Fixture: K payload packages of `changedBytes` each. `v2` has payload0 at another version,
// `v3` payload1 as well: each differs from the one before by one package plus the toplevel.

interface Fixture {
  dir: string;
  flakes: { v1: string; v2: string; v3: string };
  outs: { v1: string; v2: string; v3: string };
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
  const packages = Math.max(2, Math.round(cfg.payloadBytes / cfg.changedBytes));
  const size = Math.floor(cfg.payloadBytes / packages);
  const pkg = (i: number, version: string) => ({ name: `payload${i}`, version, sizeBytes: size });
  settings.version = `scale-${Date.now()}`;
  settings.packages = Array.from({ length: packages }, (_, i) => pkg(i, '1.0'));
  settings.machines = ['v2', 'v3'];
  settings.machinePackages = { v2: [pkg(0, '2.0')], v3: [pkg(0, '2.0'), pkg(1, '2.0')] };
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify(settings));
  await execa('git', ['init', '-q'], { cwd: dir });
  await execa('git', ['add', '-A'], { cwd: dir });

  // Both sides start from built closures: the benchmark compares getting them onto hosts.
  // The evaluation cache is warm too, as on a deployer that planned before.
  const outs: string[] = [];
  for (const name of ['good', 'v2', 'v3']) {
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
    flakes: { v1: `${dir}#good`, v2: `${dir}#v2`, v3: `${dir}#v3` },
    outs: { v1: outs[0], v2: outs[1], v3: outs[2] },
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
  /** Totals since start, per relay, in the order of the targets. */
  stats(): Promise<{ bytes: number[]; connections: number[] }>;
  close(): Promise<void>;
}

/** Relays and the cache server: never counted as the deployer's memory. */
const infraPids = new Set<number>();

async function startRelays(targets: { address: string; port: number }[], delayMs: number): Promise<Relays> {
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'proxy-server.ts'), JSON.stringify({ targets: targets.map((t) => ({ host: t.address, port: t.port })), delayMs })],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  child.stderr.on('data', (d) => process.stderr.write(d));
  const lines = readline.createInterface({ input: child.stdout });
  const waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  lines.on('line', (line) => waiting.shift()?.resolve(line));
  child.once('exit', (code) => waiting.splice(0).forEach((w) => w.reject(new Error(`relay process exited (${code})`))));
  const nextLine = () => new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }));
  infraPids.add(child.pid!);
  const { ports } = JSON.parse(await nextLine()) as { ports: number[] };
  return {
    ports,
    pid: child.pid!,
    async stats() {
      const answer = nextLine();
      child.stdin.write('stats\n');
      return JSON.parse(await answer) as { bytes: number[]; connections: number[] };
    },
    close: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.stdin.end();
        setTimeout(() => child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

/** Children of every thread: Go programs (terraform) start processes from any thread. */
function childrenOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((task) => fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/))
      .filter(Boolean)
      .map(Number);
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

function commandLine(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Peak resident memory, sampled every 50 ms, of this process's descendants (never the
 * relays): those whose command line matches `only` (without their own children), or all.
 */
function sampleMemory(only?: RegExp): () => number {
  let peak = 0;
  const sample = () => {
    let total = 0;
    const stack = childrenOf(process.pid).filter((p) => !infraPids.has(p));
    while (stack.length) {
      const pid = stack.pop()!;
      const matches = !only || only.test(commandLine(pid));
      if (matches) total += rssOf(pid);
      if (!only || !matches) stack.push(...childrenOf(pid));
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
// The binary cache: an HTTP store on a host of its own, uncapped (S3 stands in here).

interface Cache {
  address: string;
  stop(): void;
}

async function startCache(host: TestHost, dir: string): Promise<Cache> {
  const child = spawn('ip', ['netns', 'exec', host.netns!, process.execPath, '--import', 'tsx', path.join(__dirname, '..', 'world', 'binary-cache-server.ts'), dir, host.address, String(CACHE_PORT)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  infraPids.add(child.pid!);
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the binary cache server exited (${code})`)));
  });
  return { address: host.address, stop: () => child.kill() };
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

/** Runs `work`, with bytes and connections counted by the relays (connections: SSH relays only, the first `sshRelays`). */
async function measure(relays: Relays, sshRelays: number, memory: RegExp | undefined, work: () => Promise<string | void>): Promise<Run> {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const before = await relays.stats();
  const stop = sampleMemory(memory);
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
  return {
    seconds,
    bytes: sum(after.bytes) - sum(before.bytes),
    connections: sum(after.connections.slice(0, sshRelays)) - sum(before.connections.slice(0, sshRelays)),
    peakRss,
    note: note || undefined,
  };
}

async function baselineDeploy(world: World, ports: number[], outPath: string, parallel: number): Promise<void> {
  let next = 0;
  const one = async (port: number) => {
    const ssh = `-i ${world.clientKeyFile} -p ${port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
    await execa('nix-copy-closure', ['--to', 'root@127.0.0.1', outPath], { env: { NIX_SSHOPTS: ssh } });
    await execa('ssh', [...ssh.split(' '), 'root@127.0.0.1', `nix-env -p /nix/var/nix/profiles/system --set ${outPath} && ${outPath}/bin/switch-to-configuration switch`]);
  };
  const worker = async () => {
    while (next < ports.length) await one(ports[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, ports.length) }, worker));
}

/** One nixos_system per host. */
interface StackHost {
  host: string;
  port: number;
  hostKey: string;
  flake: string;
}

interface StackCache {
  uri: string;
  substituterUri: string;
  publicKey: string;
  secretKeyFile: string;
}

function nixosStack(world: World, work: string, hosts: StackHost[], cache?: StackCache): string {
  const q = JSON.stringify;
  const cacheBlock = cache
    ? `  binary_cache {\n    uri = ${q(cache.uri)}\n    substituter_uri = ${q(cache.substituterUri)}\n    public_key = ${q(cache.publicKey)}\n    secret_key_file = ${q(cache.secretKeyFile)}\n  }\n`
    : '';
  return (
    `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}\n` +
    `provider "nixos" {\n  private_key_file = ${q(world.clientKeyFile)}\n` +
    `  known_hosts_file = ${q(path.join(work, 'known_hosts_tf'))}\n  eval_cache_dir = ${q(path.join(work, 'eval'))}\n}\n` +
    hosts
      .map((h, i) => `resource "nixos_system" "h${i}" {\n  flake = ${q(h.flake)}\n  host = ${q(h.host)}\n  port = ${h.port}\n  host_key = ${q(h.hostKey)}\n${cacheBlock}}\n`)
      .join('')
  );
}

function dataStack(hosts: StackHost[]): string {
  return hosts.map((h, i) => `resource "terraform_data" "h${i}" {\n  input = ${JSON.stringify(`${h.host}:${h.port} ${h.flake}`)}\n}\n`).join('');
}

class Stack {
  constructor(readonly dir: string, private readonly env: NodeJS.ProcessEnv, private readonly parallelism: number) {
    fs.mkdirSync(dir, { recursive: true });
  }

  write(text: string): void {
    fs.writeFileSync(path.join(this.dir, 'main.tf'), text);
  }

  /** terraform with these arguments; returns its output. Exit code 2 of -detailed-exitcode is not a failure. */
  async run(args: string[]): Promise<string> {
    const extra = args[0] === 'apply' || args[0] === 'plan' ? [`-parallelism=${this.parallelism}`] : [];
    const r = await execa('terraform', [...args, ...extra, '-no-color', '-input=false'], { cwd: this.dir, env: this.env, reject: false, timeout: 3_600_000 });
    if (r.exitCode !== 0 && !(args.includes('-detailed-exitcode') && r.exitCode === 2)) {
      throw new Error(`terraform ${args.join(' ')} in ${this.dir} exited ${r.exitCode}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
    }
    return r.stdout;
  }

  /** Median seconds of PLAN_RUNS no-change plans; throws if one shows changes. */
  async planSeconds(): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < PLAN_RUNS; i++) {
      const start = process.hrtime.bigint();
      const out = await this.run(['plan', '-detailed-exitcode']);
      times.push(Number(process.hrtime.bigint() - start) / 1e9);
      if (!/No changes/.test(out)) throw new Error(`a no-change plan in ${this.dir} showed changes:\n${out.slice(-2000)}`);
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  }
}

// ---------------------------------------------------------------------------------------
// Limits and the tables.

type Scenario = 'first deploy' | 'changed deploy' | 'no-change redeploy' | 'one host changed';
const DEPLOYS: Scenario[] = ['first deploy', 'changed deploy', 'no-change redeploy', 'one host changed'];

/** Seconds: the bytes every host must receive over its link, and the deployer must send at least once over its uplink, at the narrower rate; plus the unavoidable round trips. */
function limitSeconds(cfg: Config, bytes: number, rtts: number): number {
  const rate = (mbit: number) => (mbit > 0 ? (mbit * 1e6) / 8 : Infinity);
  const transfer = bytes === 0 ? 0 : Math.max(bytes / rate(cfg.uplinkMbit), bytes / rate(cfg.hostMbit));
  return transfer + (rtts * 2 * cfg.delayMs) / 1000;
}

const mib = (b: number) => (b / 1024 / 1024).toFixed(2);
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;

interface Measured {
  n: number;
  deploys: Partial<Record<Scenario, { ours: Run; a?: Run; b?: Run }>>;
  plan: { rtt: Run; loopback: number; data: number };
}

const PROVIDER_PROCESS = /terraform-provider-nixos/;

async function measureN(cfg: Config, world: World, fixture: Fixture, cacheKey: { publicKey: string; secretKeyFile: string }, tfEnv: NodeJS.ProcessEnv, work: string, n: number): Promise<Measured> {
  log(`${n} host(s): creating ${3 * n + 1} hosts`);
  const sets: Record<'ours' | 'a' | 'b', TestHost[]> = { ours: [], a: [], b: [] };
  const capped = cfg.uplinkMbit > 0;
  // One at a time: a netns host picks the first free address on the bridge.
  const cacheHost = await world.createHost({ name: `cache${n}`, network: 'netns' });
  if (capped) await uplinkFilter(cacheHost, cfg.uplinkMbit);
  for (const kind of ['ours', 'a', 'b'] as const) {
    for (let i = 0; i < n; i++) {
      const host = await world.createHost({ name: `${kind[0]}${n}-${i}`, network: 'netns' });
      await capHost(host, cfg.hostMbit);
      if (capped) await uplinkFilter(host, cfg.uplinkMbit);
      sets[kind].push(host);
    }
  }
  const cache = await startCache(cacheHost, path.join(work, `cache-${n}`));
  const relays = {
    ours: await startRelays([...sets.ours, { address: cache.address, port: CACHE_PORT }], cfg.delayMs),
    a: await startRelays(sets.a, cfg.delayMs),
    b: await startRelays(sets.b, cfg.delayMs),
  };
  try {
    // A fresh path per run: Nix remembers what a cache URI held, and the address repeats.
    const prefix = `/run-${Date.now()}`;
    const stackCache: StackCache = {
      // Pushes go through the deployer's uplink and its delay relay; hosts fetch directly.
      uri: `http://127.0.0.1:${relays.ours.ports[n]}${prefix}?compression=zstd`,
      substituterUri: `http://${cache.address}:${CACHE_PORT}${prefix}`,
      ...cacheKey,
    };
    const stackHosts = (flakes: string[]): StackHost[] =>
      sets.ours.map((h, i) => ({ host: '127.0.0.1', port: relays.ours.ports[i], hostKey: world.hostKey(h.name), flake: flakes[i] }));
    const ours = new Stack(path.join(work, `ours-${n}`), tfEnv, cfg.tfParallelism);
    const all = (flake: string) => Array<string>(n).fill(flake);
    const f = fixture.flakes;
    ours.write(nixosStack(world, work, stackHosts(all(f.v1)), stackCache));
    await ours.run(['init']);

    const apply = (flakes: string[], expectChanges: boolean) => async () => {
      ours.write(nixosStack(world, work, stackHosts(flakes), stackCache));
      const out = await ours.run(['apply', '-auto-approve']);
      if (!expectChanges && !/No changes/.test(out)) return 'applied changes';
      if (expectChanges && /No changes/.test(out)) return 'found nothing to change';
      return undefined;
    };
    const deploys: Measured['deploys'] = {};
    const steps: [Scenario, string[], string | undefined][] = [
      ['first deploy', all(f.v1), fixture.outs.v1],
      ['changed deploy', all(f.v2), fixture.outs.v2],
      ['no-change redeploy', all(f.v2), fixture.outs.v2],
    ];
    for (const [scenario, flakes, out] of steps) {
      log(`${n} host(s): ${scenario}: ours (terraform apply)`);
      const oursRun = await measure(relays.ours, n, PROVIDER_PROCESS, apply(flakes, scenario !== 'no-change redeploy'));
      log(`${n} host(s): ${scenario}: baseline (a)`);
      const a = await measure(relays.a, n, undefined, () => baselineDeploy(world, relays.a.ports, out!, 1));
      log(`${n} host(s): ${scenario}: baseline (b)`);
      const b = await measure(relays.b, n, undefined, () => baselineDeploy(world, relays.b.ports, out!, cfg.parallel));
      deploys[scenario] = { ours: oursRun, a, b };
    }

    log(`${n} host(s): no-change plan with ${2 * cfg.delayMs} ms round trips`);
    const rtt = await measure(relays.ours, n, PROVIDER_PROCESS, async () => {
      const out = await ours.run(['plan', '-detailed-exitcode']);
      return /No changes/.test(out) ? undefined : 'plan showed changes';
    });

    log(`${n} host(s): one host changed`);
    const oneChanged = [f.v3, ...all(f.v2).slice(1)];
    deploys['one host changed'] = { ours: await measure(relays.ours, n, PROVIDER_PROCESS, apply(oneChanged, true)) };

    log(`${n} host(s): no-change plan on loopback links, and of terraform_data`);
    const direct = sets.ours.map((h, i) => ({ host: h.address, port: h.port, hostKey: world.hostKey(h.name), flake: oneChanged[i] }));
    const loopbackStack = new Stack(path.join(work, `loopback-${n}`), tfEnv, cfg.tfParallelism);
    loopbackStack.write(nixosStack(world, work, direct, stackCache));
    await loopbackStack.run(['init']);
    await loopbackStack.run(['apply', '-auto-approve']);
    const dataStackDir = new Stack(path.join(work, `data-${n}`), tfEnv, cfg.tfParallelism);
    dataStackDir.write(dataStack(direct));
    await dataStackDir.run(['init']);
    await dataStackDir.run(['apply', '-auto-approve']);
    const plan = { rtt, loopback: await loopbackStack.planSeconds(), data: await dataStackDir.planSeconds() };
    return { n, deploys, plan };
  } finally {
    await Promise.all(Object.values(relays).map((r) => r.close()));
    cache.stop();
    for (const host of [cacheHost, ...sets.ours, ...sets.a, ...sets.b]) await world.removeHost(host.name);
  }
}

function report(cfg: Config, fixture: Fixture, results: Measured[]): string {
  const cpu = os.cpus();
  const link = (mbit: number) => (mbit > 0 ? `${mbit} Mbit/s` : 'uncapped');
  const lines = [
    `Scale benchmark${smoke ? ' (smoke)' : ''}: ${cpu.length} cores (${cpu[0].model}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, ` +
      `terraform ${spawnSync('terraform', ['version'], { encoding: 'utf8' }).stdout.split('\n')[0].replace('Terraform ', '')}, -parallelism=${cfg.tfParallelism}.`,
    `Links: host ${link(cfg.hostMbit)} (tc tbf on its veth), deployer uplink ${link(cfg.uplinkMbit)} (tc htb class on the bridge); RTT ${2 * cfg.delayMs} ms between the deployer and every host or the cache (delay relays).`,
    `Closure: ${mib(fixture.closureBytes)} MiB NAR (${fixture.packages} payload packages); changed version: ${mib(fixture.changedBytes)} MiB new.`,
    `Ours: terraform apply of N nixos_system resources with a binary cache (an HTTP store on an uncapped host, standing in for S3). Baselines on fresh hosts: (a) sequential nix-copy-closure --to + ssh switch-to-configuration switch; (b) the same, ${cfg.parallel} at a time.`,
    `Sent = bytes from the deployer (to hosts and cache); SSH conns = connections to the hosts' sshd; peak RSS = the provider processes for ours, the nix-copy-closure/ssh processes for the baselines.`,
    `Limit = max(bytes / uplink, bytes / host link) + round trips (${DEPLOY_RTTS} for a deploy, ${CHECK_RTTS} for no-change); bytes = closure, changed paths, or 0.`,
    '',
    row(['N', 'scenario', 'run', 'wall s', 'MiB sent', 'SSH conns', 'peak RSS MiB', 'limit s', '÷ limit', '÷ (a)', '÷ (b)']),
    row(Array(11).fill('---')),
  ];
  for (const r of results) {
    for (const scenario of DEPLOYS) {
      const runs = r.deploys[scenario];
      if (!runs) continue;
      const bytes = scenario === 'first deploy' ? fixture.closureBytes : scenario === 'no-change redeploy' ? 0 : fixture.changedBytes;
      const limit = limitSeconds(cfg, bytes, bytes > 0 ? DEPLOY_RTTS : CHECK_RTTS);
      for (const [label, run] of [['ours', runs.ours], ['(a)', runs.a], ['(b)', runs.b]] as const) {
        if (!run) continue;
        const ratio = (base: Run | undefined) => (base ? (run.seconds / base.seconds).toFixed(2) : '');
        lines.push(row([r.n, scenario, label + (run.note ? ` (${run.note})` : ''), run.seconds.toFixed(2), mib(run.bytes), run.connections, mib(run.peakRss), limit.toFixed(2), (run.seconds / limit).toFixed(2), ratio(runs.a), ratio(runs.b)]));
      }
    }
  }
  lines.push('', `No-change plan: with ${2 * cfg.delayMs} ms round trips through the relays, and on the links without delay (median of ${PLAN_RUNS}) beside the same stack of terraform_data resources.`, '');
  lines.push(row(['N', `ours, ${2 * cfg.delayMs} ms RTT s`, 'SSH conns', 'provider peak RSS MiB', 'ours, no delay s', 'terraform_data s', 'ratio']), row(Array(7).fill('---')));
  for (const r of results) {
    const p = r.plan;
    lines.push(row([r.n, p.rtt.seconds.toFixed(2) + (p.rtt.note ? ` (${p.rtt.note})` : ''), p.rtt.connections, mib(p.rtt.peakRss), p.loopback.toFixed(2), p.data.toFixed(2), (p.loopback / p.data).toFixed(2)]));
  }
  const base = results.find((r) => r.n === Math.min(...results.map((x) => x.n)))?.deploys['one host changed']?.ours;
  if (base) {
    lines.push('', `Cost of a change: one host's closure changes (${mib(fixture.changedBytes)} MiB new), in stacks of N hosts.`, '');
    lines.push(row(['N', 'wall s', 'MiB sent', 'SSH conns', `÷ N=${results[0].n}`]), row(Array(5).fill('---')));
    for (const r of results) {
      const run = r.deploys['one host changed']?.ours;
      if (run) lines.push(row([r.n, run.seconds.toFixed(2), mib(run.bytes), run.connections, (run.seconds / base.seconds).toFixed(2)]));
    }
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const cfg = config();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-bench-scale-run-'));
  const world = await World.open(cfg.worldDir);
  const capped = cfg.uplinkMbit > 0;
  let fixture: Fixture | undefined;
  try {
    await world.removeAll();
    if (capped) await capUplink(cfg.uplinkMbit);
    log('building the fixture closures');
    fixture = await makeFixture(cfg, work);
    const installed = await installProvider({ dir: path.join(work, 'providers') });
    const tfEnv: NodeJS.ProcessEnv = terraformEnv(installed);
    const secretKeyFile = path.join(work, 'cache.sec');
    await execa('nix-store', ['--generate-binary-cache-key', 'bench-scale-1', secretKeyFile, path.join(work, 'cache.pub')]);
    const cacheKey = { publicKey: fs.readFileSync(path.join(work, 'cache.pub'), 'utf8').trim(), secretKeyFile };

    const results: Measured[] = [];
    for (const n of cfg.counts) results.push(await measureN(cfg, world, fixture, cacheKey, tfEnv, work, n));
    process.stdout.write(report(cfg, fixture, results));
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
