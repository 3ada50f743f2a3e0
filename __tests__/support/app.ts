import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateCacheKey } from '../../bin/cache-key';
import { TestHost, World } from '../../world/world';

export const ROOT = path.join(__dirname, '..', '..');
/** The local binary cache's key name (main.ts's LOCAL_CACHE_KEY). */
const LOCAL_CACHE_KEY = 'cdktf-nixos-local-1';

/**
 * A temp copy of the example app: main.ts, cdktf.json, tsconfig.json, package.json copied;
 * lib, providers, bin, scripts, node_modules and the world's scripts symlinked; the fixture
 * flake copied into its own git repository so that a test can change it. Its state and
 * cdktf.out stay apart from the checkout's.
 */
export function copyApp(dir: string): string {
  const app = path.join(dir, 'app');
  fs.mkdirSync(path.join(app, 'world'), { recursive: true });
  for (const f of ['main.ts', 'cdktf.json', 'tsconfig.json', 'package.json']) fs.copyFileSync(path.join(ROOT, f), path.join(app, f));
  for (const d of ['node_modules', 'lib', 'providers', 'bin', 'scripts']) fs.symlinkSync(path.join(ROOT, d), path.join(app, d));
  for (const f of fs.readdirSync(path.join(ROOT, 'world'))) {
    if (f !== 'fixture-flake') fs.symlinkSync(path.join(ROOT, 'world', f), path.join(app, 'world', f));
  }
  const flake = path.join(app, 'world', 'fixture-flake');
  fs.mkdirSync(flake);
  for (const f of fs.readdirSync(path.join(ROOT, 'world', 'fixture-flake'))) fs.copyFileSync(path.join(ROOT, 'world', 'fixture-flake', f), path.join(flake, f));
  flakeGit(app, ['init', '-q']);
  flakeGit(app, ['add', '-A']);
  flakeGit(app, ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '-qm', 'fixture']);
  return app;
}

/** Runs git in the app copy's fixture flake. */
export function flakeGit(app: string, args: string[]): void {
  const r = spawnSync('git', args, { cwd: path.join(app, 'world', 'fixture-flake'), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
}

/** A world for stack `local`: hosts host1 (web) and host2 (db), fresh, and the cache key. */
export async function localStackWorld(dir: string): Promise<{ world: World; web: TestHost; db: TestHost }> {
  const world = await World.open(dir);
  await world.removeAll();
  const [web, db] = await Promise.all([world.createHost({ name: 'host1' }), world.createHost({ name: 'host2' })]);
  await generateCacheKey(LOCAL_CACHE_KEY, path.join(dir, 'cache-key'));
  return { world, web, db };
}
