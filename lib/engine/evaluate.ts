import { createHash } from 'crypto';
import execa from 'execa';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { canonicalJson } from './canonical-json';
import { DeployError, nixErrorText } from './errors';
import { localValidPaths, nix, nixVersion } from './local-nix';
import { isStorePath } from './store-path';
import { Json, SystemSource } from './types';

/** The default folder of cached evaluation results. */
export const DEFAULT_EVAL_CACHE_DIR = path.join(os.homedir(), '.cache', 'cdktf-nixos', 'eval');

/** A system closure, evaluated but not necessarily built. */
export interface Evaluation {
  /** Absent for a prebuilt store path, whose derivation the deployer may not have. */
  readonly drvPath?: string;
  readonly outPath: string;
  /** Whether the answer came from the cache. */
  readonly cached: boolean;
}

/** A flake reference split into its source and configuration name. */
export interface FlakeRef {
  readonly source: string;
  readonly name: string;
  /** The local directory of the flake, when it is one. */
  readonly localDir?: string;
}

/** Parses `path#name`; a relative path is taken from `cwd`. */
export function parseFlakeRef(flake: string, cwd = process.cwd()): FlakeRef {
  const hash = flake.lastIndexOf('#');
  if (hash <= 0 || hash === flake.length - 1) {
    throw new DeployError(
      'evaluate',
      undefined,
      `the flake reference "${flake}" has no configuration name.`,
      'Write it as PATH#NAME, for example ./infra#web, where NAME is an attribute of nixosConfigurations.',
    );
  }
  const source = flake.slice(0, hash);
  const name = flake.slice(hash + 1);
  const plain = source.replace(/^(path:|git\+file:\/\/)/, '').replace(/\?.*$/, '');
  const isLocal = /^(\.|\/|path:|git\+file:)/.test(source);
  if (!isLocal) return { source, name };
  const localDir = path.resolve(cwd, plain);
  const resolved = source.startsWith('.') || source.startsWith('/') ? localDir : source;
  return { source: resolved, name, localDir };
}

/** The NixOS attribute name inside nixosConfigurations, quoted for a Nix attribute path. */
function attrPath(name: string): string {
  return `nixosConfigurations.${JSON.stringify(name)}`;
}

/** A Nix string literal holding `text`. */
export function nixString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$')}"`;
}

/**
 * The function applied to the configuration: it extends it with `terraform = specialArgs`
 * the way a lib.nixosSystem result allows, and returns the toplevel's paths.
 */
function applyExpression(specialArgs: { [key: string]: Json } | undefined): string {
  const configuration = specialArgs
    ? `(c.extendModules { specialArgs = { terraform = builtins.fromJSON ${nixString(JSON.stringify(specialArgs))}; }; })`
    : 'c';
  return `c: let t = ${configuration}.config.system.build.toplevel; in { drv = t.drvPath; out = t.outPath; }`;
}

/**
 * A hash of what Nix reads from a local flake: in a git work tree the tracked files as
 * they are on disk (git-ignored and untracked files are invisible to Nix), elsewhere
 * every file of the folder. A `path:` flake sees every file even in a git work tree.
 */
export function sourceFingerprint(dir: string, wholeFolder = false): Promise<string> {
  return shared(fingerprints, `${wholeFolder}\0${dir}`, () => fingerprint(dir, wholeFolder));
}

async function fingerprint(dir: string, wholeFolder: boolean): Promise<string> {
  const hash = createHash('sha256');
  const top = wholeFolder ? undefined : await execa('git', ['-C', dir, 'rev-parse', '--show-toplevel'], { reject: false });
  if (top?.exitCode === 0) {
    const root = top.stdout.trim();
    const index = await execa('git', ['-C', root, 'ls-files', '--stage', '-z'], { stripFinalNewline: false });
    hash.update(index.stdout);
    const changed = await execa('git', ['-C', root, 'diff', '--name-only', '-z'], { stripFinalNewline: false });
    for (const file of changed.stdout.split('\0').filter(Boolean).sort()) {
      hash.update(`\0${file}\0`);
      const full = path.join(root, file);
      hash.update(fs.existsSync(full) ? fs.readFileSync(full) : 'deleted');
    }
    return hash.digest('hex');
  }
  for (const file of walk(dir)) {
    hash.update(`\0${path.relative(dir, file)}\0`);
    hash.update(fs.readFileSync(file));
  }
  return hash.digest('hex');
}

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.name !== '.git')
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.isFile() ? [path.join(dir, e.name)] : []));
}

/** Work in flight, by key: callers asking at the same time share one run. */
const fingerprints = new Map<string, Promise<string>>();
const evaluations = new Map<string, Promise<Evaluation>>();

