import execa from 'execa';
import * as fs from 'fs';
import * as path from 'path';
import { DeployError, evaluate, Json } from '../../lib/engine';
import { Fixture, tempDir } from '../support/world';

/** Commits everything in the fixture's work tree. */
async function commitAll(fixture: Fixture, message = 'change'): Promise<void> {
  await execa('git', ['add', '-A'], { cwd: fixture.dir });
  await execa('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '-qm', message, '--allow-empty'], { cwd: fixture.dir });
}

describe('evaluating flakes with a real Nix, and caching the results by their real inputs', () => {
  let fixture: Fixture;
  let dir: string;
  let cacheDir: string;

  beforeAll(async () => {
    fixture = await Fixture.create({ version: `eval-${Date.now().toString(36)}` });
    dir = tempDir('eval-cache');
    cacheDir = path.join(dir, 'cache');
  });
  afterAll(() => {
    fixture?.remove();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('evaluates without building, and answers the same question again from the cache', async () => {
    const system = { flake: fixture.flake('web'), specialArgs: { peer: '10.0.0.2' } };
    const first = await evaluate(system, cacheDir);
    expect(first.cached).toBe(false);
    expect(first.drvPath).toMatch(/^\/nix\/store\/[0-9a-z]{32}-nixos-system-web-eval-[^/]+\.drv$/);
    expect(first.outPath).toMatch(/^\/nix\/store\/[0-9a-z]{32}-nixos-system-web-eval-[^/]+$/);
    expect((await execa('nix-store', ['--check-validity', first.outPath], { reject: false })).exitCode).not.toBe(0);
    expect(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.json'))).toHaveLength(1);

    const second = await evaluate(system, cacheDir);
    expect(second).toEqual({ ...first, cached: true });
    // Another configuration of the same flake is another question.
    expect((await evaluate({ flake: fixture.flake('db'), specialArgs: { peer: '10.0.0.2' } }, cacheDir)).cached).toBe(false);
  });

  it('a tracked file edited and committed is a miss with a new out path', async () => {
    const system = { flake: fixture.flake('good') };
    const before = await evaluate(system, cacheDir);
    expect((await evaluate(system, cacheDir)).cached).toBe(true);

    await fixture.update({ version: `${fixture.settings().version}-committed` });
    const after = await evaluate(system, cacheDir);
    expect(after.cached).toBe(false);
    expect(after.outPath).not.toBe(before.outPath);
    expect((await evaluate(system, cacheDir)).cached).toBe(true);
  });

  it('a tracked file edited only in the work tree is a miss too (Nix reads the dirty tree); putting it back is a hit', async () => {
    const system = { flake: fixture.flake('good') };
    const clean = await evaluate(system, cacheDir);
    const file = path.join(fixture.dir, 'settings.json');
    const original = fs.readFileSync(file, 'utf8');

    fs.writeFileSync(file, JSON.stringify({ ...fixture.settings(), version: `${fixture.settings().version}-dirty` }, null, 2));
    const dirty = await evaluate(system, cacheDir);
    expect(dirty.cached).toBe(false);
    expect(dirty.outPath).not.toBe(clean.outPath);
    expect(dirty.outPath).toMatch(/-dirty$/);
    expect((await evaluate(system, cacheDir)).cached).toBe(true);

    fs.writeFileSync(file, original);
    expect(await evaluate(system, cacheDir)).toEqual({ ...clean, cached: true });
  });

  it('files that git ignores, or does not track, change nothing: a hit', async () => {
    const system = { flake: fixture.flake('good') };
    fs.writeFileSync(path.join(fixture.dir, '.gitignore'), 'ignored.txt\n*.log\n');
    await commitAll(fixture, 'ignore');
    const before = await evaluate(system, cacheDir);
    expect(before.cached).toBe(false);

    fs.writeFileSync(path.join(fixture.dir, 'ignored.txt'), 'nothing Nix reads\n');
    fs.writeFileSync(path.join(fixture.dir, 'deploy.log'), 'log\n');
    expect(await evaluate(system, cacheDir)).toEqual({ ...before, cached: true });

    // Untracked (not ignored) files are invisible to a git flake as well.
    fs.writeFileSync(path.join(fixture.dir, 'scratch.nix'), '{ }\n');
    expect(await evaluate(system, cacheDir)).toEqual({ ...before, cached: true });

    // Once tracked, it is an input.
    await commitAll(fixture, 'track scratch');
    expect((await evaluate(system, cacheDir)).cached).toBe(false);
  });

  it('other special args miss with another out path; the same args with keys in another order hit', async () => {
    const flake = fixture.flake('web');
    const a = await evaluate({ flake, specialArgs: { region: 'eu', replicas: 2, tags: { tier: 'web', team: 'ops' } } }, cacheDir);
    expect(a.cached).toBe(false);

    const b = await evaluate({ flake, specialArgs: { region: 'us', replicas: 2, tags: { tier: 'web', team: 'ops' } } }, cacheDir);
    expect(b.cached).toBe(false);
    expect(b.outPath).not.toBe(a.outPath);

    const reordered = await evaluate({ flake, specialArgs: { tags: { team: 'ops', tier: 'web' }, replicas: 2, region: 'eu' } }, cacheDir);
    expect(reordered).toEqual({ ...a, cached: true });

    // No args and empty args are different evaluations (extendModules or not), each cached.
    const none = await evaluate({ flake }, cacheDir);
    const empty = await evaluate({ flake, specialArgs: {} }, cacheDir);
    expect(none.outPath).not.toBe(a.outPath);
    expect(empty.outPath).not.toBe(a.outPath);
    expect((await evaluate({ flake, specialArgs: {} }, cacheDir)).cached).toBe(true);
  });

  it('outside a git work tree every file of the folder is an input', async () => {
    const plain = path.join(dir, 'plain-flake');
    fs.mkdirSync(plain);
    for (const f of fs.readdirSync(fixture.dir)) {
      if (fs.statSync(path.join(fixture.dir, f)).isFile()) fs.copyFileSync(path.join(fixture.dir, f), path.join(plain, f));
    }
    const system = { flake: `${plain}#good` };
    const first = await evaluate(system, cacheDir);
    expect(first.cached).toBe(false);
    expect((await evaluate(system, cacheDir)).cached).toBe(true);
    fs.writeFileSync(path.join(plain, 'notes.txt'), 'any new file is part of a path flake\n');
    expect((await evaluate(system, cacheDir)).cached).toBe(false);
  });

  it('a collected derivation is no hit: the flake is evaluated again and the derivation comes back', async () => {
    const system = { flake: fixture.flake('db'), specialArgs: { collected: true } };
    const first = await evaluate(system, cacheDir);
    // The cache file points at a derivation the store no longer has.
    const missing = first.drvPath!.replace(/\/[0-9a-z]{32}-/, '/00000000000000000000000000000000-');
    for (const f of fs.readdirSync(cacheDir).filter((name) => name.endsWith('.json'))) {
      const file = path.join(cacheDir, f);
      const entry = JSON.parse(fs.readFileSync(file, 'utf8')) as { drvPath: string };
      if (entry.drvPath === first.drvPath) fs.writeFileSync(file, JSON.stringify({ ...entry, drvPath: missing }));
    }
    const again = await evaluate(system, cacheDir);
    expect(again).toEqual({ ...first, cached: false });
    expect((await evaluate(system, cacheDir)).cached).toBe(true);
  });

  it('a prebuilt store path is taken as it is; a malformed one is a readable DeployError', async () => {
    const storePath = '/nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-nixos-system-web-24.05';
    expect(await evaluate({ storePath }, cacheDir, 'web-1')).toEqual({ outPath: storePath, cached: false });

    for (const bad of ['nixos-system-web', '/nix/store/abc-nixos-system-web', `${storePath}/bin/switch-to-configuration`, '/tmp/result', `${storePath}\n`, `${storePath} copy`, storePath.replace('0c6k', 'eeee')]) {
      const error = await evaluate({ storePath: bad }, cacheDir, 'web-1').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DeployError);
      const deployError = error as DeployError;
      expect(deployError.step).toBe('evaluate');
      expect(deployError.host).toBe('web-1');
      expect(deployError.problem).toContain('is not a store path');
      expect(deployError.fix).toMatch(/output path of a built system/);
      expect(deployError.message).toMatch(/^web-1: evaluate failed: ".*" is not a store path\. Give the output path/);
    }
  });

  it('special args with awkward strings reach the built system unchanged', async () => {
    const specialArgs: { [key: string]: Json } = {
      quotes: `say "hi" and 'bye' and ''two''`,
      backslashes: 'C:\\Windows\\ and \\n is not a newline \\',
      interpolation: '${x} ${builtins.currentTime} $y $${z} \\${w}',
      newlines: 'line 1\nline 2\r\n\ttabbed\n',
      unicode: 'héllo wörld – 日本語 🚀 \u00a0 \u2028',
      control: 'bell \u0007 escape \u001b end',
      empty: '',
      'key with "quotes" and ${x}': 'value',
      nested: { list: ['a"b', 'c\\d', '${e}', null, true, false, 0, -7, 1.5, 123456789], deeper: { s: "it's" } },
    };
    const evaluation = await evaluate({ flake: fixture.flake('web'), specialArgs }, cacheDir);
    const built = await execa('nix-store', ['--realise', evaluation.drvPath!]);
    const outPath = built.stdout.trim();
    expect(outPath).toBe(evaluation.outPath);
    const written = fs.readFileSync(path.join(outPath, 'etc', 'terraform.json'), 'utf8');
    expect(JSON.parse(written)).toEqual(specialArgs);
    // The cache keeps the args apart from any others: the same args hit.
    expect((await evaluate({ flake: fixture.flake('web'), specialArgs }, cacheDir)).cached).toBe(true);
  });
});
