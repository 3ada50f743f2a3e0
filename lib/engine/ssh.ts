import * as fs from 'fs';
import { Client, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { Duplex } from 'stream';
import { canonicalJson } from './canonical-json';
import { DeployError } from './errors';
import { formatHostKey, KnownHosts, normalizeHostKey } from './known-hosts';
import { expandHome } from './paths';
import { shellQuote } from './shell';
import { SshEndpoint, SshTarget } from './types';

/** What a remote command gave back. */
export interface RemoteResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** Options of one remote command. */
export interface RunOptions {
  /** Sent to the command's standard input, then closed. */
  readonly stdin?: string | Buffer;
  /** Run as root (through sudo for other users). @default true */
  readonly privileged?: boolean;
  /** @default no limit */
  readonly timeoutSeconds?: number;
}

/** `user@host:port` for messages. */
export function describeEndpoint(endpoint: SshEndpoint): string {
  return `${endpoint.user ?? 'root'}@${endpoint.host}:${endpoint.port ?? 22}`;
}

/**
 * A target's whole identity (address, user, credentials, pins, jump host): work done for
 * one target is only reused for an identical one. Undefined fields do not count, so a
 * target read back from JSON is the same.
 */
export function targetIdentity(target: SshTarget): string {
  const { connectTimeoutSeconds, ...identity } = target;
  void connectTimeoutSeconds;
  return canonicalJson(JSON.parse(JSON.stringify(identity)));
}

/** The name of a host in messages: its address, with the port unless it is 22. */
export function targetLabel(endpoint: SshEndpoint): string {
  return endpoint.port && endpoint.port !== 22 ? `${endpoint.host}:${endpoint.port}` : endpoint.host;
}

/**
 * One SSH connection to a host, reused for every command of a deploy. Host keys are
 * pinned: a key that differs from the given or recorded one is refused.
 */
export class SshSession {
  private closedReason?: string;

  private constructor(
    readonly target: SshTarget,
    private readonly client: Client,
    private readonly bastion: Client | undefined,
    /** The key the host presented, `type base64`. */
    readonly hostKey: string,
  ) {
    client.on('close', () => (this.closedReason ??= 'the connection was closed'));
    client.on('error', (e) => (this.closedReason ??= e.message));
  }

  /** Opens a connection to the target, through its bastion if it has one. */
  static async connect(target: SshTarget): Promise<SshSession> {
    const knownHosts = new KnownHosts(target.knownHostsFile);
    const timeout = (target.connectTimeoutSeconds ?? 20) * 1000;
    let bastion: Client | undefined;
    let sock: Duplex | undefined;
    if (target.bastion) bastion = (await dial(target.bastion, knownHosts, timeout, 'jump host')).client;
    try {
      if (bastion) sock = await forward(bastion, target);
      const { client, hostKey } = await dial(target, knownHosts, timeout, 'host', sock);
      return new SshSession(target, client, bastion, hostKey);
    } catch (error) {
      bastion?.end();
      throw error;
    }
  }

  /** Why the connection is gone, if it is. */
  get lost(): string | undefined {
    return this.closedReason;
  }

  /** Runs a POSIX shell script on the host and collects its output. */
  async run(script: string, options: RunOptions = {}): Promise<RemoteResult> {
    const channel = await this.open(script, options.privileged ?? true);
    return new Promise((resolve, reject) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      const timer = options.timeoutSeconds
        ? setTimeout(() => {
            channel.close();
            reject(new Error(`the command did not finish within ${options.timeoutSeconds} s`));
          }, options.timeoutSeconds * 1000)
        : undefined;
      channel.on('data', (d: Buffer) => stdout.push(d));
      channel.stderr.on('data', (d: Buffer) => stderr.push(d));
      channel.on('close', (code: number | null, signal?: string) => {
        if (timer) clearTimeout(timer);
        if (code === null || code === undefined) {
          reject(new Error(signal ? `the remote command was killed by ${signal}` : `the connection was lost (${this.closedReason ?? 'channel closed'})`));
          return;
        }
        resolve({ stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString(), code });
      });
      channel.end(options.stdin);
    });
  }

  /** Runs a script and returns its standard output; a non-zero exit throws with its stderr. */
  async check(script: string, options: RunOptions = {}): Promise<string> {
    const result = await this.run(script, options);
    if (result.code !== 0) {
      throw new Error((result.stderr.trim() || result.stdout.trim() || `exit code ${result.code}`).replace(/\s*\n\s*/g, ' | '));
    }
    return result.stdout;
  }

  /** Starts a script and hands over its channel, for streaming data in or out. */
  open(script: string, privileged = true): Promise<ClientChannel> {
    const user = this.target.user ?? 'root';
    const command = privileged && user !== 'root' ? `sudo -n sh -c ${shellQuote(script)}` : `sh -c ${shellQuote(script)}`;
    return new Promise((resolve, reject) => {
      if (this.closedReason) {
        reject(new Error(`the connection is gone (${this.closedReason})`));
        return;
      }
      this.client.exec(command, (error, channel) => (error ? reject(error) : resolve(channel)));
    });
  }

  /** Closes the connection (and the jump host's). */
  close(): void {
    this.closedReason ??= 'closed by the deployer';
    this.client.end();
    this.bastion?.end();
  }
}

function forward(bastion: Client, target: SshTarget): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    bastion.forwardOut('127.0.0.1', 0, target.host, target.port ?? 22, (error, stream) => {
      if (error) {
        reject(
          new DeployError(
            'connect',
            target.host,
            `the jump host ${describeEndpoint(target.bastion!)} could not reach ${target.host}:${target.port ?? 22} (${error.message}).`,
            'Check the address as the jump host sees it, and that the jump host allows TCP forwarding.',
          ),
        );
      } else resolve(stream);
    });
  });
}

