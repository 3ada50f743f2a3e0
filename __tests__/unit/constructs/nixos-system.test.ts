import * as path from 'path';
import { Fn, TerraformOutput, TerraformStack, Testing, Token } from 'cdktf';
import { NixosProvider, NixosSystem, NixosSystemProps, SystemResource } from '../../../lib';
import { CACHE_PUBLIC_KEY, HOST_KEY, onlyResource, STORE_PATH, synthJson } from './setup';

const base: NixosSystemProps = { flake: '/srv/infra#web', host: '10.0.0.5' };

function system(props: Partial<NixosSystemProps>, omit: (keyof NixosSystemProps)[] = []): { [key: string]: any } {
  return onlyResource(
    synthJson((scope) => {
      const all = { ...base, ...props } as { [key: string]: unknown };
      for (const k of omit) delete all[k];
      new NixosSystem(scope, 'web', all as unknown as NixosSystemProps);
    }),
    'nixos_system',
  );
}

function error(props: Partial<NixosSystemProps>, omit: (keyof NixosSystemProps)[] = []): string {
  try {
    system(props, omit);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a validation error');
}

describe('NixosSystem props', () => {
  it('synthesizes the minimal system with the stack provider', () => {
    const json = synthJson((scope) => new NixosSystem(scope, 'web', base));
    expect(JSON.stringify(json)).toHaveResourceWithProperties(SystemResource, { flake: '/srv/infra#web', host: '10.0.0.5', provider: 'nixos' });
    expect(JSON.stringify(json)).toHaveProvider(NixosProvider);
    const r = onlyResource(json, 'nixos_system');
    expect(Object.keys(r).filter((k) => k !== '//').sort()).toEqual(['flake', 'host', 'provider']);
  });

  it('passes every prop in snake_case', () => {
    const r = system({
      port: 2222,
      user: 'deploy',
      privateKeyFile: '/root/.ssh/id_ed25519',
      hostKey: HOST_KEY,
      bastion: { host: 'jump', port: 22, user: 'j', privateKeyFile: '/k', hostKey: HOST_KEY },
      specialArgs: { db: { host: '10.0.0.6', port: 5432 }, flags: [true, null] },
      keys: { 'db-password': { file: '/secrets/db', destDir: '/run/keys', user: 'postgres', group: 'postgres', permissions: '0400' } },
      action: 'boot',
      buildOn: 'target',
      healthChecks: [{ command: 'systemctl is-active nginx', retries: 3, intervalSeconds: 2, timeoutSeconds: 5 }, { http: { url: 'http://10.0.0.5/', expectStatus: 204 } }],
      magicRollback: { timeoutSeconds: 45 },
      substituteOnTarget: true,
      binaryCache: { uri: 'file:///srv/cache', substituterUri: 'http://cache:8080', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '/etc/cache.sec' },
      keepGenerations: 5,
      connectTimeoutSeconds: 30,
      activationTimeoutSeconds: 900,
      lockWaitSeconds: 60,
    });
    expect(r).toMatchObject({
      port: 2222,
      user: 'deploy',
      private_key_file: '/root/.ssh/id_ed25519',
      host_key: HOST_KEY,
      bastion: { host: 'jump', port: 22, user: 'j', private_key_file: '/k', host_key: HOST_KEY },
      special_args: { db: { host: '10.0.0.6', port: 5432 }, flags: [true, null] },
      keys: { 'db-password': { file: '/secrets/db', dest_dir: '/run/keys', user: 'postgres', group: 'postgres', permissions: '0400' } },
      action: 'boot',
      build_on: 'target',
      health_checks: [
        { command: 'systemctl is-active nginx', retries: 3, interval_seconds: 2, timeout_seconds: 5 },
        { http_url: 'http://10.0.0.5/', expect_status: 204 },
      ],
      magic_rollback_seconds: 45,
      substitute_on_target: true,
      binary_cache: { uri: 'file:///srv/cache', substituter_uri: 'http://cache:8080', public_key: CACHE_PUBLIC_KEY, secret_key_file: '/etc/cache.sec' },
      keep_generations: 5,
      connect_timeout_seconds: 30,
      activation_timeout_seconds: 900,
      lock_wait_seconds: 60,
    });
  });

  it('takes a store path instead of a flake', () => {
    expect(system({ storePath: STORE_PATH }, ['flake'])).toMatchObject({ store_path: STORE_PATH });
  });

  it('turns magicRollback: false into 0', () => {
    expect(system({ magicRollback: false }).magic_rollback_seconds).toBe(0);
  });

  it('keys from a command or a write-only text', () => {
    const r = system({ keys: { a: { command: 'pass show a' }, b: { textWo: 'hunter2', textWoVersion: 2 } } });
    expect(r.keys).toEqual({ a: { command: 'pass show a' }, b: { text_wo: 'hunter2', text_wo_version: 2 } });
  });

  it('makes relative flake and file paths absolute (Terraform runs in the stack folder)', () => {
    const r = system({
      flake: './infra#web',
      privateKeyFile: 'keys/id',
      keys: { a: { file: 'secrets/a' } },
      bastion: { host: 'j', privateKeyFile: 'keys/j' },
      binaryCache: { uri: 'file:///c', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: 'cache.sec' },
    });
    expect(r.flake).toBe(`${path.resolve('infra')}#web`);
    expect(r.private_key_file).toBe(path.resolve('keys/id'));
    expect(r.keys.a.file).toBe(path.resolve('secrets/a'));
    expect(r.bastion.private_key_file).toBe(path.resolve('keys/j'));
    expect(r.binary_cache.secret_key_file).toBe(path.resolve('cache.sec'));
    expect(system({ flake: 'github:me/infra#web', privateKeyFile: '~/.ssh/id' })).toMatchObject({ flake: 'github:me/infra#web', private_key_file: '~/.ssh/id' });
  });

  it('accepts tokens in special args (another machine\'s address) and host', () => {
    const json = synthJson((scope) => {
      const db = new NixosSystem(scope, 'db', { flake: '/f#db', host: '10.0.0.6' });
      new NixosSystem(scope, 'web', { flake: '/f#web', host: Fn.lower('WEB'), specialArgs: { dbClosure: db.closurePath, gen: db.generation } });
    });
    const web = Object.values(json.resource.nixos_system as object).find((r) => r.flake === '/f#web');
    expect(web.special_args).toEqual({ dbClosure: '${nixos_system.db_ECC37780.closure_path}', gen: '${nixos_system.db_ECC37780.generation}' });
    expect(web.host).toBe('${lower("WEB")}');
  });

  it('exposes closurePath, generation, drvPath, hostKeySeen and the resource', () => {
    const stack = new TerraformStack(Testing.app(), 's');
    const web = new NixosSystem(stack, 'web', base);
    expect(web.resource).toBeInstanceOf(SystemResource);
    new TerraformOutput(stack, 'closure', { value: web.closurePath });
    new TerraformOutput(stack, 'generation', { value: web.generation });
    new TerraformOutput(stack, 'drv', { value: web.drvPath });
    new TerraformOutput(stack, 'seen', { value: web.hostKeySeen });
    const out = JSON.parse(Testing.synth(stack)).output;
    const id = web.resource.friendlyUniqueId;
    expect(out.closure.value).toBe(`\${nixos_system.${id}.closure_path}`);
    expect(out.generation.value).toBe(`\${nixos_system.${id}.generation}`);
    expect(out.drv.value).toBe(`\${nixos_system.${id}.drv_path}`);
    expect(out.seen.value).toBe(`\${nixos_system.${id}.host_key_seen}`);
  });

  it('uses a given provider, and keeps construct ids stable', () => {
    const stack = new TerraformStack(Testing.app(), 's');
    const provider = new NixosProvider(stack, 'p', { alias: 'lab' });
    const web = new NixosSystem(stack, 'web', { ...base, provider, dependsOn: [] });
    expect(web.resource.node.path).toBe('s/web/Resource');
    const r = onlyResource(JSON.parse(Testing.synth(stack)), 'nixos_system');
    expect(r.provider).toBe('nixos.lab');
  });
});

describe('NixosSystem validation', () => {
  const cases: [string, Partial<NixosSystemProps>, (keyof NixosSystemProps)[], RegExp][] = [
    ['both flake and storePath', { storePath: STORE_PATH }, [], /NixosSystem stack\/web: give either flake or storePath, not both \(flake "\/srv\/infra#web", storePath ".*"\)\. Remove one of them\./],
    ['neither flake nor storePath', {}, ['flake'], /neither flake nor storePath is set\. Set flake to "PATH#NAME"/],
    ['a flake without #name', { flake: './infra' }, [], /flake "\.\/infra" names no configuration\. Write it as PATH#NAME, e\.g\. "\.\/infra#web"/],
    ['a flake with an empty name', { flake: './infra#' }, [], /flake "\.\/infra#" names no configuration/],
    ['a malformed storePath', { storePath: '/tmp/result' }, ['flake'], /storePath "\/tmp\/result" is not a Nix store path\. Give \/nix\/store\/HASH-NAME/],
    ['a storePath with a bad hash', { storePath: '/nix/store/eeee-x' }, ['flake'], /storePath "\/nix\/store\/eeee-x" is not a Nix store path/],
    ['an empty host', { host: ' ' }, [], /host is empty\. Give the address/],
    ['port 0', { port: 0 }, [], /port 0 is not a TCP port\. Use an integer from 1 to 65535/],
    ['port 65536', { port: 65536 }, [], /port 65536 is not a TCP port/],
    ['port 22.5', { port: 22.5 }, [], /port 22\.5 is not a TCP port/],
    ['a bad hostKey', { hostKey: 'AAAA' }, [], /hostKey "AAAA" is not an SSH public key\. Give "TYPE BASE64"/],
    ['an empty bastion host', { bastion: { host: '' } }, [], /bastion\.host is empty/],
    ['a bastion port out of range', { bastion: { host: 'j', port: 70000 } }, [], /bastion\.port 70000 is not a TCP port/],
    ['a bad bastion hostKey', { bastion: { host: 'j', hostKey: 'x' } }, [], /bastion\.hostKey "x" is not an SSH public key/],
    ['an unknown action', { action: 'reboot' as never }, [], /action "reboot" is unknown\. Use one of "switch", "boot", "test"\./],
    ['an unknown buildOn', { buildOn: 'remote' as never }, [], /buildOn "remote" is unknown\. Use one of "local", "target"\./],
    ['a key without source', { keys: { db: {} } }, [], /key "db" has no source\. Set exactly one of file, command or textWo\./],
    ['a key with several sources', { keys: { db: { file: '/a', command: 'b' } } }, [], /key "db" has several sources \(file, command\)\. Set exactly one/],
    ['a key with all sources', { keys: { db: { file: '/a', command: 'b', textWo: 'c' } } }, [], /several sources \(file, command, textWo\)/],
    ['bad permissions', { keys: { db: { file: '/a', permissions: '0999' } } }, [], /key "db" has permissions "0999", which is not an octal mode\. Use e\.g\. "0400"/],
    ['symbolic permissions', { keys: { db: { file: '/a', permissions: 'u+r' } } }, [], /permissions "u\+r"/],
    ['a relative destDir', { keys: { db: { file: '/a', destDir: 'run/keys' } } }, [], /key "db" has destDir "run\/keys", which is not an absolute path/],
    ['a key name with a slash', { keys: { 'a/b': { file: '/a' } } }, [], /key name "a\/b" is not a file name/],
    ['a key named ..', { keys: { '..': { file: '/a' } } }, [], /key name "\.\." is not a file name/],
    ['a health check with neither', { healthChecks: [{ retries: 1 }] }, [], /healthChecks\[0\] has neither command nor http\. Give exactly one/],
    ['a health check with both', { healthChecks: [{ command: 'true' }, { command: 'true', http: { url: 'http://x/' } }] }, [], /healthChecks\[1\] has both command and http\. Split it into two checks\./],
    ['a health check URL that is not http', { healthChecks: [{ http: { url: 'ftp://x' } }] }, [], /healthChecks\[0\]\.http\.url "ftp:\/\/x" is not an http\(s\) URL/],
    ['a bad expectStatus', { healthChecks: [{ http: { url: 'http://x/', expectStatus: 42 } }] }, [], /healthChecks\[0\]\.http\.expectStatus 42 is not an HTTP status/],
    ['negative retries', { healthChecks: [{ command: 'true', retries: -1 }] }, [], /healthChecks\[0\]\.retries -1 must be a whole number of zero or more/],
    ['fractional retries', { healthChecks: [{ command: 'true', retries: 1.5 }] }, [], /healthChecks\[0\]\.retries 1\.5 must be a whole number/],
    ['a zero interval', { healthChecks: [{ command: 'true', intervalSeconds: 0 }] }, [], /healthChecks\[0\]\.intervalSeconds 0 must be a positive number of seconds, for example 1\./],
    ['a zero check timeout', { healthChecks: [{ command: 'true', timeoutSeconds: 0 }] }, [], /healthChecks\[0\]\.timeoutSeconds 0 must be a positive number of seconds, for example 10\./],
    ['a zero magic rollback timeout', { magicRollback: { timeoutSeconds: 0 } }, [], /magicRollback\.timeoutSeconds 0 must be a positive number of seconds, for example 30, or magicRollback: false to turn it off\./],
    ['a negative connect timeout', { connectTimeoutSeconds: -1 }, [], /connectTimeoutSeconds -1 must be a positive number of seconds, for example 20\./],
    ['a zero activation timeout', { activationTimeoutSeconds: 0 }, [], /activationTimeoutSeconds 0 must be a positive number of seconds, for example 600\./],
    ['a negative lock wait', { lockWaitSeconds: -5 }, [], /lockWaitSeconds -5 must be a number of zero or more; use 0 to fail at once/],
    ['keepGenerations 0', { keepGenerations: 0 }, [], /keepGenerations 0 must be a whole number of at least 1/],
    ['a binary cache URI that is not a store', { binaryCache: { uri: '/srv/cache', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '/k' } }, [], /binaryCache\.uri "\/srv\/cache" is not a Nix store URI\. Use file:\/\/\/PATH/],
    ['a bad substituterUri', { binaryCache: { uri: 'file:///c', substituterUri: 'cache', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '/k' } }, [], /binaryCache\.substituterUri "cache" is not a Nix store URI/],
    ['a bad cache public key', { binaryCache: { uri: 'file:///c', publicKey: 'nokey', secretKeyFile: '/k' } }, [], /binaryCache\.publicKey "nokey" is not a Nix public key\. Give "NAME:BASE64", as printed by `cdktf-nixos cache-key generate/],
    ['an empty secretKeyFile', { binaryCache: { uri: 'file:///c', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '' } }, [], /binaryCache\.secretKeyFile is empty\. Give the path of the signing key file/],
    ['key material as secretKeyFile', { binaryCache: { uri: 'file:///c', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: 'cache-1:c2VjcmV0' } }, [], /binaryCache\.secretKeyFile looks like a key, not a file path/],
  ];

  it.each(cases)('rejects %s', (_name, props, omit, message) => {
    expect(error(props, omit)).toMatch(message);
  });

  it('never prints key material it refuses', () => {
    expect(error({ binaryCache: { uri: 'file:///c', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: 'cache-1:c2VjcmV0' } })).not.toContain('c2VjcmV0');
  });

  it('skips checks of unresolved tokens', () => {
    const r = system({
      flake: Token.asString(Fn.lower('X')),
      host: Token.asString(Fn.lower('H')),
      port: Token.asNumber(Fn.parseint('99999', 10)),
      hostKey: Fn.lower('k'),
      bastion: { host: Fn.lower('j'), port: Token.asNumber(Fn.parseint('0', 10)), hostKey: Fn.lower('k') },
      action: Fn.lower('X') as never,
      buildOn: Fn.lower('X') as never,
      keys: { db: { file: '/a', permissions: Fn.lower('999'), destDir: Fn.lower('rel') } },
      healthChecks: [{ http: { url: Fn.lower('x'), expectStatus: Token.asNumber(Fn.parseint('1', 10)) }, retries: Token.asNumber(Fn.parseint('-1', 10)), intervalSeconds: Token.asNumber(Fn.parseint('0', 10)), timeoutSeconds: Token.asNumber(Fn.parseint('0', 10)) }],
      magicRollback: { timeoutSeconds: Token.asNumber(Fn.parseint('0', 10)) },
      keepGenerations: Token.asNumber(Fn.parseint('0', 10)),
      connectTimeoutSeconds: Token.asNumber(Fn.parseint('0', 10)),
      activationTimeoutSeconds: Token.asNumber(Fn.parseint('0', 10)),
      lockWaitSeconds: Token.asNumber(Fn.parseint('-1', 10)),
      binaryCache: { uri: Fn.lower('x'), substituterUri: Fn.lower('y'), publicKey: Fn.lower('k'), secretKeyFile: Fn.lower('s') },
    });
    expect(r.flake).toBe('${lower("X")}');
    expect(r.port).toBe('${parseint("99999", 10)}');
    expect(r.binary_cache.secret_key_file).toBe('${lower("s")}');
    expect(system({ storePath: Fn.lower('x') }, ['flake']).store_path).toBe('${lower("x")}');
  });
});
