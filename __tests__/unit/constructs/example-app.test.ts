import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Testing } from 'cdktf';
import { AwsStack, buildApp, LOCAL_CACHE_KEY, LocalStack } from '../../../main';
import { CACHE_PUBLIC_KEY, HOST_KEY } from './setup';

/** A world folder as World leaves it: client key, host records, host keys, cache key. */
function fakeWorld(hosts: string[], cacheKey = true): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-world-'));
  fs.mkdirSync(path.join(dir, 'client'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'client', 'id_ed25519.pub'), `${HOST_KEY} client\n`);
  hosts.forEach((name, i) => {
    const hostDir = path.join(dir, 'hosts', name);
    fs.mkdirSync(hostDir, { recursive: true });
    const record = { name, dir: hostDir, address: '127.0.0.1', port: 40000 + i, serviceAddress: '127.0.0.1', servicePort: 41000 + i, pid: 1, options: { name } };
    fs.writeFileSync(path.join(hostDir, 'host.json'), JSON.stringify(record));
    fs.writeFileSync(path.join(hostDir, 'ssh_host_ed25519_key.pub'), `${HOST_KEY} ${name}\n`);
  });
  if (cacheKey) {
    fs.mkdirSync(path.join(dir, 'cache-key'));
    fs.writeFileSync(path.join(dir, 'cache-key', `${LOCAL_CACHE_KEY}.pub`), CACHE_PUBLIC_KEY);
  }
  return dir;
}

const systems = (json: { [key: string]: any }) => Object.values(json.resource.nixos_system as object);

describe('the example app', () => {
  it('stack local: web and db on the world\'s hosts, web gets db\'s address, a file:// cache', () => {
    const world = fakeWorld(['host1', 'host2']);
    const stack = new LocalStack(Testing.app(), 'local', world);
    const json = JSON.parse(Testing.synth(stack));
    const web = systems(json).find((s) => s.flake.endsWith('#web'));
    const db = systems(json).find((s) => s.flake.endsWith('#db'));
    expect(web).toMatchObject({ host: '127.0.0.1', port: 40000, host_key: HOST_KEY, special_args: { db: { host: '127.0.0.1', port: 41001 } } });
    expect(db).toMatchObject({ port: 40001, health_checks: [{ http_url: 'http://127.0.0.1:41001/', retries: 20, interval_seconds: 0.5 }] });
    expect(web.flake).toBe(`${path.resolve(__dirname, '../../../world/fixture-flake')}#web`);
    expect(web.binary_cache).toEqual({
      uri: `file://${world}/binary-cache`,
      public_key: CACHE_PUBLIC_KEY,
      secret_key_file: path.join(world, 'cache-key', `${LOCAL_CACHE_KEY}.sec`),
    });
    expect(json.provider.nixos).toEqual([{ private_key_file: path.join(world, 'client', 'id_ed25519') }]);
  });

  it('stack local fails clearly without the world\'s hosts or cache key', () => {
    const none = path.join(os.tmpdir(), 'no-such-world');
    expect(() => new LocalStack(Testing.app(), 'local', none)).toThrow(`stack local: the test world in ${none} lacks everything. Set it up first with \`npm run deploy:local\``);
    const oneHost = fakeWorld(['host1']);
    expect(() => new LocalStack(Testing.app(), 'local', oneHost)).toThrow(/lacks host2\. Set it up first/);
    const noKey = fakeWorld(['host1', 'host2'], false);
    expect(() => new LocalStack(Testing.app(), 'local', noKey)).toThrow(/lacks .*cdktf-nixos-local-1\.pub\. Set it up first.*CDKTF_NIXOS_STACKS=aws/);
  });

  it('stack aws: two EC2 machines, the cache bucket, the same logical machines, offline-friendly AWS provider', () => {
    const json = JSON.parse(Testing.synth(new AwsStack(Testing.app(), 'aws')));
    expect(Object.keys(json.resource.aws_instance)).toHaveLength(2);
    expect(Object.keys(json.resource.aws_s3_bucket)).toHaveLength(1);
    expect(json.provider.aws[0]).toMatchObject({ skip_credentials_validation: true, skip_requesting_account_id: true, skip_metadata_api_check: 'true' });
    const web = systems(json).find((s) => s.flake.endsWith('#web'));
    expect(web.special_args.db.host).toMatch(/^\$\{aws_instance\.db_Instance_\w+\.private_ip\}$/);
    expect(web.binary_cache.uri).toMatch(/^s3:\/\//);
  });

  it('synthesizes both stacks into an output folder, as cdktf synth does', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-out-'));
    const world = fakeWorld(['host1', 'host2']);
    const app = new App({ outdir });
    new LocalStack(app, 'local', world);
    buildApp(app, ['aws']);
    app.synth();
    for (const stack of ['local', 'aws']) {
      const json = JSON.parse(fs.readFileSync(path.join(outdir, 'stacks', stack, 'cdk.tf.json'), 'utf8'));
      expect(json.terraform.required_providers.nixos.source).toBe('cdktf-nixos/nixos');
      expect(systems(json)).toHaveLength(2);
    }
    expect(JSON.parse(fs.readFileSync(path.join(outdir, 'manifest.json'), 'utf8')).stacks).toHaveProperty('aws');
  });

  it('Testing.fullSynth writes each stack', () => {
    const outdir = Testing.fullSynth(new AwsStack(Testing.app(), 'aws'));
    expect(fs.existsSync(path.join(outdir, 'stacks', 'aws', 'cdk.tf.json'))).toBe(true);
  });
});
