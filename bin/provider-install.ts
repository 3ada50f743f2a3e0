/**
 * `cdktf-nixos provider install`: bundles the `nixos` provider into one executable
 * file inside a Terraform filesystem mirror, and writes a CLI configuration that
 * finds it (and the AWS provider in the machine's own mirror) without a registry.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

export const PROVIDER_SOURCE = 'registry.terraform.io/cdktf-nixos/nixos';
export const PROVIDER_VERSION = '0.1.0';
const REPO_ROOT = path.resolve(__dirname, '..');
/** Default install folder, inside the repository (git-ignored). */
export const DEFAULT_INSTALL_DIR = path.join(REPO_ROOT, '.terraform-providers');
/** Where the machine image keeps hashicorp providers (hashicorp/aws 5.100.0). */
export const DEFAULT_AWS_MIRROR = process.env.CDKTF_NIXOS_AWS_MIRROR ?? '/opt/tf-plugins';

export interface InstallOptions {
  /** @default DEFAULT_INSTALL_DIR */
  dir?: string;
  /** @default DEFAULT_AWS_MIRROR */
  awsMirror?: string;
  /** @default `${os arch}` as Terraform names it, e.g. linux_amd64 */
  platform?: string;
}

export interface Installed {
  /** The bundled provider executable. */
  executable: string;
  /** The filesystem mirror folder. */
  mirror: string;
  /** The CLI configuration to put in TF_CLI_CONFIG_FILE. */
  cliConfig: string;
  bytes: number;
}

function terraformPlatform(): string {
  const arch = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm' }[process.arch as string] ?? process.arch;
  return `${process.platform}_${arch}`;
}

/**
 * The start of the bundle: the .proto files travel inside it and are written once to a
 * private temporary folder, which the protocol layer reads (CDKTF_NIXOS_PROTO_DIR).
 * Terraform hashes the provider's folder, so the provider is this one file only.
 */
function banner(protoDir: string): string {
  const files: { [name: string]: string } = {};
  for (const name of fs.readdirSync(protoDir).filter((n) => n.endsWith('.proto')).sort()) files[name] = fs.readFileSync(path.join(protoDir, name), 'utf8');
  const hash = createHash('sha256').update(JSON.stringify(files)).digest('hex').slice(0, 16);
  return `(() => {
  if (process.env.CDKTF_NIXOS_PROTO_DIR) return;
  const fs = require("fs"), path = require("path"), os = require("os");
  const files = ${JSON.stringify(files)};
  const dir = path.join(os.tmpdir(), "cdktf-nixos-proto-" + (process.getuid ? process.getuid() : "u") + "-${hash}");
  if (!fs.existsSync(path.join(dir, ".complete"))) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const [name, text] of Object.entries(files)) {
      const tmp = path.join(dir, name + "." + process.pid + ".tmp");
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, path.join(dir, name));
    }
    fs.writeFileSync(path.join(dir, ".complete"), "");
  }
  process.env.CDKTF_NIXOS_PROTO_DIR = dir;
})();`;
}

/**
 * Runs the bundle with a V8 code cache kept in the user's cache folder (readable by that
 * user only): Terraform starts the provider about three times per plan, and compiling
 * the bundle afresh is a quarter of each start. The cache is written at exit when it was
 * missing or V8 rejected it (another Node version).
 */
function loader(source: string): string {
  const hash = createHash('sha256').update(source).digest('hex').slice(0, 16);
  return `(() => {
  const fs = require("fs"), path = require("path"), os = require("os"), vm = require("vm"), Module = require("module");
  const base = process.env.CDKTF_NIXOS_CACHE_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "cdktf-nixos");
  const file = path.join(base, "provider-code-${hash}-" + process.version + ".bin");
  let cachedData;
  try {
    const stat = fs.statSync(file);
    if (stat.uid === process.getuid() && (stat.mode & 0o077) === 0) cachedData = fs.readFileSync(file);
  } catch {}
  const script = new vm.Script(Module.wrap(${JSON.stringify(source)}), { filename: __filename, cachedData });
  if (!cachedData || script.cachedDataRejected) {
    process.once("exit", () => {
      try {
        fs.mkdirSync(base, { recursive: true, mode: 0o700 });
        fs.writeFileSync(file + "." + process.pid, script.createCachedData(), { mode: 0o600 });
        fs.renameSync(file + "." + process.pid, file);
      } catch {}
    });
  }
  script.runInThisContext()(module.exports, require, module, __filename, __dirname);
})();`;
}

/** Bundles providers/nixos/main.ts into one executable file. */
export async function bundleProvider(outfile: string): Promise<number> {
  // esbuild is only needed here; loading it lazily keeps the other commands fast.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  const built = await esbuild.build({
    entryPoints: [path.join(REPO_ROOT, 'providers', 'nixos', 'main.ts')],
    write: false,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    // ssh2's optional native helpers: it falls back to pure JavaScript without them.
    external: ['cpu-features', '*.node'],
    logLevel: 'error',
  });
  const source = built.outputFiles[0].text;
  const text = `#!/usr/bin/env node\n"use strict";\n${banner(path.join(REPO_ROOT, 'providers', 'nixos', 'protocol', 'proto'))}\n${loader(source)}\n`;
  fs.mkdirSync(path.dirname(outfile), { recursive: true });
  fs.writeFileSync(outfile, text, { mode: 0o755 });
  fs.chmodSync(outfile, 0o755);
  return Buffer.byteLength(text);
}

/** The CLI configuration: our mirror for cdktf-nixos/nixos, the machine's for hashicorp/*. */
export function cliConfigText(mirror: string, awsMirror: string): string {
  return `# Written by \`cdktf-nixos provider install\`. Use it with:
#   export TF_CLI_CONFIG_FILE=<this file>
provider_installation {
  filesystem_mirror {
    path    = ${JSON.stringify(mirror)}
    include = ["${PROVIDER_SOURCE}"]
  }
  filesystem_mirror {
    path    = ${JSON.stringify(awsMirror)}
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
`;
}

/** Bundles the provider into the mirror and writes the CLI configuration. */
export async function installProvider(options: InstallOptions = {}): Promise<Installed> {
  const dir = path.resolve(options.dir ?? DEFAULT_INSTALL_DIR);
  const awsMirror = path.resolve(options.awsMirror ?? DEFAULT_AWS_MIRROR);
  const mirror = path.join(dir, 'mirror');
  const platformDir = path.join(mirror, PROVIDER_SOURCE, PROVIDER_VERSION, options.platform ?? terraformPlatform());
  // Only the executable may be in the folder: Terraform's lock hash covers all of it.
  fs.rmSync(platformDir, { recursive: true, force: true });
  const executable = path.join(platformDir, `terraform-provider-nixos_v${PROVIDER_VERSION}`);
  const bytes = await bundleProvider(executable);
  const cliConfig = path.join(dir, 'terraform.rc');
  fs.writeFileSync(cliConfig, cliConfigText(mirror, awsMirror));
  return { executable, mirror, cliConfig, bytes };
}

/**
 * The environment for running terraform with an installed provider, offline and quiet
 * (no checkpoint calls, no TF_LOG inherited into captured output).
 */
export function terraformEnv(installed: Pick<Installed, 'cliConfig'>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, TF_CLI_CONFIG_FILE: installed.cliConfig, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };
  delete env.TF_LOG;
  return env;
}