/**
 * Shares `work` among callers that ask while it runs (Terraform plans ten resources at
 * once, often of one flake). Finished work is not kept: the next caller sees the files
 * as they are then.
 */
function shared<T>(inFlight: Map<string, Promise<T>>, key: string, work: () => Promise<T>): Promise<T> {
  let running = inFlight.get(key);
  if (!running) {
    running = work().finally(() => inFlight.delete(key));
    inFlight.set(key, running);
  }
  return running;
}

/**
 * Evaluates a system source to its derivation and output paths without building.
 * Results of local flakes are cached under `cacheDir`, keyed by a hash of their real
 * inputs (tracked files, configuration name, special args, Nix version).
 */
export function evaluate(source: SystemSource, cacheDir: string = DEFAULT_EVAL_CACHE_DIR, host?: string): Promise<Evaluation> {
  if ('storePath' in source) return evaluateUncached(source, cacheDir, host);
  return shared(evaluations, canonicalJson({ source, cacheDir }), () => evaluateUncached(source, cacheDir)).catch((error: unknown) => {
    // The shared run names no host: each caller's error names its own.
    throw error instanceof DeployError ? new DeployError(error.step, host, error.problem, error.fix) : error;
  });
}

async function evaluateUncached(source: SystemSource, cacheDir: string, host?: string): Promise<Evaluation> {
  if ('storePath' in source) {
    if (!isStorePath(source.storePath)) {
      throw new DeployError(
        'evaluate',
        host,
        `"${source.storePath}" is not a store path.`,
        'Give the output path of a built system, like /nix/store/<hash>-nixos-system-<name>-<version>.',
      );
    }
    if (source.drvPath !== undefined) {
      if (!isStorePath(source.drvPath, true)) {
        throw new DeployError('evaluate', host, `"${source.drvPath}" is not a derivation path.`, 'Give the .drv path that produces the store path, or leave it out.');
      }
      return { drvPath: source.drvPath, outPath: source.storePath, cached: false };
    }
    return { outPath: source.storePath, cached: false };
  }
  const ref = parseFlakeRef(source.flake);
  if (ref.localDir && !fs.existsSync(path.join(ref.localDir, 'flake.nix'))) {
    throw new DeployError('evaluate', host, `there is no flake.nix in ${ref.localDir} (from "${source.flake}").`, 'Check the path before the #.');
  }
  const key = ref.localDir
    ? createHash('sha256')
        .update(canonicalJson({ v: 1, source: ref.source, name: ref.name, args: source.specialArgs ?? null, nix: await nixVersion() }))
        .update(await sourceFingerprint(ref.localDir, ref.source.startsWith('path:')))
        .digest('hex')
    : undefined;
  const cacheFile = key ? path.join(cacheDir, `${key}.json`) : undefined;
  if (cacheFile && fs.existsSync(cacheFile)) {
    const hit = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { drvPath: string; outPath: string };
    // A collected derivation cannot be built from: evaluate again to bring it back.
    if ((await localValidPaths([hit.drvPath])).has(hit.drvPath)) return { ...hit, cached: true };
  }

  const result = await nix(['eval', '--json', `${ref.source}#${attrPath(ref.name)}`, '--apply', applyExpression(source.specialArgs)]);
  if (result.exitCode !== 0) throw await evaluationError(ref, result.stderr, host);
  const { drv, out } = JSON.parse(result.stdout) as { drv: string; out: string };
  if (cacheFile) {
    fs.mkdirSync(cacheDir, { recursive: true });
    const temp = `${cacheFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    fs.writeFileSync(temp, JSON.stringify({ drvPath: drv, outPath: out }));
    fs.renameSync(temp, cacheFile);
  }
  return { drvPath: drv, outPath: out, cached: false };
}

async function evaluationError(ref: FlakeRef, stderr: string, host?: string): Promise<DeployError> {
  const where = `${ref.source}#${ref.name}`;
  if (/does not provide attribute|attribute '.*' missing/.test(stderr)) {
    const names = await nix(['eval', '--json', `${ref.source}#nixosConfigurations`, '--apply', 'builtins.attrNames']);
    const configurations = names.exitCode === 0 ? (JSON.parse(names.stdout) as string[]) : [];
    // An attribute missing inside an existing configuration is the configuration's own error.
    if (!configurations.includes(ref.name)) {
      return new DeployError(
        'evaluate',
        host,
        `the flake ${ref.source} has no nixosConfigurations.${ref.name}.`,
        configurations.length ? `Use one of: ${configurations.join(', ')}.` : 'Check that the flake defines nixosConfigurations.',
      );
    }
  }
  return new DeployError('evaluate', host, `evaluating ${where} gave an error: ${nixErrorText(stderr)}`, 'Fix the configuration and try again.');
}
