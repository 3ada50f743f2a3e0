import { Testing, TerraformOutput, TerraformStack } from 'cdktf';
import { closureDataSource } from '../../../providers/nixos/data-closure';
import { providerSchema } from '../../../providers/nixos/settings';
import { systemSchema } from '../../../providers/nixos/resource-system';
import { BlockSchema } from '../../../providers/nixos/protocol/schema';
import { ClosureDataSource, NixosProvider, SystemResource } from '../../../lib/provider';
import { CACHE_PUBLIC_KEY, HOST_KEY, synthJson } from './setup';

/** Every name a value of the binding uses, checked against a block schema: `path: name` of each unknown one. */
function unknownNames(value: { [key: string]: unknown }, block: BlockSchema, where: string, meta: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(value)) {
    if (meta.includes(name)) continue;
    const attribute = block.attributes?.[name];
    const nested = block.blocks?.[name];
    if (attribute) {
      if (attribute.computed && !attribute.optional && !attribute.required) out.push(`${where}.${name} (computed only)`);
      continue;
    }
    if (!nested) {
      out.push(`${where}.${name}`);
      continue;
    }
    const items =
      nested.nesting === 'map' ? Object.values(v as object) : nested.nesting === 'list' || nested.nesting === 'set' ? (v as unknown[]) : [v];
    for (const item of items) out.push(...unknownNames(item as { [key: string]: unknown }, nested.block, `${where}.${name}`));
  }
  return out;
}

const META = ['//', 'provider', 'depends_on', 'count', 'lifecycle', 'for_each', 'connection', 'provisioner'];

/** A resource with every attribute and block the binding can emit. */
function everything(): { [key: string]: any } {
  return synthJson((scope) => {
    new NixosProvider(scope, 'nixos', {
      sshUser: 'deploy',
      privateKeyFile: '/k',
      agentSocket: '/agent',
      knownHostsFile: '/kh',
      evalCacheDir: '/cache',
    });
    new SystemResource(scope, 'all', {
      flake: '/f#web',
      storePath: '/nix/store/x',
      specialArgs: { a: 1 },
      host: 'h',
      port: 22,
      user: 'root',
      privateKeyFile: '/k',
      hostKey: HOST_KEY,
      action: 'switch',
      buildOn: 'local',
      magicRollbackSeconds: 30,
      keepGenerations: 10,
      substituteOnTarget: true,
      connectTimeoutSeconds: 20,
      activationTimeoutSeconds: 600,
      lockWaitSeconds: 5,
      bastion: { host: 'b', port: 2222, user: 'jump', privateKeyFile: '/bk', hostKey: HOST_KEY },
      binaryCache: { uri: 'file:///c', substituterUri: 'http://c', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '/c.sec' },
      healthChecks: [
        { command: 'true', retries: 1, intervalSeconds: 1, timeoutSeconds: 1 },
        { httpUrl: 'http://h/', expectStatus: 200 },
      ],
      keys: { db: { file: '/s', command: 'c', textWo: 't', textWoVersion: 1, destDir: '/run/keys', user: 'u', group: 'g', permissions: '0400' } },
    });
    new ClosureDataSource(scope, 'closure', { flake: '/f#web', specialArgs: { a: 1 }, build: true });
  });
}

