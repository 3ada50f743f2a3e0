import * as fs from 'fs';
import * as path from 'path';
import { parseArgs } from 'util';
import { generateCacheKey } from './cache-key';
import { installProvider } from './provider-install';
import { runPlanSummary } from './plan-summary';
import { deployMany, DeployError, validateRequest, DeployRequest, evaluate, formatBytes, HostStatus, Json, ProgressEvent, rollback, SshTarget, status } from '../lib/engine';

const USAGE = `usage: cdktf-nixos <command> [options]

commands:
  deploy     build a NixOS system and put it on one or many hosts
  status     show what a host runs (current and booted system, generations)
  rollback   switch a host back one generation, or to --generation N
  provider install   bundle the Terraform provider \`nixos\` into a filesystem mirror and
             write a Terraform CLI config for it: [--dir DIR] (.terraform-providers)
             [--aws-mirror DIR] (the hashicorp/* mirror; $CDKTF_NIXOS_AWS_MIRROR or /opt/tf-plugins)
  cache-key generate --name NAME --out DIR   make a binary cache's signing key pair
             (DIR/NAME.sec stays on the deployer; prints the public key for the configuration)
  plan-summary [PLAN.json | -]   Markdown for a pull-request comment from
             \`terraform show -json PLANFILE\` output (file or stdin): [--title TEXT]
             [--no-build] (don't build planned closures missing locally) [--no-ssh] (don't
             ask hosts for old closures missing locally) [--identity FILE] [--known-hosts FILE]

one host:
  --host H --port P --user U --identity FILE --host-key "TYPE BASE64" --known-hosts FILE
  --flake PATH#NAME | --store-path /nix/store/...    (deploy; status compares with it)
  --arg KEY=JSON          a special arg for the configuration (repeatable)
  --action switch|boot|test|dry-activate   --build-on local|target
  --key NAME=file:PATH | NAME=command:CMD   a secret for /run/keys (repeatable)
  --health-command CMD  --health-url URL  --magic-rollback SECONDS (0: off)
  --keep-generations N
many hosts:
  --targets FILE          a JSON array of deploy requests (see README)
  --concurrency N`;

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string' },
  user: { type: 'string' },
  identity: { type: 'string' },
  'host-key': { type: 'string' },
  'known-hosts': { type: 'string' },
  flake: { type: 'string' },
  'store-path': { type: 'string' },
  arg: { type: 'string', multiple: true },
  action: { type: 'string' },
  'build-on': { type: 'string' },
  key: { type: 'string', multiple: true },
  'health-command': { type: 'string' },
  'health-url': { type: 'string' },
  'magic-rollback': { type: 'string' },
  'keep-generations': { type: 'string' },
  targets: { type: 'string' },
  concurrency: { type: 'string' },
  generation: { type: 'string' },
  dir: { type: 'string' },
  'aws-mirror': { type: 'string' },
  name: { type: 'string' },
  out: { type: 'string' },
  title: { type: 'string' },
  'no-build': { type: 'boolean' },
  'no-ssh': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

/** Bad command-line input: its message is shown as it is. */
class UsageError extends Error {}

function usageError(message: string): never {
  throw new UsageError(`${message} See \`cdktf-nixos --help\`.`);
}

function number(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) usageError(`--${flag} must be a number, not "${value}".`);
  return n;
}

function targetFrom(values: Values): SshTarget {
  if (!values.host) usageError('--host is missing.');
  return {
    host: values.host,
    port: number(values.port, 'port'),
    user: values.user,
    privateKeyFile: values.identity,
    hostKey: values['host-key'],
    knownHostsFile: values['known-hosts'],
  };
}

function specialArgs(pairs: string[] | undefined): { [key: string]: Json } | undefined {
  if (!pairs?.length) return undefined;
  return Object.fromEntries(
    pairs.map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) usageError(`--arg "${pair}" is not KEY=JSON.`);
      const raw = pair.slice(eq + 1);
      try {
        return [pair.slice(0, eq), JSON.parse(raw) as Json];
      } catch {
        return [pair.slice(0, eq), raw];
      }
    }),
  );
}

function keysFrom(pairs: string[] | undefined): DeployRequest['keys'] {
  if (!pairs?.length) return undefined;
  return Object.fromEntries(
    pairs.map((pair) => {
      const match = /^([^=]+)=(file|command):(.+)$/.exec(pair);
      if (!match) usageError(`--key "${pair}" is not NAME=file:PATH or NAME=command:CMD.`);
      return [match[1], match[2] === 'file' ? { file: match[3] } : { command: match[3] }];
    }),
  );
}

function requestFrom(values: Values): DeployRequest {
  if (!values.flake === !values['store-path']) usageError('give exactly one of --flake and --store-path.');
  const rollbackSeconds = number(values['magic-rollback'], 'magic-rollback');
  return {
    target: targetFrom(values),
    system: values.flake ? { flake: values.flake, specialArgs: specialArgs(values.arg) } : { storePath: values['store-path']! },
    action: values.action as DeployRequest['action'],
    buildOn: values['build-on'] as 'local' | 'target' | undefined,
    keys: keysFrom(values.key),
    healthChecks: [
      ...(values['health-command'] ? [{ command: values['health-command'] }] : []),
      ...(values['health-url'] ? [{ http: { url: values['health-url'] } }] : []),
    ],
    magicRollback: rollbackSeconds === undefined ? undefined : rollbackSeconds === 0 ? false : { timeoutSeconds: rollbackSeconds },
    keepGenerations: number(values['keep-generations'], 'keep-generations'),
  };
}

