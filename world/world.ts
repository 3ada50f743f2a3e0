import { spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import execa from 'execa';

/** Where a world keeps its keys and hosts unless told otherwise. */
export const DEFAULT_WORLD_DIR = process.env.CDKTF_NIXOS_WORLD ?? '/var/lib/cdktf-nixos-world/default';

const SOURCE_DIR = __dirname;
const BRIDGE = 'nixw-br0';
const BRIDGE_ADDRESS = '198.18.0.1';
/** 198.18.0.0/15 is reserved for benchmarking: no real network is ever addressed. */
const NETNS_PREFIX = '198.18.';
const HOST_PATH = '/usr/local/bin:/usr/bin:/bin';

/** How a test host is made. */
export interface HostOptions {
  readonly name: string;
  /**
   * `loopback`: sshd on a free port of 127.0.0.1. `netns`: an `ip netns` of its own with an
   * address on the world's bridge, sshd on port 22.
   * @default 'loopback'
   */
  readonly network?: 'loopback' | 'netns';
  /**
   * Put this host into another netns host's network namespace, listening on that
   * namespace's 127.0.0.1 only: reachable solely through that host (a jump host test).
   */
  readonly insideNetnsOf?: string;
  /** @default true. false: the login PATH holds no Nix commands. */
  readonly nix?: boolean;
  /** @default 'writable'. A number: a store of at most that many bytes. */
  readonly store?: 'writable' | 'read-only' | number;
  /**
   * Extra lines for the host's own /etc/nix/nix.conf (appended to a per-host copy of the
   * machine's), e.g. `substituters = file:///...` and `trusted-public-keys = ...`.
   * @default the machine's /etc/nix as it is
   */
  readonly nixConf?: string;
}

/** A running test host, as a test sees it. */
export interface TestHost {
  readonly name: string;
  readonly dir: string;
  readonly address: string;
  readonly port: number;
  readonly serviceAddress: string;
  readonly servicePort: number;
  /** The netns the host lives in, when not the machine's own. */
  readonly netns?: string;
}

interface HostRecord extends TestHost {
  readonly pid: number;
  readonly options: HostOptions;
  /** A hash of the scripts the host was started with; hosts of older scripts are replaced. */
  readonly scripts: string;
}

/** A hash of the scripts that make a host what it is. */
function scriptsHash(): string {
  const hash = createHash('sha256');
  for (const file of ['host-init.sh', 'authorized-keys.sh']) hash.update(fs.readFileSync(path.join(SOURCE_DIR, file)));
  return hash.digest('hex');
}

/**
 * A set of test hosts with their own stores, /run and sshd, and one client key pair
 * that every host accepts. All state lives in one directory; every call is idempotent.
 */
export class World {
  readonly clientKeyFile: string;
  readonly clientPublicKey: string;

  private constructor(readonly dir: string) {
    this.clientKeyFile = path.join(dir, 'client', 'id_ed25519');
    this.clientPublicKey = fs.readFileSync(`${this.clientKeyFile}.pub`, 'utf8').trim();
  }

  /** Opens the world in `dir`, creating its keys and scripts on first use. */
  static async open(dir: string = DEFAULT_WORLD_DIR): Promise<World> {
    fs.mkdirSync(path.join(dir, 'client'), { recursive: true, mode: 0o755 });
    fs.mkdirSync(path.join(dir, 'hosts'), { recursive: true });
    fs.chmodSync(dir, 0o755);
    const key = path.join(dir, 'client', 'id_ed25519');
    if (!fs.existsSync(key)) {
      await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'cdktf-nixos-world', '-f', key]);
      fs.copyFileSync(`${key}.pub`, path.join(dir, 'client', 'authorized_keys'));
    }
    // sshd insists that its AuthorizedKeysCommand and every folder above it belong to root.
    fs.copyFileSync(path.join(SOURCE_DIR, 'authorized-keys.sh'), path.join(dir, 'authorized-keys.sh'));
    fs.chmodSync(path.join(dir, 'authorized-keys.sh'), 0o755);
    return new World(dir);
  }

  /**
   * The world in `dir` as it is, creating nothing (for synth time): undefined when it was
   * never set up.
   */
  static existing(dir: string = DEFAULT_WORLD_DIR): World | undefined {
    return fs.existsSync(path.join(dir, 'client', 'id_ed25519.pub')) ? new World(dir) : undefined;
  }

  /** Every host of this world that has a record. */
  hosts(): TestHost[] {
    return fs
      .readdirSync(path.join(this.dir, 'hosts'))
      .filter((name) => fs.existsSync(this.recordFile(name)))
      .map((name) => this.host(name));
  }

  /** The host called `name`. */
  host(name: string): TestHost {
    const record = this.record(name);
    if (!record) throw new Error(`test host "${name}" does not exist in ${this.dir}`);
    return record;
  }

  /** The running host called `name`, or a new one if it is missing or stopped. */
  async ensureHost(options: HostOptions): Promise<TestHost> {
    const record = this.record(options.name);
    if (record && record.scripts === scriptsHash() && fs.existsSync(`/proc/${record.pid}`)) return record;
    return this.createHost(options);
  }

  /** Creates and starts a host, replacing one of the same name. */
  async createHost(options: HostOptions): Promise<TestHost> {
    await this.removeHost(options.name);
    const dir = path.join(this.dir, 'hosts', options.name);
    fs.mkdirSync(path.join(dir, 'nix'), { recursive: true });
    fs.chmodSync(dir, 0o755);
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', options.name, '-f', path.join(dir, 'ssh_host_ed25519_key')]);

    const placement = await this.placeHost(options);
    const servicePort = placement.netns && !options.insideNetnsOf ? 8080 : await freePort();
    const env = [
      `HOST_NAME=${options.name}`,
      `SERVICE_ADDRESS=${placement.serviceAddress}`,
      `SERVICE_PORT=${servicePort}`,
      typeof options.store === 'number' ? `STORE_SIZE_BYTES=${options.store}` : '',
      options.store === 'read-only' ? 'STORE_READ_ONLY=1' : '',
      options.nix === false ? 'WITHOUT_NIX=1' : '',
    ];
    if (options.nixConf !== undefined) fs.writeFileSync(path.join(dir, 'nix.conf.extra'), options.nixConf.replace(/\n?$/, '\n'));
    fs.writeFileSync(path.join(dir, 'host.env'), env.filter(Boolean).join('\n') + '\n');
    fs.writeFileSync(path.join(dir, 'sshd_config'), this.sshdConfig(dir, placement.listen, placement.port));

    const pid = await startHostProcess(dir, placement.netns);
    const record: HostRecord = {
      name: options.name,
      dir,
      address: placement.address,
      port: placement.port,
      serviceAddress: placement.serviceAddress,
      servicePort,
      netns: placement.netns,
      pid,
      options,
      scripts: scriptsHash(),
    };
    fs.writeFileSync(this.recordFile(options.name), JSON.stringify(record, null, 2));
    await waitForSshd(record);
    return record;
  }

  /** Stops a host and every process in it, and deletes its store. Missing hosts are fine. */
  async removeHost(name: string): Promise<void> {
    const record = this.record(name);
    const dir = path.join(this.dir, 'hosts', name);
    if (record) {
      killNamespace(record.pid);
      if (record.netns && !record.options.insideNetnsOf) {
        await execa('ip', ['netns', 'del', record.netns], { reject: false });
      }
    }
    if (fs.existsSync(dir)) {
      await execa('chmod', ['-R', 'u+w', dir], { reject: false });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Removes every host. */
  async removeAll(): Promise<void> {
    for (const name of fs.readdirSync(path.join(this.dir, 'hosts'))) await this.removeHost(name);
  }

  /** Runs a shell command inside the host, as root, without SSH. For assertions only. */
  async exec(name: string, command: string): Promise<execa.ExecaReturnValue> {
    const record = this.host(name) as HostRecord;
    const nsFlags = record.netns ? ['-m', '-n'] : ['-m'];
    return execa('nsenter', ['-t', String(record.pid), ...nsFlags, 'sh', '-c', command], {
      reject: false,
      env: { PATH: HOST_PATH },
    });
  }

  /** The host's public host key, as an OpenSSH `type base64` line. */
  hostKey(name: string): string {
    const line = fs.readFileSync(path.join(this.dir, 'hosts', name, 'ssh_host_ed25519_key.pub'), 'utf8');
    return line.split(' ').slice(0, 2).join(' ');
  }

  /** Gives the host a new host key and restarts its sshd (a reinstalled or spoofed host). */
  async regenerateHostKey(name: string): Promise<void> {
    const record = this.host(name);
    const key = path.join(record.dir, 'ssh_host_ed25519_key');
    fs.rmSync(key, { force: true });
    fs.rmSync(`${key}.pub`, { force: true });
    await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', key]);
    const restart = `kill $(cat /run/sshd.pid); sleep 0.2; /usr/sbin/sshd -f ${record.dir}/sshd_config -E ${record.dir}/sshd.log`;
    const result = await this.exec(name, restart);
    if (result.exitCode !== 0) throw new Error(`restarting sshd on ${name} failed: ${result.stderr}`);
    await waitForSshd(record as HostRecord);
  }

  private recordFile(name: string): string {
    return path.join(this.dir, 'hosts', name, 'host.json');
  }

  private record(name: string): HostRecord | undefined {
    const file = this.recordFile(name);
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as HostRecord) : undefined;
  }

  private async placeHost(options: HostOptions) {
    if (options.insideNetnsOf) {
      const outer = this.host(options.insideNetnsOf);
      if (!outer.netns) throw new Error(`insideNetnsOf: host "${options.insideNetnsOf}" has no netns of its own`);
      // Ports are per namespace: take the lowest one no other host in that namespace uses.
      const used = new Set(this.hosts().filter((h) => h.netns === outer.netns).map((h) => h.port));
      let port = 2200;
      while (used.has(port)) port++;
      return { netns: outer.netns, listen: '127.0.0.1', address: '127.0.0.1', port, serviceAddress: '127.0.0.1' };
    }
    if (options.network === 'netns') {
      const netns = `nixw-${options.name}`;
      const address = await createNetns(netns, this.usedAddresses());
      return { netns, listen: address, address, port: 22, serviceAddress: address };
    }
    return { netns: undefined, listen: '127.0.0.1', address: '127.0.0.1', port: await freePort(), serviceAddress: '127.0.0.1' };
  }

  private usedAddresses(): Set<string> {
    return new Set(this.hosts().filter((h) => h.netns).map((h) => h.address));
  }

  private sshdConfig(dir: string, listen: string, port: number): string {
    return [
      `ListenAddress ${listen}:${port}`,
      `HostKey ${dir}/ssh_host_ed25519_key`,
      'PidFile /run/sshd.pid',
      'UsePAM no',
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'StrictModes no',
      'AuthorizedKeysFile none',
      `AuthorizedKeysCommand ${this.dir}/authorized-keys.sh`,
      'AuthorizedKeysCommandUser nobody',
      'AllowTcpForwarding yes',
      'MaxStartups 200',
      'MaxSessions 100',
      'LogLevel ERROR',
      '',
    ].join('\n');
  }
}