describe('the nixos provider binding', () => {
  const json = everything();

  it('emits only names the provider schema knows (nixos_system, nixos_closure, provider block)', () => {
    expect(unknownNames({ bogus: 1 }, systemSchema.block, 'x')).toEqual(['x.bogus']); // the check itself works
    const resource = json.resource.nixos_system.all;
    expect(unknownNames(resource, systemSchema.block, 'nixos_system', META)).toEqual([]);
    expect(unknownNames(json.data.nixos_closure.closure, closureDataSource.schema.block, 'nixos_closure', META)).toEqual([]);
    expect(unknownNames(json.provider.nixos[0], providerSchema.block, 'provider', ['alias'])).toEqual([]);
  });

  it('covers every configurable name of the schema', () => {
    const configurable = (block: BlockSchema) => [
      ...Object.entries(block.attributes ?? {}).filter(([, a]) => a.optional || a.required).map(([n]) => n),
      ...Object.keys(block.blocks ?? {}),
    ];
    const resource = json.resource.nixos_system.all;
    expect(configurable(systemSchema.block).filter((n) => !(n in resource))).toEqual([]);
    for (const [name, nested] of Object.entries(systemSchema.block.blocks ?? {})) {
      const sample = nested.nesting === 'map' ? Object.values(resource[name])[0] : nested.nesting === 'list' ? resource[name][0] : resource[name];
      const given = nested.nesting === 'list' ? Object.assign({}, ...resource[name]) : sample;
      expect({ block: name, missing: configurable(nested.block).filter((n) => !(n in (given as object))) }).toEqual({ block: name, missing: [] });
    }
    expect(configurable(providerSchema.block).filter((n) => !(n in json.provider.nixos[0]))).toEqual([]);
  });

  it('names the provider by its source address', () => {
    expect(json.terraform.required_providers.nixos).toEqual({ source: 'cdktf-nixos/nixos', version: '~> 0.1' });
    expect(JSON.stringify(json)).toHaveProviderWithProperties(NixosProvider, { ssh_user: 'deploy', known_hosts_file: '/kh' });
    expect(JSON.stringify(json)).toHaveDataSourceWithProperties(ClosureDataSource, { flake: '/f#web', build: true });
  });

  it('maps camelCase to snake_case, blocks included', () => {
    const r = json.resource.nixos_system.all;
    expect(r.bastion).toEqual({ host: 'b', port: 2222, user: 'jump', private_key_file: '/bk', host_key: HOST_KEY });
    expect(r.binary_cache).toEqual({ uri: 'file:///c', substituter_uri: 'http://c', public_key: CACHE_PUBLIC_KEY, secret_key_file: '/c.sec' });
    expect(r.health_checks[1]).toEqual({ http_url: 'http://h/', expect_status: 200 });
    expect(r.keys.db).toMatchObject({ text_wo: 't', text_wo_version: 1, dest_dir: '/run/keys' });
  });

  it('exposes computed attributes as references', () => {
    const stack = new TerraformStack(Testing.app(), 'refs');
    const r = new SystemResource(stack, 'web', { host: 'h', flake: '/f#web' });
    const d = new ClosureDataSource(stack, 'c', { flake: '/f#web' });
    const refs = { closure: r.closurePath, drv: r.drvPath, generation: r.generation, seen: r.hostKeySeen, keys: r.keysHash, id: r.id, out: d.outPath, dDrv: d.drvPath, size: d.closureSize };
    for (const [name, value] of Object.entries(refs)) new TerraformOutput(stack, name, { value });
    const outputs = JSON.parse(Testing.synth(stack)).output;
    expect(Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, (v as { value: unknown }).value]))).toEqual({
      closure: '${nixos_system.web.closure_path}',
      drv: '${nixos_system.web.drv_path}',
      generation: '${nixos_system.web.generation}',
      seen: '${nixos_system.web.host_key_seen}',
      keys: '${nixos_system.web.keys_hash}',
      id: '${nixos_system.web.id}',
      out: '${data.nixos_closure.c.out_path}',
      dDrv: '${data.nixos_closure.c.drv_path}',
      size: '${data.nixos_closure.c.closure_size}',
    });
  });

  it('finds or creates the stack default provider, and supports an alias', () => {
    const stack = new TerraformStack(Testing.app(), 's');
    const created = NixosProvider.ofStack(stack);
    expect(NixosProvider.ofStack(stack)).toBe(created);
    const aliased = new NixosProvider(stack, 'other', { alias: 'other' });
    expect(NixosProvider.isNixosProvider(aliased)).toBe(true);
    expect(NixosProvider.isNixosProvider({})).toBe(false);
    const out = JSON.parse(Testing.synth(stack));
    expect(out.provider.nixos).toEqual([{}, { alias: 'other' }]);
  });
});
