/**
 * The protocol layer against the real terraform binary: the echo provider is
 * installed through a dev_overrides CLI configuration (no init needed), and
 * plan, apply, output and a second plan must all agree.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeSelfSignedCertificate } from '../../providers/nixos/protocol/tls';
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from '../../providers/nixos/protocol/serve';
import { runTerraform } from '../support/terraform';

const ECHO_PROVIDER = path.resolve(__dirname, '../../providers/nixos/protocol/testing/echo-provider.ts');

/** Writes an executable `terraform-provider-nixos` that runs the echo provider through tsx. */
function writeProviderWrapper(dir: string): string {
  const bin = path.join(dir, 'terraform-provider-nixos');
  const script = `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} -r ${JSON.stringify(require.resolve('tsx/cjs'))} ${JSON.stringify(ECHO_PROVIDER)} "$@"\n`;
  fs.writeFileSync(bin, script, { mode: 0o755 });
  return bin;
}

describe('echo provider with the real terraform', () => {
  let work: string;
  let env: NodeJS.ProcessEnv;
  let wrapper: string;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-protocol-e2e-'));
    const binDir = path.join(work, 'bin');
    fs.mkdirSync(binDir);
    wrapper = writeProviderWrapper(binDir);
    const cliConfig = path.join(work, 'terraform.rc');
    fs.writeFileSync(
      cliConfig,
      `provider_installation {\n  dev_overrides {\n    "registry.terraform.io/cdktf-nixos/nixos" = ${JSON.stringify(binDir)}\n  }\n  direct {}\n}\n`,
    );
    fs.mkdirSync(path.join(work, 'stack'));
    writeConfig('hello');
    // The machine's TF_CLI_CONFIG_FILE points to a missing file: replace it.
    env = { ...process.env, TF_CLI_CONFIG_FILE: cliConfig, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' };
    delete env.TF_LOG;
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  function writeConfig(input: string): void {
    fs.writeFileSync(
      path.join(work, 'stack', 'main.tf'),
      `terraform {\n  required_providers {\n    nixos = { source = "cdktf-nixos/nixos" }\n  }\n}\n\n` +
        `resource "nixos_echo" "a" {\n  input = ${JSON.stringify(input)}\n}\n\n` +
        `output "echoed" {\n  value = nixos_echo.a.output\n}\n`,
    );
  }

  function terraform(...args: string[]): { status: number | null; out: string } {
    return runTerraform(args, { cwd: path.join(work, 'stack'), env, timeoutMs: 90_000 });
  }

  function outputValue(): unknown {
    const { status, out } = terraform('output', '-json');
    expect(status).toBe(0);
    return JSON.parse(out.trim()).echoed.value;
  }

  test('plan, apply, output, and a second plan without changes', () => {
    const plan = terraform('plan', '-no-color', '-input=false');
    expect(plan.out).toContain('1 to add');
    expect(plan.status).toBe(0);

    const apply = terraform('apply', '-auto-approve', '-no-color', '-input=false');
    expect(apply.out).toContain('Apply complete! Resources: 1 added');
    expect(apply.status).toBe(0);
    expect(outputValue()).toBe('hello');

    const again = terraform('plan', '-detailed-exitcode', '-no-color', '-input=false');
    expect(again.out).toContain('No changes');
    expect(again.status).toBe(0);
  });

  test('an edit plans an update, apply passes Terraform\'s consistency checks, destroy empties the state', () => {
    writeConfig('world');
    const plan = terraform('plan', '-detailed-exitcode', '-no-color', '-input=false');
    expect(plan.out).toContain('1 to change');
    expect(plan.status).toBe(2);
    expect(terraform('apply', '-auto-approve', '-no-color', '-input=false').status).toBe(0);
    expect(outputValue()).toBe('world');
    const destroy = terraform('destroy', '-auto-approve', '-no-color', '-input=false');
    expect(destroy.out).toContain('1 destroyed');
    expect(destroy.status).toBe(0);
  });

  test('start-up: the handshake line arrives quickly and alone on stdout', async () => {
    const cert = await makeSelfSignedCertificate('terraform');
    const started = process.hrtime.bigint();
    const child = spawn(wrapper, [], {
      env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_CLIENT_CERT: cert.certPem, PLUGIN_PROTOCOL_VERSIONS: '6' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    const line = await new Promise<string>((resolve, reject) => {
      child.on('error', reject);
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (stdout.includes('\n')) resolve(stdout.split('\n')[0]);
      });
    });
    const millis = Number(process.hrtime.bigint() - started) / 1e6;
    // Ctrl-C is for Terraform to handle: the plugin must survive SIGINT.
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 200));
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
    expect(line).toMatch(/^1\|6\|unix\|\/[^|]+\|grpc\|[A-Za-z0-9+/]+$/);
    expect(stdout).toBe(`${line}\n`);
    process.stderr.write(`provider start-up (handshake line latency, via tsx): ${millis.toFixed(0)} ms\n`);
    expect(millis).toBeLessThan(5000);
  });

  test('run by hand, without the magic cookie, it explains itself and exits 1', () => {
    const result = spawnSync(wrapper, [], { env: { ...process.env, [MAGIC_COOKIE_KEY]: '' }, encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/Terraform provider plugin/);
  });
});
