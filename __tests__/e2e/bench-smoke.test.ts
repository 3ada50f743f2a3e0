/**
 * The scale benchmark (bench/scale.ts) in smoke mode: N = 2 netns hosts, a tiny closure, no
 * tc caps, a small delay. Everything real (hosts, relays, the binary cache host,
 * nix-copy-closure, terraform and the bundled provider); this checks that the suite still
 * runs, prints its three tables, and that the figures say what the design promises.
 */
import execa from 'execa';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../..');
const DEPLOYS = ['first deploy', 'changed deploy', 'no-change redeploy'];

describe('bench:scale --smoke', () => {
  let rows: string[][];
  const number = /^\d+(\.\d+)?$/;

  beforeAll(async () => {
    const result = await execa('npx', ['tsx', 'bench/scale.ts', '--smoke'], { cwd: ROOT, reject: false, timeout: 240_000 });
    if (result.exitCode !== 0) throw new Error(`bench/scale.ts --smoke exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
    rows = result.stdout
      .split('\n')
      .filter((line) => line.startsWith('| '))
      .map((line) => line.slice(1, -1).split('|').map((cell) => cell.trim()));
  }, 300_000);

  const deploy = (scenario: string, run: string) => rows.find((r) => r[0] === '2' && r[1] === scenario && r[2] === run);

  it('prints the header of each table', () => {
    expect(rows).toContainEqual(['N', 'scenario', 'run', 'wall s', 'MiB sent', 'SSH conns', 'peak RSS MiB', 'limit s', '÷ limit', '÷ (a)', '÷ (b)']);
    expect(rows).toContainEqual(['N', 'ours, 10 ms RTT s', 'SSH conns', 'provider peak RSS MiB', 'ours, no delay s', 'terraform_data s', 'ratio']);
    expect(rows).toContainEqual(['N', 'wall s', 'MiB sent', 'SSH conns', '÷ N=2']);
  });

  it.each(DEPLOYS)('has figures for ours and both baselines in "%s"', (scenario) => {
    for (const run of ['ours', '(a)', '(b)']) {
      const row = deploy(scenario, run);
      expect(row).toBeDefined();
      for (const cell of row!.slice(3, 11)) expect(cell).toMatch(number);
      expect(Number(row![3])).toBeGreaterThan(0);
    }
    // The provider process was found and measured.
    expect(Number(deploy(scenario, 'ours')![6])).toBeGreaterThan(20);
  });

  it('sends one copy of the closure for two hosts (through the cache), and none on a no-change redeploy', () => {
    const sent = (scenario: string, run: string) => Number(deploy(scenario, run)![4]);
    // The baselines send it to each host.
    expect(sent('first deploy', 'ours')).toBeLessThan(0.7 * sent('first deploy', '(a)'));
    expect(sent('no-change redeploy', 'ours')).toBeLessThan(0.01);
  });

  it('opens one SSH connection per host for a no-change redeploy and for a plan', () => {
    expect(deploy('no-change redeploy', 'ours')![5]).toBe('2');
    const plan = rows.find((r) => r[0] === '2' && r.length === 7 && r[1] !== 'ours, 10 ms RTT s')!;
    expect(plan[2]).toBe('2');
    for (const cell of plan.slice(1, 7)) expect(cell).toMatch(number);
  });

  it('measures the cost of a one-host change', () => {
    const row = rows.find((r) => r[0] === '2' && r.length === 5 && r[1] !== 'wall s')!;
    expect(row[4]).toBe('1.00');
    expect(Number(row[1])).toBeGreaterThan(0);
  });
});
