import { Testing, TerraformStack } from 'cdktf';
import { stateBackendFromEnv, useStateBackend } from '../../../lib';

function synthWith(configure: (stack: TerraformStack) => void, id = 'app'): { [key: string]: any } {
  const app = Testing.app();
  const stack = new TerraformStack(app, id);
  configure(stack);
  return JSON.parse(Testing.synth(stack));
}

describe('useStateBackend', () => {
  it('local with a path', () => {
    expect(synthWith((s) => useStateBackend(s, { type: 'local', path: '/srv/state/app.tfstate' })).terraform.backend).toEqual({ local: { path: '/srv/state/app.tfstate' } });
  });

  it('pg: a schema per stack, and no conn_str unless given (Terraform reads PG_CONN_STR)', () => {
    expect(synthWith((s) => useStateBackend(s, { type: 'pg' }), 'my-stack').terraform.backend).toEqual({ pg: { schema_name: 'cdktf_nixos_my_stack' } });
    expect(synthWith((s) => useStateBackend(s, { type: 'pg', connStr: 'postgres://u:p@db/x', schemaName: 'shared' })).terraform.backend).toEqual({
      pg: { conn_str: 'postgres://u:p@db/x', schema_name: 'shared' },
    });
  });

  it('s3: key per stack, encrypted, locked with use_lockfile (an override: cdktf 0.21 lacks the prop)', () => {
    expect(synthWith((s) => useStateBackend(s, { type: 's3', bucket: 'state', region: 'eu-west-1' })).terraform.backend).toEqual({
      s3: { bucket: 'state', key: 'cdktf-nixos/app.tfstate', region: 'eu-west-1', encrypt: true, use_lockfile: true },
    });
  });
});

describe('stateBackendFromEnv', () => {
  const stack = () => new TerraformStack(Testing.app(), 'app');
  it('local by default, pg, s3 from its variables', () => {
    expect(stateBackendFromEnv(stack(), {})).toEqual({ type: 'local' });
    expect(stateBackendFromEnv(stack(), { CDKTF_NIXOS_BACKEND: 'pg' })).toEqual({ type: 'pg' });
    expect(stateBackendFromEnv(stack(), { CDKTF_NIXOS_BACKEND: 's3', CDKTF_NIXOS_S3_BUCKET: 'b', AWS_REGION: 'us-east-1', CDKTF_NIXOS_S3_KEY: 'k' })).toEqual({
      type: 's3',
      bucket: 'b',
      region: 'us-east-1',
      key: 'k',
    });
  });
  it('refuses an unknown backend and an s3 backend without bucket or region, naming the fix', () => {
    expect(() => stateBackendFromEnv(stack(), { CDKTF_NIXOS_BACKEND: 'etcd' })).toThrow('CDKTF_NIXOS_BACKEND="etcd" is not a backend; use "local" (default), "pg" or "s3"');
    expect(() => stateBackendFromEnv(stack(), { CDKTF_NIXOS_BACKEND: 's3', CDKTF_NIXOS_S3_BUCKET: 'b' })).toThrow(/needs CDKTF_NIXOS_S3_BUCKET and CDKTF_NIXOS_S3_REGION \(or AWS_REGION\)/);
  });
});
