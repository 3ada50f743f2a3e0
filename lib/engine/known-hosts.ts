import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expandHome } from './paths';

/** The default file where first-seen host keys are recorded. */
export const DEFAULT_KNOWN_HOSTS = path.join(os.homedir(), '.config', 'cdktf-nixos', 'known_hosts');

/** An OpenSSH public key blob as `type base64`. */
export function formatHostKey(blob: Buffer): string {
  const typeLength = blob.readUInt32BE(0);
  const type = blob.subarray(4, 4 + typeLength).toString('ascii');
  return `${type} ${blob.toString('base64')}`;
}

/** The `type base64` part of a key line, whatever comment follows. */
export function normalizeHostKey(line: string): string {
  return line.trim().split(/\s+/).slice(0, 2).join(' ');
}

/** The host name as OpenSSH writes it in known_hosts. */
function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/**
 * Host keys in an OpenSSH known_hosts file: the first key seen for a host is recorded,
 * and later connections must present the same key.
 */
export class KnownHosts {
  readonly file: string;

  constructor(file: string = DEFAULT_KNOWN_HOSTS) {
    this.file = expandHome(file);
  }

  /** The recorded keys of host:port. */
  lookup(host: string, port: number): string[] {
    if (!fs.existsSync(this.file)) return [];
    const pattern = hostPattern(host, port);
    return fs
      .readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => line.trim().split(/\s+/))
      .filter(([hosts]) => hosts.split(',').includes(pattern))
      .map(([, type, key]) => `${type} ${key}`);
  }

  /** Records a key for host:port. */
  record(host: string, port: number, key: string): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    fs.appendFileSync(this.file, `${hostPattern(host, port)} ${key}\n`);
  }
}
