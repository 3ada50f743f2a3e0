import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CtyDynamic, CtyObject, isUnknown, UNKNOWN } from '../../../providers/nixos/protocol/cty-types';
import { plannedFetches } from '../../../providers/nixos/planned-fetches';
import { hashKeys, readKeys, systemResource, systemSchema } from '../../../providers/nixos/resource-system';
import { settings } from '../../../providers/nixos/settings';
import { canonical, toJson } from '../../../providers/nixos/values';

const ctx = { signal: new AbortController().signal };

function object(values: CtyObject): CtyObject {
  const o: CtyObject = {};
  for (const name of Object.keys(systemSchema.block.attributes!)) o[name] = null;
  return { ...o, health_checks: [], keys: {}, ...values };
}

describe('nixos_system without hosts', () => {
  it('plans the closure as known after apply when special args are unknown, without evaluating', async () => {
    const proposed = object({ flake: '/nowhere#web', host: '10.0.0.1', special_args: new CtyDynamic(['object', { peer: 'string' }], { peer: UNKNOWN }) });
    const { planned, diagnostics } = await systemResource.plan!({ prior: null, proposed, config: proposed, priorPrivate: Buffer.alloc(0) }, ctx);
    expect(diagnostics).toEqual([]);
    expect(isUnknown(planned!.closure_path)).toBe(true);
    expect(isUnknown(planned!.drv_path)).toBe(true);
    expect(isUnknown(planned!.generation)).toBe(true);
    expect(planned!.keys_hash).toBeNull();
  });

  it('plans a store path as given; only a change of host replaces', async () => {
    const storePath = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-x';
    const prior = object({ id: 'a:22', store_path: storePath, host: 'a', closure_path: storePath, generation: 3, host_key_seen: 'ssh-ed25519 AAAA' });
    const same = await systemResource.plan!({ prior, proposed: { ...prior }, config: prior, priorPrivate: Buffer.alloc(0) }, ctx);
    expect(canonical(same.planned!)).toBe(canonical(prior));
    expect(same.requiresReplace).toBeUndefined();
    const moved = await systemResource.plan!({ prior, proposed: { ...prior, host: 'b' }, config: prior, priorPrivate: Buffer.alloc(0) }, ctx);
    expect(moved.requiresReplace).toEqual([['host']]);
    const ported = await systemResource.plan!({ prior, proposed: { ...prior, port: 2222 }, config: prior, priorPrivate: Buffer.alloc(0) }, ctx);
    expect(ported.requiresReplace ?? []).toEqual([]);
    expect(isUnknown(ported.planned!.generation)).toBe(true);
  });

  it('rejects a configuration with both flake and store_path, and keys without a source', async () => {
    const config = object({ flake: '/x#y', store_path: '/nix/store/x', host: 'a', keys: { db: { file: null, command: null, dest_dir: null, user: null, group: null, permissions: null } } });
    const diags = await systemResource.validate!(config, ctx);
    expect(diags.map((d) => d.path)).toEqual([['flake'], ['keys', { key: 'db' }]]);
  });

  it('refuses dry-activate as a resource action, since the state would name a system the host does not run', async () => {
    const diags = await systemResource.validate!(object({ flake: '/x#y', host: 'a', action: 'dry-activate' }), ctx);
    expect(diags.map((d) => [d.summary, d.path])).toEqual([['action "dry-activate" cannot be a resource\'s action', ['action']]]);
    expect(diags[0].detail).toMatch(/cdktf-nixos deploy --action dry-activate/);
  });

  it('hashes keys without keeping their content, and the hash follows the content', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-keys-'));
    const file = path.join(dir, 'secret');
    fs.writeFileSync(file, 'hunter2');
    const first = await hashKeys({ db: { file } });
    expect(first).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await hashKeys({ db: { command: 'printf hunter2' } })).toBe(first);
    fs.writeFileSync(file, 'hunter3');
    expect(await hashKeys({ db: { file } })).not.toBe(first);
    expect(await hashKeys({})).toBeNull();
    // Apply reads a command key once: the bytes it hashes are the bytes it uploads.
    const runs = path.join(dir, 'runs');
    const read = await readKeys({ db: { command: `echo run >> ${runs}; printf hunter2`, permissions: '0400' } });
    expect(fs.readFileSync(runs, 'utf8')).toBe('run\n');
    expect(read.db).toEqual({ content: Buffer.from('hunter2'), permissions: '0400', destDir: undefined, user: undefined, group: undefined });
    fs.rmSync(dir, { recursive: true });
  });

  it('turns dynamic values into JSON', () => {
    expect(toJson(new CtyDynamic(['object', { a: 'number', b: ['tuple', ['string', 'bool']] }], { a: 3n, b: ['x', true] }))).toEqual({ a: 3, b: ['x', true] });
  });

  it('notes what a host will fetch from its binary cache when the plan changes its closure, and drops the note when nothing changes', async () => {
    settings.evalCacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-notes-'));
    try {
      const storePath = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-x';
      const binary_cache = { uri: 'http://cache.example', substituter_uri: null, public_key: 'c-1:AAAA', secret_key_file: '/keys/c.sec' };
      const proposed = object({ store_path: storePath, host: '10.0.0.9', binary_cache });
      const plan = (prior: CtyObject | null, p: CtyObject) => systemResource.plan!({ prior, proposed: p, config: p, priorPrivate: Buffer.alloc(0) }, ctx);
      await plan(null, proposed);
      const [note] = plannedFetches(settings.evalCacheDir, storePath, 'http://cache.example');
      expect(note.target).toMatchObject({ host: '10.0.0.9' });
      expect(note.closure).toEqual({ outPath: storePath });
      expect(note.cache).toEqual({ uri: 'http://cache.example', publicKey: 'c-1:AAAA', secretKeyFile: '/keys/c.sec' });

      // Applied: the host runs it, and the next plan changes nothing.
      const prior = object({ ...proposed, id: '10.0.0.9:22', closure_path: storePath, generation: 1 });
      await plan(prior, { ...prior });
      expect(plannedFetches(settings.evalCacheDir, storePath, 'http://cache.example')).toEqual([]);

      // A host known only after apply cannot be noted.
      await plan(null, { ...proposed, host: UNKNOWN });
      expect(plannedFetches(settings.evalCacheDir, storePath, 'http://cache.example')).toEqual([]);
    } finally {
      fs.rmSync(settings.evalCacheDir!, { recursive: true, force: true });
      delete settings.evalCacheDir;
    }
  });
});
