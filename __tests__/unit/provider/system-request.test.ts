import { CtyObject, isUnknown } from '../../../providers/nixos/protocol/cty-types';
import { impliedType, nullWriteOnly, schemaToProto } from '../../../providers/nixos/protocol/schema';
import { decodeMsgpack, encodeMsgpack } from '../../../providers/nixos/protocol/cty';
import { deployRequestOf, hashKeys, keySpecs, systemResource, systemSchema } from '../../../providers/nixos/resource-system';
import { settings } from '../../../providers/nixos/settings';

const ctx = { signal: new AbortController().signal };
const STORE = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-x';

function object(values: CtyObject): CtyObject {
  const o: CtyObject = {};
  for (const name of Object.keys(systemSchema.block.attributes!)) o[name] = null;
  return { ...o, health_checks: [], keys: {}, bastion: null, binary_cache: null, ...values };
}
function key(values: CtyObject): CtyObject {
  return { file: null, command: null, text_wo: null, text_wo_version: null, dest_dir: null, user: null, group: null, permissions: null, ...values };
}

describe('nixos_system: attributes to the engine request', () => {
  afterEach(() => {
    for (const k of Object.keys(settings) as (keyof typeof settings)[]) delete settings[k];
  });

  it('declares bastion and binary_cache as single nested blocks, and text_wo as write-only', () => {
    const proto = schemaToProto(systemSchema) as { block: { block_types: { type_name: string; nesting: string; block: { attributes: { name: string; write_only: boolean }[] } }[] } };
    const nesting = Object.fromEntries(proto.block.block_types.map((b) => [b.type_name, b.nesting]));
    expect(nesting).toMatchObject({ bastion: 'SINGLE', binary_cache: 'SINGLE', keys: 'MAP', health_checks: 'LIST' });
    const keys = proto.block.block_types.find((b) => b.type_name === 'keys')!.block.attributes;
    expect(keys.filter((a) => a.write_only).map((a) => a.name)).toEqual(['text_wo']);
  });

  it('maps every attribute, including bastion, binary cache, substitution and timeouts', () => {
    settings.sshUser = 'deploy';
    settings.privateKeyFile = '/keys/default';
    settings.knownHostsFile = '/kh';
    const planned = object({
      host: '10.0.0.5',
      port: 2222,
      store_path: STORE,
      closure_path: STORE,
      drv_path: null,
      action: 'boot',
      build_on: 'target',
      magic_rollback_seconds: 0,
      keep_generations: 3,
      substitute_on_target: true,
      connect_timeout_seconds: 7,
      activation_timeout_seconds: 90,
      lock_wait_seconds: 12,
      bastion: { host: 'jump.example', port: 2200, user: 'jumper', private_key_file: '/keys/jump', host_key: 'ssh-ed25519 JUMP' },
      binary_cache: { uri: 'file:///cache', substituter_uri: 'http://cache:8080', public_key: 'cache-1:AAAA', secret_key_file: '/keys/cache' },
    });
    const request = deployRequestOf(planned, planned, 'ssh-ed25519 SEEN');
    expect(request).toEqual({
      target: {
        host: '10.0.0.5',
        port: 2222,
        user: 'deploy',
        privateKeyFile: '/keys/default',
        hostKey: 'ssh-ed25519 SEEN',
        bastion: { host: 'jump.example', port: 2200, user: 'jumper', privateKeyFile: '/keys/jump', hostKey: 'ssh-ed25519 JUMP' },
        knownHostsFile: '/kh',
        connectTimeoutSeconds: 7,
      },
      system: { storePath: STORE },
      action: 'boot',
      buildOn: 'target',
      keys: {},
      healthChecks: [],
      magicRollback: false,
      keepGenerations: 3,
      substituteOnTarget: true,
      binaryCache: { uri: 'file:///cache', substituterUri: 'http://cache:8080', publicKey: 'cache-1:AAAA', secretKeyFile: '/keys/cache' },
      activationTimeoutSeconds: 90,
      lockWaitSeconds: 12,
    });
  });

  it('leaves unset options to the engine defaults; a bastion takes the provider block credentials', () => {
    settings.privateKeyFile = '/keys/default';
    const planned = object({ host: 'h', store_path: STORE, closure_path: STORE, bastion: { host: 'j', port: null, user: null, private_key_file: null, host_key: null } });
    const request = deployRequestOf(planned, planned);
    expect(request.target.bastion).toEqual({ host: 'j', port: undefined, user: undefined, privateKeyFile: '/keys/default', hostKey: undefined });
    expect(request.target.connectTimeoutSeconds).toBe(20);
    for (const name of ['substituteOnTarget', 'binaryCache', 'activationTimeoutSeconds', 'lockWaitSeconds', 'magicRollback']) expect(request).not.toHaveProperty(name);
    const noBastion = deployRequestOf(object({ host: 'h', store_path: STORE, closure_path: STORE }), null);
    expect(noBastion.target).not.toHaveProperty('bastion');
  });

  it('takes write-only key text from config only, and hashes its version, never its text', async () => {
    const planned = object({ host: 'h', store_path: STORE, closure_path: STORE, keys: { db: key({ text_wo_version: 1, permissions: '0400' }) } });
    const config = { ...planned, keys: { db: key({ text_wo: 's3cret', text_wo_version: 1, permissions: '0400' }) } };
    expect(deployRequestOf(planned, config).keys).toEqual({ db: { text: 's3cret', destDir: undefined, user: undefined, group: undefined, permissions: '0400' } });
    expect(deployRequestOf(planned, null).keys!.db).not.toHaveProperty('text');
    const withText = await hashKeys(keySpecs(planned, config));
    expect(withText).toBe(await hashKeys(keySpecs(planned, null)));
    expect(withText).not.toBe(await hashKeys(keySpecs({ ...planned, keys: { db: key({ text_wo_version: 2, permissions: '0400' }) } })));
  });

  it('validates the key sources with text_wo', async () => {
    const config = object({ host: 'h', flake: '/x#y', keys: { a: key({ text_wo: 'x' }), b: key({ text_wo: 'x', file: '/f' }), c: key({ text_wo_version: 1 }) } });
    const diags = await systemResource.validate!(config, ctx);
    expect(diags.map((d) => d.path)).toEqual([['keys', { key: 'b' }], ['keys', { key: 'c' }], ['keys', { key: 'c' }, 'text_wo_version']]);
  });

  it('never lets a write-only value into a planned state, whatever Terraform proposes', async () => {
    const proposed = object({ host: 'h', store_path: STORE, keys: { db: key({ text_wo: 's3cret', text_wo_version: 1 }) } });
    const cleaned = nullWriteOnly(systemSchema.block, proposed);
    expect((cleaned.keys as { db: CtyObject }).db.text_wo).toBeNull();
    expect((proposed.keys as { db: CtyObject }).db.text_wo).toBe('s3cret');
    const { planned, diagnostics } = await systemResource.plan!({ prior: null, proposed: cleaned, config: proposed, priorPrivate: Buffer.alloc(0) }, ctx);
    expect(diagnostics).toEqual([]);
    expect(isUnknown(planned!.generation)).toBe(true);
    expect(JSON.stringify(planned)).not.toContain('s3cret');
    // The single nested blocks travel through the codec, null and set.
    const type = impliedType(systemSchema.block);
    const withBlocks = { ...planned!, generation: null, id: null, host_key_seen: null, bastion: { host: 'j', port: 22, user: null, private_key_file: null, host_key: null } };
    expect(decodeMsgpack(encodeMsgpack(withBlocks, type), type)).toEqual(withBlocks);
  });
});
