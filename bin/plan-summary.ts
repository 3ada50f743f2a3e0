/**
 * `cdktf-nixos plan-summary [PLAN.json | -]`: Markdown for a pull-request comment from
 * `terraform show -json PLANFILE` output (a file, or standard input).
 */
import * as fs from 'fs';
import { planSummary, SummaryOptions } from '../lib/plan-summary';

export interface PlanSummaryArgs {
  readonly file?: string;
  readonly title?: string;
  readonly build?: boolean;
  readonly fetchFromHosts?: boolean;
  readonly identity?: string;
  readonly knownHosts?: string;
}

async function readInput(file: string | undefined): Promise<string> {
  if (file && file !== '-') return fs.readFileSync(file, 'utf8');
  if (process.stdin.isTTY) throw new Error('plan-summary reads `terraform show -json PLANFILE` output: give a file, or pipe it in.');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads the plan JSON and returns the Markdown. */
export async function runPlanSummary(args: PlanSummaryArgs): Promise<string> {
  const text = await readInput(args.file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${args.file && args.file !== '-' ? args.file : 'standard input'} is not JSON (${(error as Error).message}); use \`terraform show -json PLANFILE\`.`);
  }
  const options: SummaryOptions = {
    title: args.title,
    build: args.build,
    fetchFromHosts: args.fetchFromHosts,
    ssh: { privateKeyFile: args.identity, knownHostsFile: args.knownHosts },
  };
  return planSummary(json, options);
}