/** A targets file: relative flake paths count from the file's folder. */
function requestsFromFile(file: string): DeployRequest[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    usageError(`the targets file ${file} cannot be read as JSON (${(error as Error).message}).`);
  }
  if (!Array.isArray(parsed)) usageError(`the targets file ${file} must hold a JSON array of deploy requests.`);
  const base = path.dirname(path.resolve(file));
  return (parsed as DeployRequest[]).map((request) =>
    'flake' in request.system && request.system.flake.startsWith('.')
      ? { ...request, system: { ...request.system, flake: path.resolve(base, request.system.flake) } }
      : request,
  );
}

/** Progress lines on stderr; copy progress at most twice a second per host. */
function progressPrinter(): (event: ProgressEvent) => void {
  const last = new Map<string, number>();
  return (event) => {
    if (event.copied) {
      const now = Date.now();
      const done = event.copied.bytes >= event.copied.totalBytes;
      if (!done && now - (last.get(event.host) ?? 0) < 500) return;
      last.set(event.host, now);
      const { paths, totalPaths, bytes, totalBytes } = event.copied;
      process.stderr.write(`[${event.host}] copy: ${paths}/${totalPaths} paths, ${formatBytes(bytes)} of ${formatBytes(totalBytes)}\n`);
      return;
    }
    process.stderr.write(`[${event.host}] ${event.step}: ${event.message}\n`);
  };
}

async function runDeploy(values: Values): Promise<number> {
  const requests = values.targets ? requestsFromFile(values.targets) : [requestFrom(values)];
  requests.forEach(validateRequest);
  // Ctrl-C cancels before activation; hosts already activating finish first. A second Ctrl-C exits at once.
  // A lasting listener: with `once`, execa's signal-exit would see none left and re-raise SIGINT.
  const cancel = new AbortController();
  process.on('SIGINT', () => {
    if (cancel.signal.aborted) process.exit(130);
    process.stderr.write('cancelling: hosts that are activating finish first (Ctrl-C again to exit at once)\n');
    cancel.abort();
  });
  const outcomes = await deployMany(requests, { onProgress: progressPrinter(), concurrency: number(values.concurrency, 'concurrency'), signal: cancel.signal });
  for (const outcome of outcomes) {
    if (outcome.ok) {
      const r = outcome.result;
      const generation = r.generation !== undefined ? `generation ${r.generation}` : 'no generation';
      console.log(`${r.host}: ${r.action} ${r.outPath} (${generation}; ${r.pathsCopied} paths, ${formatBytes(r.bytesSent)} sent)`);
      if (r.dryActivateOutput) console.log(r.dryActivateOutput.replace(/^/gm, '  '));
    } else {
      console.log(`${outcome.host}: FAILED: ${outcome.error.message}`);
    }
  }
  return outcomes.every((o) => o.ok) ? 0 : 1;
}

function printStatus(report: HostStatus, wanted?: string): void {
  console.log(`${report.host}`);
  console.log(`  current system: ${report.currentSystem ?? '(none)'}`);
  console.log(`  booted system:  ${report.bootedSystem ?? '(none)'}`);
  if (wanted) console.log(`  asked for:      ${wanted} (${wanted === report.currentSystem ? 'up to date' : 'DIFFERS'})`);
  for (const g of report.generations) {
    console.log(`  ${g.current ? '*' : ' '} generation ${g.number}  ${new Date(g.created * 1000).toISOString()}  ${g.system}`);
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case 'deploy':
      return runDeploy(values);
    case 'status': {
      const target = targetFrom(values);
      const wanted = values.flake || values['store-path'] ? (await evaluate(requestFrom(values).system)).outPath : undefined;
      printStatus(await status(target), wanted);
      return 0;
    }
    case 'rollback': {
      const report = await rollback(targetFrom(values), number(values.generation, 'generation'));
      printStatus(report);
      return 0;
    }
    case 'provider': {
      if (positionals[1] !== 'install') usageError(`unknown provider command "${positionals[1] ?? ''}"; use \`provider install\`.`);
      const installed = await installProvider({ dir: values.dir, awsMirror: values['aws-mirror'] });
      console.log(`installed ${installed.executable} (${Math.round(installed.bytes / 1024)} KiB)`);
      console.log(`Terraform finds it (offline) with:\n  export TF_CLI_CONFIG_FILE=${installed.cliConfig}`);
      return 0;
    }
    case 'cache-key': {
      if (positionals[1] !== 'generate') usageError(`unknown cache-key command "${positionals[1] ?? ''}"; use \`cache-key generate --name NAME --out DIR\`.`);
      if (!values.name || !values.out) usageError('cache-key generate needs --name NAME and --out DIR.');
      const key = await generateCacheKey(values.name, values.out);
      console.error(`${key.created ? 'created' : 'kept the existing'} ${key.secretKeyFile} (secret, stays here) and ${key.publicKeyFile}`);
      console.log(key.publicKey);
      return 0;
    }
    case 'plan-summary': {
      const markdown = await runPlanSummary({
        file: positionals[1],
        title: values.title,
        build: !values['no-build'],
        fetchFromHosts: !values['no-ssh'],
        identity: values.identity,
        knownHosts: values['known-hosts'],
      });
      process.stdout.write(markdown.endsWith('\n') ? markdown : `${markdown}\n`);
      return 0;
    }
    default:
      usageError(`unknown command "${command}".`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    // One readable paragraph, never a stack trace.
    console.error(`cdktf-nixos: ${error instanceof DeployError ? error.message : error.message.split('\n')[0]}`);
    process.exit(1);
  },
);