function dial(
  endpoint: SshEndpoint,
  knownHosts: KnownHosts,
  timeoutMs: number,
  role: 'host' | 'jump host',
  sock?: Duplex,
): Promise<{ client: Client; hostKey: string }> {
  const port = endpoint.port ?? 22;
  const where = describeEndpoint(endpoint);
  const label = targetLabel(endpoint);
  const pinned = endpoint.hostKey ? [normalizeHostKey(endpoint.hostKey)] : knownHosts.lookup(endpoint.host, port);
  let seen = '';
  let mismatch = false;

  const config: ConnectConfig = {
    host: endpoint.host,
    port,
    sock,
    username: endpoint.user ?? 'root',
    readyTimeout: timeoutMs,
    keepaliveInterval: 5000,
    keepaliveCountMax: 4,
    algorithms: pinned.length ? { serverHostKey: preferredHostKeyAlgorithms(pinned[0]) } : undefined,
    hostVerifier: (blob: Buffer) => {
      seen = formatHostKey(blob);
      if (pinned.length === 0) {
        if (!endpoint.hostKey) knownHosts.record(endpoint.host, port, seen);
        return true;
      }
      mismatch = !pinned.includes(seen);
      return !mismatch;
    },
  };
  const credentials = authentication(endpoint, role);
  Object.assign(config, credentials);

  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('ready', () => resolve({ client, hostKey: seen }));
    let failed = false;
    // Stays attached: a client that failed (a handshake time-out, say) may still report the socket's end.
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      if (failed) return;
      failed = true;
      client.end();
      if (mismatch) {
        reject(
          new DeployError(
            'connect',
            label,
            `the ${role} ${where} presented the host key "${seen}", but "${pinned[0]}" is pinned${endpoint.hostKey ? '' : ` in ${knownHosts.file}`}. The connection was refused: this may be a reinstalled machine, or someone in between.`,
            endpoint.hostKey
              ? 'If the machine was really reinstalled, set hostKey to the new key.'
              : `If the machine was really reinstalled, delete its line from ${knownHosts.file}.`,
          ),
        );
        return;
      }
      reject(connectError(error, where, role, endpoint, timeoutMs));
    });
    client.connect(config);
    // Small request/answer exchanges: without this, Nagle's algorithm meets the host's
    // delayed ACKs and each exchange can stall for 40 ms.
    client.setNoDelay(true);
  });
}

/** Asks for the pinned key's type first, so that a host with several keys shows that one. */
function preferredHostKeyAlgorithms(pinnedKey: string): ServerHostKeyAlgorithm[] {
  const type = pinnedKey.split(' ')[0];
  const first = (type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]) as ServerHostKeyAlgorithm[];
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}

const HOST_KEY_ALGORITHMS: ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

function authentication(endpoint: SshEndpoint, role: string): Partial<ConnectConfig> {
  const host = targetLabel(endpoint);
  if (endpoint.privateKeyFile) {
    let privateKey: Buffer;
    try {
      privateKey = fs.readFileSync(expandHome(endpoint.privateKeyFile));
    } catch (error) {
      throw new DeployError(
        'connect',
        host,
        `the private key file ${endpoint.privateKeyFile} for the ${role} cannot be read (${(error as Error).message}).`,
        'Check the path given as privateKeyFile.',
      );
    }
    // Straight to the key: ssh2 would first try "none", one more round trip per login.
    return { privateKey, agent: endpoint.agent, authHandler: endpoint.agent ? ['publickey', 'agent'] : ['publickey'] };
  }
  const agent = endpoint.agent ?? process.env.SSH_AUTH_SOCK;
  if (!agent) {
    throw new DeployError(
      'connect',
      host,
      `no credentials for the ${role} ${describeEndpoint(endpoint)}: no privateKeyFile is given and no SSH agent is running.`,
      'Set privateKeyFile, or start ssh-agent and set SSH_AUTH_SOCK (or agent).',
    );
  }
  return { agent, authHandler: ['agent'] };
}

function connectError(error: Error & { level?: string; code?: string }, where: string, role: string, endpoint: SshEndpoint, timeoutMs: number): DeployError {
  const host = targetLabel(endpoint);
  if (error.level === 'client-authentication') {
    return new DeployError(
      'connect',
      host,
      `the ${role} ${where} refused the login (${endpoint.privateKeyFile ? `key ${endpoint.privateKeyFile}` : 'keys from the SSH agent'}).`,
      `Check that the key is in ${endpoint.user ?? 'root'}'s authorized keys on that machine, and the user name.`,
    );
  }
  if (error.level === 'client-timeout' || error.code === 'ETIMEDOUT') {
    return new DeployError(
      'connect',
      host,
      `the ${role} ${where} did not answer within ${timeoutMs / 1000} s.`,
      'Check that the address and port are right, that sshd runs there, and that no firewall drops the connection.',
    );
  }
  if (error.code === 'ECONNREFUSED') {
    return new DeployError('connect', host, `nothing listens on ${where} (connection refused).`, 'Check the port and that sshd runs on the machine.');
  }
  if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') {
    return new DeployError('connect', host, `the ${role} name "${host}" cannot be resolved.`, 'Check the host name, or give an IP address.');
  }
  if (/encrypted/i.test(error.message)) {
    return new DeployError(
      'connect',
      host,
      `the key file ${endpoint.privateKeyFile} is protected by a passphrase.`,
      'Add it to an SSH agent with ssh-add and leave privateKeyFile unset.',
    );
  }
  return new DeployError('connect', host, `connecting to the ${role} ${where} failed: ${error.message}.`);
}
