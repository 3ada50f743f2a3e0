import execa from 'execa';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SshTarget } from '../../lib/engine';
import { HostOptions, TestHost, World } from '../../world/world';

/** The tests' own world, apart from the one the README's main job uses. */
export const TEST_WORLD_DIR = '/var/lib/cdktf-nixos-world/test';

const FIXTURE_SOURCE = path.join(__dirname, '..', '..', 'world', 'fixture-flake');

/** Fixture settings (see world/fixture-flake/settings.json). */
export interface FixtureSettings {
  version: string;
  packages: { name: string; version: string; sizeBytes: number }[];
  machines?: string[];
  slowServiceSeconds?: number;
  /** Packages of one machine only (by configuration name), replacing shared ones of the same name. */
  machinePackages?: { [machine: string]: { name: string; version: string; sizeBytes: number }[] };
}

/** A private copy of the fixture flake in its own git repository, which a test may edit. */
export class Fixture {
  private constructor(readonly dir: string) {}

  static async create(settings: Partial<FixtureSettings> = {}): Promise<Fixture> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-fixture-'));
    for (const file of fs.readdirSync(FIXTURE_SOURCE)) fs.copyFileSync(path.join(FIXTURE_SOURCE, file), path.join(dir, file));
    const fixture = new Fixture(dir);
    await execa('git', ['init', '-q'], { cwd: dir });
    await fixture.update(settings);
    return fixture;
  }

  /** `dir#name`. */
  flake(name = 'good'): string {
    return `${this.dir}#${name}`;
  }

  settings(): FixtureSettings {
    return JSON.parse(fs.readFileSync(path.join(this.dir, 'settings.json'), 'utf8'));
  }

  /** Changes settings and commits them (Nix sees only what git tracks). */
  async update(changes: Partial<FixtureSettings>): Promise<void> {
    fs.writeFileSync(path.join(this.dir, 'settings.json'), JSON.stringify({ ...this.settings(), ...changes }, null, 2));
    await execa('git', ['add', '-A'], { cwd: this.dir });
    await execa('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '-qm', 'fixture', '--allow-empty'], { cwd: this.dir });
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A temporary folder for one suite. */
export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cdktf-nixos-${prefix}-`));
}

/** Opens the test world. */
export function openWorld(): Promise<World> {
  return World.open(TEST_WORLD_DIR);
}

/** Creates hosts for one suite; names are prefixed so suites running at once never collide. */
export async function createHosts(world: World, suite: string, names: string[], options: Omit<HostOptions, 'name'> = {}): Promise<TestHost[]> {
  return Promise.all(names.map((n) => world.createHost({ ...options, name: `${suite}-${n}` })));
}

/** An SSH target for a test host, with the world's client key and a known-hosts file of the suite. */
export function targetFor(world: World, host: TestHost, knownHostsFile: string, extra: Partial<SshTarget> = {}): SshTarget {
  return { host: host.address, port: host.port, privateKeyFile: world.clientKeyFile, knownHostsFile, connectTimeoutSeconds: 10, ...extra };
}

/** What /run/current-system points to on the host, read without SSH. */
export async function currentSystem(world: World, host: TestHost): Promise<string> {
  return (await world.exec(host.name, 'readlink -f /run/current-system || true')).stdout.trim();
}

/** The host's profile generations as numbers, read without SSH. */
export async function generations(world: World, host: TestHost): Promise<number[]> {
  const out = (await world.exec(host.name, 'ls /nix/var/nix/profiles 2>/dev/null || true')).stdout;
  return [...out.matchAll(/^system-(\d+)-link$/gm)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

/** What the fixture service on the host answers, or undefined if it does not answer. */
export async function serviceAnswer(host: TestHost): Promise<{ system: string; version: string; terraform: unknown } | undefined> {
  try {
    const response = await fetch(`http://${host.serviceAddress}:${host.servicePort}/`, { signal: AbortSignal.timeout(2000) });
    return (await response.json()) as { system: string; version: string; terraform: unknown };
  } catch {
    return undefined;
  }
}

/** Polls until the service answers (activation starts it in the background). */
export async function waitForService(host: TestHost, seconds = 10): Promise<{ system: string; version: string; terraform: unknown }> {
  for (let i = 0; i < seconds * 10; i++) {
    const answer = await serviceAnswer(host);
    if (answer) return answer;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the service on ${host.name} did not answer within ${seconds} s`);
}
