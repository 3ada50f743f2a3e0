import * as fs from 'fs';
import * as path from 'path';
import { App, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { defineMachines, HostPlacement, NixBinaryCache, NixosProvider, placeOnEc2, placeOnHosts, stateBackendFromEnv, useStateBackend } from './lib';
import { DEFAULT_WORLD_DIR, World } from './world/world';

/**
 * The example app: the same two logical machines (the fixture flake's `web` and `db`,
 * web learning db's address through its special args) on the test world's hosts (stack
 * `local`) and on EC2 (stack `aws`). `CDKTF_NIXOS_STACKS=aws` synthesizes only `aws`.
 * Both keep their state in the backend `CDKTF_NIXOS_BACKEND` names: `local` (default), `pg`
 * (`PG_CONN_STR`) or `s3` (see lib/state-backend.ts).
 */
const FLAKE = path.join(__dirname, 'world', 'fixture-flake');
/** The local binary cache's key name; its key pair lives in the world's `cache-key` folder. */
export const LOCAL_CACHE_KEY = 'cdktf-nixos-local-1';

export const machines = defineMachines({
  db: { flake: `${FLAKE}#db` },
  web: { flake: `${FLAKE}#web`, specialArgs: (m) => ({ db: { host: m.db.address, port: m.db.facts.servicePort } }) },
});

/** Stack `local`: the machines on the test world's hosts host1 (web) and host2 (db). */
export class LocalStack extends TerraformStack {
  constructor(scope: Construct, id: string, worldDir: string = DEFAULT_WORLD_DIR) {
    super(scope, id);
    useStateBackend(this, stateBackendFromEnv(this));
    const world = World.existing(worldDir);
    const missing = ['host1', 'host2'].filter((h) => !world?.hosts().some((r) => r.name === h));
    const publicKeyFile = path.join(worldDir, 'cache-key', `${LOCAL_CACHE_KEY}.pub`);
    if (!world || missing.length > 0 || !fs.existsSync(publicKeyFile)) {
      throw new Error(
        `stack ${id}: the test world in ${worldDir} lacks ${world ? [...missing, ...(fs.existsSync(publicKeyFile) ? [] : [publicKeyFile])].join(', ') : 'everything'}. ` +
          'Set it up first with `npm run deploy:local` (hosts and cache key), then synth again; set CDKTF_NIXOS_STACKS=aws to synth only the aws stack.',
      );
    }
    new NixosProvider(this, 'nixos', { privateKeyFile: world.clientKeyFile });
    const cache = NixBinaryCache.fromUri(this, 'cache', {
      uri: `file://${path.join(worldDir, 'binary-cache')}`,
      publicKey: fs.readFileSync(publicKeyFile, 'utf8').trim(),
      secretKeyFile: path.join(worldDir, 'cache-key', `${LOCAL_CACHE_KEY}.sec`),
    });
    const on = (name: string): HostPlacement => {
      const h = world.host(name);
      return {
        host: h.address,
        port: h.port,
        hostKey: world.hostKey(name),
        peerAddress: h.serviceAddress,
        facts: { servicePort: h.servicePort },
        binaryCache: cache,
        healthChecks: [{ http: { url: `http://${h.serviceAddress}:${h.servicePort}/` }, retries: 20, intervalSeconds: 0.5 }],
      };
    };
    placeOnHosts(this, machines, { web: on('host1'), db: on('host2') });
  }
}

/** Stack `aws`: the machines on two EC2 instances, with an S3 binary cache. Plans offline with fake credentials. */
export class AwsStack extends TerraformStack {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    useStateBackend(this, stateBackendFromEnv(this));
    const env = process.env;
    new AwsProvider(this, 'aws', {
      region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'eu-central-1',
      // Offline (no AWS reachable, fake keys) plan works with these; real use keeps them.
      skipCredentialsValidation: true,
      skipRequestingAccountId: true,
      skipMetadataApiCheck: 'true',
    });
    // The example's defaults are placeholders (their private halves were thrown away): set
    // the CDKTF_NIXOS_* variables for real use.
    const cache = new NixBinaryCache(this, 'cache', {
      publicKey: env.CDKTF_NIXOS_CACHE_PUBLIC_KEY ?? 'cdktf-nixos-aws-1:+ZUiuX7sz2YdrVDfapj/KawzsD5SDzEkNWClv0dfgr0=',
      secretKeyFile: env.CDKTF_NIXOS_CACHE_SECRET_KEY_FILE ?? '/etc/cdktf-nixos/cdktf-nixos-aws-1.sec',
    });
    placeOnEc2(this, machines, {
      defaults: {
        ami: env.CDKTF_NIXOS_AMI ?? 'ami-0123456789abcdef0',
        sshPublicKey: env.CDKTF_NIXOS_SSH_PUBLIC_KEY ?? 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4N8sVspYasBq6pJ6B3joKVObN/1NILlYhF9agYlBkt example-only',
        privateKeyFile: env.CDKTF_NIXOS_SSH_KEY_FILE,
        extraPorts: [8080],
      },
      settings: { binaryCache: cache },
      facts: { servicePort: 8080 },
    });
  }
}

/** Adds the stacks selected by CDKTF_NIXOS_STACKS (default: both) to the app. */
export function buildApp(app: App, stacks = (process.env.CDKTF_NIXOS_STACKS ?? 'local,aws').split(',')): App {
  if (stacks.includes('local')) new LocalStack(app, 'local');
  if (stacks.includes('aws')) new AwsStack(app, 'aws');
  return app;
}

if (require.main === module) buildApp(new App()).synth();
