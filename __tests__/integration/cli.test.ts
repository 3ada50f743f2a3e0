import execa from 'execa';
import * as fs from 'fs';
import * as path from 'path';
import { TestHost, World } from '../../world/world';
import { createHosts, currentSystem, Fixture, openWorld, tempDir, waitForService } from '../support/world';

const CLI = path.join(__dirname, '..', '..', 'bin', 'cdktf-nixos.js');

describe('the cdktf-nixos command', () => {
  let world: World;
  let hosts: TestHost[];
  let fixture: Fixture;
  let dir: string;
  const cli = (args: string[]) => execa('node', [CLI, ...args], { reject: false, env: { HOME: dir } });
  const hostArgs = (h: TestHost) => ['--host', h.address, '--port', String(h.port), '--identity', world.clientKeyFile, '--known-hosts', path.join(dir, 'known_hosts')];

  beforeAll(async () => {
    world = await openWorld();
    hosts = await createHosts(world, 'cli', ['a', 'b']);
    fixture = await Fixture.create({ version: 'cli-1' });
    dir = tempDir('cli');
  });
  afterAll(async () => {
    for (const h of hosts) await world.removeHost(h.name);
    fixture.remove();
  });

  it('deploys one host with special args and shows progress on stderr', async () => {
    const run = await cli(['deploy', ...hostArgs(hosts[0]), '--flake', fixture.flake('web'), '--arg', 'db={"host":"10.1.1.1"}', '--arg', 'name=plain', '--health-url', `http://127.0.0.1:${hosts[0].servicePort}/`]);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toMatch(/^127\.0\.0\.1:\d+: switch \/nix\/store\/\S+-nixos-system-web-cli-1 \(generation 1; 4 paths, [\d.]+ KiB sent\)$/m);
    expect(run.stderr).toMatch(/copy: 4\/4 paths/);
    expect(run.stderr).toMatch(/health: GET .* passed/);
    expect((await waitForService(hosts[0])).terraform).toEqual({ db: { host: '10.1.1.1' }, name: 'plain' });
  });

  it('reports status compared with the flake, and rolls back', async () => {
    const status = await cli(['status', ...hostArgs(hosts[0]), '--flake', fixture.flake('web'), '--arg', 'db={"host":"10.1.1.1"}', '--arg', 'name=plain']);
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toMatch(/asked for: +\S+ \(up to date\)/);
    expect(status.stdout).toMatch(/\* generation 1 /);

    await cli(['deploy', ...hostArgs(hosts[0]), '--flake', fixture.flake('db')]);
    const back = await cli(['rollback', ...hostArgs(hosts[0])]);
    expect(back.exitCode).toBe(0);
    expect(back.stdout).toMatch(/\* generation 1 /);
    expect(await currentSystem(world, hosts[0])).toMatch(/nixos-system-web-cli-1$/);
  });

  it('deploys many hosts from a targets file, each with its own outcome', async () => {
    const targets = path.join(dir, 'targets.json');
    const target = (h: TestHost) => ({ host: h.address, port: h.port, privateKeyFile: world.clientKeyFile, knownHostsFile: path.join(dir, 'known_hosts') });
    fs.writeFileSync(
      targets,
      JSON.stringify([
        { target: target(hosts[1]), system: { flake: fixture.flake('db') } },
        { target: { ...target(hosts[1]), port: 1 }, system: { flake: fixture.flake('db') } },
      ]),
    );
    const run = await cli(['deploy', '--targets', targets]);
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(new RegExp(`127\\.0\\.0\\.1:${hosts[1].port}: switch \\S+-nixos-system-db-cli-1 \\(generation 1`));
    expect(run.stdout).toMatch(/127\.0\.0\.1:1: FAILED: 127\.0\.0\.1:1: connect failed: nothing listens on root@127\.0\.0\.1:1 \(connection refused\)\./);
  });

  it('cancels on Ctrl-C before activation, leaving the host on the system it had', async () => {
    const before = await currentSystem(world, hosts[1]);
    await fixture.update({ version: 'cli-big', packages: [{ name: 'big', version: '1', sizeBytes: 48_000_000 }] });
    const run = execa('node', [CLI, 'deploy', ...hostArgs(hosts[1]), '--flake', fixture.flake('db')], { reject: false, env: { HOME: dir } });
    let interrupted = false;
    run.stderr!.on('data', (d: Buffer) => {
      if (!interrupted && /copy: \d+\/\d+ paths/.test(d.toString())) {
        interrupted = true;
        run.kill('SIGINT');
      }
    });
    const result = await run;
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/cancelling: hosts that are activating finish first/);
    expect(result.stdout).toMatch(/FAILED: .*cancelled: the deploy was cancelled before activation; the host is on the system it had\./);
    expect(await currentSystem(world, hosts[1])).toBe(before);
  });

  it('explains bad usage in one paragraph without a stack trace', async () => {
    const run = await cli(['deploy', '--host', 'x', '--flake', './no-hash']);
    expect(run.exitCode).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/has no configuration name\. Write it as PATH#NAME/);
    const both = await cli(['deploy', '--host', 'x']);
    expect(both.stderr).toMatch(/give exactly one of --flake and --store-path/);
    expect(both.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });
});
