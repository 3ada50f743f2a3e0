import { spawnSync } from 'child_process';

/** What a run of the real terraform binary gave. */
export interface TerraformRun {
  readonly status: number | null;
  /** Standard output and error together, as a person reads them. */
  readonly out: string;
  readonly ms: number;
}

/** Runs the real terraform binary and waits for it. */
export function runTerraform(args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): TerraformRun {
  const started = Date.now();
  const r = spawnSync('terraform', args, { cwd: options.cwd, env: options.env, encoding: 'utf8', timeout: options.timeoutMs ?? 300_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}`, ms: Date.now() - started };
}
