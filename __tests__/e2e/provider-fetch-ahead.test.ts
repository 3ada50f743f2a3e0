/**
 * Fetching ahead through the real terraform: with a binary cache, every host that the plan
 * gives a new closure starts fetching it at the first apply of that closure, even when
 * Terraform applies one resource at a time (-parallelism=1).
 */
import execa from 'execa';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { evaluate } from '../../lib/engine';
import { installProvider, terraformEnv } from '../../bin/provider-install';
import { TestHost, World } from '../../world/world';
import { currentSystem, Fixture, tempDir } from '../support/world';
import { runTerraform } from '../support/terraform';

const WORLD_DIR = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/test-fetch-ahead`;
/** Each activation of the slow-activation variant sleeps this long. */
const ACTIVATION_SECONDS = 4;

describe('nixos_system fetching ahead from a binary cache, with the real terraform', () => {
  let world: World;
  let hosts: TestHost[];
  let fixture: Fixture;
  let work: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    world = await World.open(WORLD_DIR);
    await world.removeAll();
    hosts = await Promise.all(['a', 'b', 'c'].map((name) => world.createHost({ name })));
    fixture = await Fixture.create({ version: `ahead-${process.pid}-${Date.now()}`, slowServiceSeconds: ACTIVATION_SECONDS });
    work = tempDir('fetch-ahead');
    const installed = await installProvider({ dir: path.join(work, 'providers') });
    env = terraformEnv(installed);
  });
  afterAll(async () => {
    if (world) await world.removeAll();
    fixture?.remove();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /** When the host registered `storePath`, and when it made system generation 1 (Unix seconds). */
  async function times(host: TestHost, storePath: string): Promise<{ registered: number; generation: number }> {
    const info = JSON.parse((await world.exec(host.name, `nix path-info --json ${storePath}`)).stdout) as { registrationTime: number }[];
    const generation = Number((await world.exec(host.name, 'stat -c %Y /nix/var/nix/profiles/system-1-link')).stdout.trim());
    return { registered: info[0].registrationTime, generation };
  }

  test('with -parallelism=1, the last host has its closure before its own apply begins', async () => {
    const dir = path.join(work, 'stack');
    const evalDir = path.join(work, 'eval');
    fs.mkdirSync(dir, { recursive: true });
    const keyDir = path.join(work, 'keys');
    fs.mkdirSync(keyDir);
    await execa('nix-store', ['--generate-binary-cache-key', 'fetch-ahead-test-1', path.join(keyDir, 'sk'), path.join(keyDir, 'pk')]);
    const cacheDir = path.join(work, 'cache');
    const q = JSON.stringify;
    const text = [
      `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}`,
      `provider "nixos" {\n  private_key_file = ${q(world.clientKeyFile)}\n  known_hosts_file = ${q(path.join(work, 'known_hosts'))}\n  eval_cache_dir = ${q(evalDir)}\n}`,
      ...hosts.map(
        (h, i) =>
          `resource "nixos_system" "h${i}" {\n  flake = ${q(fixture.flake('slow-activation'))}\n  host = ${q(h.address)}\n  port = ${h.port}\n  host_key = ${q(world.hostKey(h.name))}\n` +
          `  binary_cache {\n    uri = ${q(`file://${cacheDir}`)}\n    public_key = ${q(fs.readFileSync(path.join(keyDir, 'pk'), 'utf8').trim())}\n    secret_key_file = ${q(path.join(keyDir, 'sk'))}\n  }\n}`,
      ),
    ].join('\n\n');
    fs.writeFileSync(path.join(dir, 'main.tf'), text + '\n');
    const terraform = (args: string[]) => runTerraform([...args, '-no-color', '-input=false'], { cwd: dir, env });
    expect(terraform(['init']).status).toBe(0);

    const applied = terraform(['apply', '-auto-approve', '-parallelism=1']);
    expect(applied.out).toContain('Apply complete! Resources: 3 added');
    const outPath = (await evaluate({ flake: fixture.flake('slow-activation') }, path.join(work, 'eval-test'))).outPath;
    for (const host of hosts) expect(await currentSystem(world, host)).toBe(outPath);

    // One apply at a time, each activating for at least ACTIVATION_SECONDS. The last host's
    // apply cannot begin before the middle one's activation is over; without fetching
    // ahead, its closure would only arrive in its own apply.
    const [first, middle, last] = (await Promise.all(hosts.map((h) => times(h, outPath)))).sort((a, b) => a.generation - b.generation);
    expect(middle.generation - first.generation).toBeGreaterThanOrEqual(ACTIVATION_SECONDS - 1);
    expect(last.generation - middle.generation).toBeGreaterThanOrEqual(ACTIVATION_SECONDS - 1);
    expect(last.registered).toBeLessThan(middle.generation + ACTIVATION_SECONDS);
    // Every apply ended, so no host's note is left for a later run.
    const notes = path.join(evalDir, 'planned-fetches');
    const left = fs.existsSync(notes) ? fs.readdirSync(notes).flatMap((d) => fs.readdirSync(path.join(notes, d))) : [];
    expect(left).toEqual([]);
  });
});
