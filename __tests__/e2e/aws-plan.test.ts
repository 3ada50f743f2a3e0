/**
 * The example app's `aws` stack, synthesized and planned by the real terraform with the
 * real hashicorp/aws provider (5.100.0 from the machine's filesystem mirror) and the
 * bundled `nixos` provider. No AWS API is reachable here: the credentials are fake and
 * the provider's skip_* settings keep the plan offline. Apply is not possible here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'cdktf';
import { installProvider, terraformEnv } from '../../bin/provider-install';
import { buildApp } from '../../main';
import { tempDir } from '../support/world';
import { runTerraform } from '../support/terraform';

interface PlannedResource {
  address: string;
  type: string;
  change: { actions: string[]; after: { [k: string]: unknown }; after_unknown: { [k: string]: unknown } };
}

describe('the aws stack, planned offline by terraform with the real AWS provider', () => {
  let work: string;
  let stackDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    work = tempDir('aws-plan');
    const installed = await installProvider({ dir: path.join(work, 'providers') });
    const app = new App({ outdir: path.join(work, 'cdktf.out') });
    const saved = process.env.CDKTF_NIXOS_BACKEND;
    delete process.env.CDKTF_NIXOS_BACKEND; // the local backend (the state file is never written: plan only)
    try {
      buildApp(app, ['aws']);
    } finally {
      if (saved !== undefined) process.env.CDKTF_NIXOS_BACKEND = saved;
    }
    app.synth();
    stackDir = path.join(work, 'cdktf.out', 'stacks', 'aws');
    env = {
      ...terraformEnv(installed),
      // Fake: nothing here can reach AWS, and nothing must try to.
      AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      AWS_REGION: 'eu-central-1',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
    delete env.AWS_PROFILE;
    delete env.AWS_SESSION_TOKEN;
  });
  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  const terraform = (args: string[]) => runTerraform(args, { cwd: stackDir, env, timeoutMs: 180_000 });

  test('the synthesized stack carries the skip_* settings that keep a plan offline', () => {
    const json = JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8'));
    expect(json.provider.aws[0]).toMatchObject({ skip_credentials_validation: true, skip_requesting_account_id: true, skip_metadata_api_check: 'true' });
    expect(json.terraform.required_providers.aws).toEqual({ source: 'aws', version: '5.100.0' });
  });

  test('terraform init works offline from the filesystem mirrors (hashicorp/aws 5.100.0, cdktf-nixos/nixos)', () => {
    const init = terraform(['init', '-no-color', '-input=false']);
    expect(init.out).toContain('Terraform has been successfully initialized');
    expect(init.status).toBe(0);
    const lock = fs.readFileSync(path.join(stackDir, '.terraform.lock.hcl'), 'utf8');
    expect(lock).toContain('registry.terraform.io/hashicorp/aws');
    expect(lock).toContain('"5.100.0"');
    expect(lock).toContain('registry.terraform.io/cdktf-nixos/nixos');
  });

  test('terraform plan succeeds with fake AWS credentials (AWS API cannot be reached here)', () => {
    const p = terraform(['plan', '-no-color', '-input=false', '-lock=false', '-out=tfplan']);
    expect(p.out).toMatch(/Plan: \d+ to add, 0 to change, 0 to destroy/);
    expect(p.status).toBe(0);

    const show = terraform(['show', '-json', 'tfplan']);
    expect(show.status).toBe(0);
    const changes: PlannedResource[] = JSON.parse(show.out.trim().split('\n')[0]).resource_changes;
    const ofType = (type: string) => changes.filter((c) => c.type === type);
    for (const c of changes) expect(c.change.actions).toEqual(['create']);

    expect(ofType('aws_instance')).toHaveLength(2);
    expect(ofType('aws_key_pair')).toHaveLength(2);
    expect(ofType('aws_security_group')).toHaveLength(2);
    expect(ofType('aws_s3_bucket')).toHaveLength(1);
    expect(ofType('aws_s3_bucket_policy')).toHaveLength(1);
    for (const instance of ofType('aws_instance')) expect(instance.change.after.ami).toBe('ami-0123456789abcdef0');
    for (const key of ofType('aws_key_pair')) expect(String(key.change.after.public_key)).toMatch(/^ssh-ed25519 /);

    // The systems target the instances' addresses: known only after apply.
    const systems = ofType('nixos_system');
    expect(systems).toHaveLength(2);
    for (const s of systems) {
      expect(s.change.after_unknown.host).toBe(true);
      expect(String(s.change.after.flake)).toMatch(/fixture-flake#(web|db)$/);
    }
    const db = systems.find((s) => String(s.change.after.flake).endsWith('#db'))!;
    const web = systems.find((s) => String(s.change.after.flake).endsWith('#web'))!;
    // db's closure depends on nothing unknown: the plan names it. web's special args hold
    // db's address, so its closure is known after apply.
    expect(String(db.change.after.closure_path)).toMatch(/^\/nix\/store\/[a-z0-9]{32}-nixos-system-db-/);
    expect(web.change.after_unknown.closure_path).toBe(true);
    expect(web.change.after.closure_path).toBeUndefined();
    expect(p.out).toMatch(/closure_path\s+= \(known after apply\)/);
    expect(p.out).toMatch(/host\s+= \(known after apply\)/);
  });
});