async function startHostProcess(dir: string, netns: string | undefined): Promise<number> {
  const log = fs.openSync(path.join(dir, 'host.log'), 'a');
  // unshare and the mounts need CAP_SYS_ADMIN; a read-only store's host drops it after them (host-init.sh).
  const init = ['unshare', '--mount', '--propagation', 'private', '--', 'sh', path.join(SOURCE_DIR, 'host-init.sh'), dir];
  const argv = netns ? ['ip', 'netns', 'exec', netns, ...init] : init;
  const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', log, log] });
  child.unref();
  fs.closeSync(log);
  const ready = path.join(dir, 'ready');
  for (let i = 0; i < 200; i++) {
    if (fs.existsSync(ready)) return namespaceHolderPid(child.pid!);
    if (child.exitCode !== null) break;
    await sleep(25);
  }
  throw new Error(`test host in ${dir} did not start: ${fs.readFileSync(path.join(dir, 'host.log'), 'utf8')}`);
}

/** `ip netns exec` may fork; the namespace holder is the `sleep infinity` the init script became. */
function namespaceHolderPid(pid: number): number {
  const children = (p: number): number[] => {
    try {
      return fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  let current = pid;
  for (let depth = 0; depth < 5; depth++) {
    const comm = fs.readFileSync(`/proc/${current}/comm`, 'utf8').trim();
    if (comm === 'sleep') return current;
    const next = children(current).find((c) => fs.readFileSync(`/proc/${c}/comm`, 'utf8').trim() !== 'sshd');
    if (next === undefined) break;
    current = next;
  }
  return current;
}

function killNamespace(holderPid: number): void {
  let ns: string;
  try {
    ns = fs.readlinkSync(`/proc/${holderPid}/ns/mnt`);
  } catch {
    return;
  }
  const own = fs.readlinkSync('/proc/self/ns/mnt');
  if (ns === own) return;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/mnt`) === ns) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // The process ended while we looked.
    }
  }
}

async function createNetns(netns: string, used: Set<string>): Promise<string> {
  await ensureBridge();
  // Other worlds on this machine share the bridge: their hosts' addresses are taken too.
  const everywhere = await execa('ip', ['-all', 'netns', 'exec', 'ip', '-o', '-4', 'addr', 'show'], { reject: false });
  for (const match of everywhere.stdout.matchAll(/inet (198\.18\.\d+\.\d+)\//g)) used.add(match[1]);
  let index = 2;
  while (used.has(`${NETNS_PREFIX}${Math.floor(index / 250)}.${(index % 250) + 2}`)) index++;
  const address = `${NETNS_PREFIX}${Math.floor(index / 250)}.${(index % 250) + 2}`;
  const outside = `nxv${index}`;
  const inside = `nxp${index}`;
  const ip = (...args: string[]) => execa('ip', args);
  await execa('ip', ['netns', 'del', netns], { reject: false });
  await execa('ip', ['link', 'del', outside], { reject: false });
  await ip('netns', 'add', netns);
  await ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
  await ip('link', 'set', outside, 'master', BRIDGE, 'up');
  await ip('link', 'set', inside, 'netns', netns);
  await ip('-n', netns, 'addr', 'add', `${address}/15`, 'dev', inside);
  await ip('-n', netns, 'link', 'set', inside, 'up');
  await ip('-n', netns, 'link', 'set', 'lo', 'up');
  await ip('-n', netns, 'route', 'add', 'default', 'via', BRIDGE_ADDRESS);
  return address;
}

async function ensureBridge(): Promise<void> {
  const exists = await execa('ip', ['link', 'show', BRIDGE], { reject: false });
  if (exists.exitCode === 0) return;
  await execa('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await execa('ip', ['addr', 'add', `${BRIDGE_ADDRESS}/15`, 'dev', BRIDGE]);
  await execa('ip', ['link', 'set', BRIDGE, 'up']);
}

/** A TCP port that is free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Waits until the host's sshd listens. Netns hosts sit on the world's bridge, so the machine
 * reaches them directly; a host inside another's netns listens on that namespace's loopback,
 * so its socket table is asked from inside.
 */
async function waitForSshd(record: HostRecord): Promise<void> {
  if (!record.options.insideNetnsOf) return waitForPort(record.address, record.port);
  for (let i = 0; i < 200; i++) {
    const listening = await execa('nsenter', [`--net=/run/netns/${record.netns}`, 'ss', '-Hltn', `sport = :${record.port}`], { reject: false });
    if (listening.exitCode === 0 && listening.stdout.trim() !== '') return;
    await sleep(25);
  }
  throw new Error(`sshd on ${record.address}:${record.port} in the netns ${record.netns} did not start listening`);
}

async function waitForPort(address: string, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await canConnect(address, port)) return;
    await sleep(25);
  }
  throw new Error(`sshd on ${address}:${port} did not start listening`);
}

function canConnect(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, address);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
