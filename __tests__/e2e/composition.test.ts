/**
 * Composing with an existing stack: a plain HCL Terraform configuration, applied for real
 * with the local backend, names a host in its outputs; a cdktf-nixos stack reads them with
 * DataTerraformRemoteStateLocal and deploys to that host. Real terraform, real test host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, DataTerraformRemoteStateLocal, LocalBackend, TerraformOutput, TerraformStack } from 'cdktf';
import { installProvider, terraformEnv } from '../../bin/provider-install';
import { NixosProvider, NixosSystem } from '../../lib';
import { TestHost, World } from '../../world/world';
import { currentSystem, Fixture, tempDir, waitForService } from '../support/world';
import { runTerraform } from '../support/terraform';

// A world of its own: jest's global setup (of this or a concurrent run) clears the shared test world.
const WORLD_DIR = `${process.env.CDKTF_NIXOS_TEST_WORLD_ROOT ?? '/var/lib/cdktf-nixos-world'}/test-composition`;

describe('an HCL stack provides the host, a cdktf-nixos stack deploys to it through remote state', () => {
  let work: string;
  let world: World;
  let host: TestHost;
  let fixture: Fixture;
  let env: NodeJS.ProcessEnv;
  let hclDir: string;

  beforeAll(async () => {
    work = tempDir('composition');
    world = await World.open(WORLD_DIR);
    await world.removeAll();
    [host, fixture] = await Promise.all([world.createHost({ name: 'compose-a' }), Fixture.create({ version: '1' })]);
    const installed = await installProvider({ dir: path.join(work, 'providers') });
    env = terraformEnv(installed);
    hclDir = path.join(work, 'infra');
    fs.mkdirSync(hclDir);
  });
  afterAll(async () => {
    await world?.removeHost('compose-a');
    fixture?.remove();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const terraform = (cwd: string, args: string[]) => runTerraform(args, { cwd, env });

  test('the HCL configuration is applied with the local backend and names the host in its outputs', () => {
    // What an existing infrastructure stack would do with a real machine; here the
    // machine is the test host, recorded in terraform_data.
    fs.writeFileSync(
      path.join(hclDir, 'main.tf'),
      `resource "terraform_data" "machine" {
  input = {
    address  = ${JSON.stringify(host.address)}
    port     = ${host.port}
    host_key = ${JSON.stringify(world.hostKey(host.name))}
  }
}

output "address" {
  value = terraform_data.machine.output.address
}

output "ssh_port" {
  value = terraform_data.machine.output.port
}

output "host_key" {
  value = terraform_data.machine.output.host_key
}
`,
    );
    expect(terraform(hclDir, ['init', '-no-color', '-input=false']).status).toBe(0);
    const apply = terraform(hclDir, ['apply', '-auto-approve', '-no-color', '-input=false']);
    expect(apply.out).toContain('Apply complete! Resources: 1 added');
    expect(apply.status).toBe(0);
    const state = JSON.parse(fs.readFileSync(path.join(hclDir, 'terraform.tfstate'), 'utf8'));
    expect(state.outputs.address.value).toBe(host.address);
    expect(state.outputs.ssh_port.value).toBe(host.port);
  });

  test('the cdktf stack reads the outputs through DataTerraformRemoteStateLocal and the host runs the system', async () => {
    const app = new App({ outdir: path.join(work, 'cdktf.out') });
    const stack = new TerraformStack(app, 'systems');
    new LocalBackend(stack, { path: path.join(work, 'systems.tfstate') });
    const infra = new DataTerraformRemoteStateLocal(stack, 'infra', { path: path.join(hclDir, 'terraform.tfstate') });
    new NixosProvider(stack, 'nixos', {
      privateKeyFile: world.clientKeyFile,
      knownHostsFile: path.join(work, 'known_hosts'),
      evalCacheDir: path.join(work, 'eval'),
    });
    const system = new NixosSystem(stack, 'app', {
      flake: fixture.flake('good'),
      host: infra.getString('address'),
      port: infra.getNumber('ssh_port'),
      hostKey: infra.getString('host_key'),
      specialArgs: { deployedTo: infra.getString('address') },
    });
    new TerraformOutput(stack, 'closure', { value: system.closurePath });
    app.synth();
    const stackDir = path.join(work, 'cdktf.out', 'stacks', 'systems');
    const json = JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8'));
    expect(json.data.terraform_remote_state.infra).toMatchObject({ backend: 'local', config: { path: path.join(hclDir, 'terraform.tfstate') } });
    expect(Object.values(json.resource.nixos_system)[0]).toMatchObject({
      host: '${data.terraform_remote_state.infra.outputs.address}',
      port: '${data.terraform_remote_state.infra.outputs.ssh_port}',
    });

    expect(terraform(stackDir, ['init', '-no-color', '-input=false']).status).toBe(0);
    const apply = terraform(stackDir, ['apply', '-auto-approve', '-no-color', '-input=false']);
    expect(apply.out).toContain('Apply complete! Resources: 1 added');
    expect(apply.status).toBe(0);

    const state = JSON.parse(fs.readFileSync(path.join(work, 'systems.tfstate'), 'utf8'));
    const closure = state.outputs.closure.value;
    expect(closure).toMatch(/^\/nix\/store\/.*-nixos-system-good-1$/);
    expect(state.resources.find((r: { type: string }) => r.type === 'nixos_system').instances[0].attributes).toMatchObject({
      host: host.address,
      port: host.port,
      host_key_seen: world.hostKey(host.name),
    });
    expect(await currentSystem(world, host)).toBe(closure);
    const answer = await waitForService(host);
    expect(answer.system).toBe(closure);
    expect(answer.terraform).toEqual({ deployedTo: host.address });

    const plan = terraform(stackDir, ['plan', '-no-color', '-input=false', '-detailed-exitcode']);
    expect(plan.out).toContain('No changes');
    expect(plan.status).toBe(0);
  });
});
