/**
 * The scale benchmark (bench/scale.ts) in smoke mode: N = 2 netns hosts, a tiny closure, no
 * tc caps, a small delay. Everything real (hosts, relays, nix-copy-closure, terraform and the
 * bundled provider); this only checks that the suite still runs and prints a full table.
 */
import execa from 'execa';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../..');
const SCENARIOS = ['first deploy', 'changed deploy', 'no-change redeploy', 'no-change plan'];

describe('bench:scale --smoke', () => {
  let table: string[][];

  beforeAll(async () => {
    const result = await execa('npx', ['tsx', 'bench/scale.ts', '--smoke'], { cwd: ROOT, reject: false, timeout: 240_000 });
    if (result.exitCode !== 0) throw new Error(`bench/scale.ts --smoke exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
    table = result.stdout
      .split('\n')
      .filter((line) => line.startsWith('| '))
      .map((line) => line.slice(1, -1).split('|').map((cell) => cell.trim()));
  }, 300_000);

  it('prints the header of the table', () => {
    expect(table[0]).toEqual(['N', 'scenario', 'run', 'wall s', 'MiB sent', 'conns', 'peak RSS MiB', 'limit s', '÷ limit', '÷ (a)', '÷ (b)']);
  });

  it.each(SCENARIOS)('has numeric figures for ours in "%s"', (scenario) => {
    const rows = table.filter((r) => r[0] === '2' && r[1] === scenario && r[2].startsWith('ours'));
    expect(rows).toHaveLength(1);
    // wall s, MiB sent, conns, peak RSS, limit, ÷ limit
    for (const cell of rows[0].slice(3, 9)) expect(cell).toMatch(/^\d+(\.\d+)?$/);
    expect(Number(rows[0][3])).toBeGreaterThan(0);
    expect(Number(rows[0][5])).toBeGreaterThan(0);
    expect(Number(rows[0][6])).toBeGreaterThan(0);
  });

  it.each(SCENARIOS.slice(0, 3))('has numeric figures for both baselines in "%s", and ratios for ours', (scenario) => {
    for (const label of ['(a)', '(b)']) {
      const rows = table.filter((r) => r[0] === '2' && r[1] === scenario && r[2] === label);
      expect(rows).toHaveLength(1);
      for (const cell of rows[0].slice(3, 11)) expect(cell).toMatch(/^\d+(\.\d+)?$/);
    }
    const ours = table.find((r) => r[0] === '2' && r[1] === scenario && r[2].startsWith('ours'))!;
    for (const cell of ours.slice(9, 11)) expect(cell).toMatch(/^\d+(\.\d+)?$/);
  });

  it('sends closure data on a first deploy and none on a no-change redeploy', () => {
    const sent = (scenario: string) => Number(table.find((r) => r[1] === scenario && r[2].startsWith('ours'))![4]);
    expect(sent('first deploy')).toBeGreaterThan(0.5);
    expect(sent('no-change redeploy')).toBeLessThan(0.1);
  });
});
