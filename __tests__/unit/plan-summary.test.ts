/** plan-summary on hand-made `terraform show -json` plans: parsing, diffing and Markdown, no Nix. */
import { ClosureInfo, diffClosures, parseStoreName, renderSummary, shortStorePath, sizesFromPathInfo, systemChanges, SystemSummary } from '../../lib/plan-summary';

const h = (c: string) => c.repeat(32);
const P = (c: string, name: string) => `/nix/store/${h(c)}-${name}`;

function rc(name: string, actions: string[], before: object | null, after: object | null, afterUnknown: object = {}) {
  return { address: `nixos_system.${name}`, mode: 'managed', type: 'nixos_system', name, provider_config_key: 'nixos', change: { actions, before, after, after_unknown: afterUnknown } };
}
const attrs = (host: string, closure: string | null, extra: object = {}) => ({ host, port: 2222, closure_path: closure, drv_path: null, host_key: null, host_key_seen: 'ssh-ed25519 AAAAKEY', user: null, private_key_file: null, bastion: null, ...extra });

function plan(changes: object[]) {
  return {
    format_version: '1.2',
    resource_changes: [{ address: 'terraform_data.x', mode: 'managed', type: 'terraform_data', change: { actions: ['create'] } }, ...changes],
    configuration: { provider_config: { nixos: { name: 'nixos', expressions: { private_key_file: { constant_value: '/keys/id' }, ssh_user: { constant_value: 'deploy' } } } } },
  };
}

describe('store names', () => {
  test.each([
    ['hello-2.12', 'hello', '2.12'],
    ['openssl-3.0.1', 'openssl', '3.0.1'],
    ['nixos-system-db-1', 'nixos-system-db', '1'],
    ['fixture-base-1', 'fixture-base', '1'],
    ['etc', 'etc', ''],
    ['python3.11-requests-2.31.0', 'python3.11-requests', '2.31.0'],
    ['linux-6.1.55-modules', 'linux', '6.1.55-modules'],
  ])('%s', (name, n, v) => expect(parseStoreName(P('a', name))).toEqual({ name: n, version: v }));

  test('short form keeps 8 characters of the hash', () => {
    expect(shortStorePath(P('k', 'nixos-system-db-1'))).toBe('kkkkkkkk…-nixos-system-db-1');
  });

  test('nix path-info --json: Nix 2.8 array and 2.19+ object give the same sizes', () => {
    const a = sizesFromPathInfo([{ path: P('a', 'x-1'), narSize: 10 }, { path: P('b', 'y-1'), narSize: 20 }]);
    const b = sizesFromPathInfo({ [P('a', 'x-1')]: { narSize: 10 }, [P('b', 'y-1')]: { narSize: 20 }, [P('c', 'gone')]: null });
    expect([...a]).toEqual([...b]);
  });
});

describe('closure diff', () => {
  const info = (root: string, paths: [string, number][]): ClosureInfo => ({ root, sizes: new Map([[root, 1000], ...paths]), source: 'the deployer' });
  const before = info(P('r', 'nixos-system-db-1'), [[P('a', 'hello-2.12'), 4000], [P('b', 'openssl-3.0.1'), 16000], [P('c', 'gone-1.0'), 500], [P('d', 'etc'), 100]]);
  const after = info(P('s', 'nixos-system-db-1'), [[P('e', 'hello-2.13'), 8000], [P('b', 'openssl-3.0.1'), 16000], [P('f', 'new-pkg-0.1'), 300], [P('g', 'etc'), 120]]);

  test('added, removed, changed version, rebuilt, size and path counts', () => {
    const d = diffClosures(before, after);
    expect(d.changed).toEqual([{ name: 'hello', from: '2.12', to: '2.13' }]);
    expect(d.added).toEqual([{ name: 'new-pkg', version: '0.1' }]);
    expect(d.removed).toEqual([{ name: 'gone', version: '1.0' }]);
    expect(d.rebuilt).toEqual(['etc']);
    expect(d.sizeBefore).toBe(21600);
    expect(d.sizeAfter).toBe(25420);
    expect([d.pathsBefore, d.pathsAfter]).toEqual([5, 5]);
  });

  test('renders the update with its contents', () => {
    const [change] = systemChanges(plan([rc('db', ['update'], attrs('10.0.0.6', before.root), attrs('10.0.0.6', after.root))]));
    const md = renderSummary([{ ...change, diff: diffClosures(before, after), oldSource: '10.0.0.6:2222' }], { title: 'Stack `local`' });
    expect(md).toContain('<!-- cdktf-nixos plan-summary -->\n### Stack `local`');
    expect(md).toContain('1 to update; 0 unchanged.');
    expect(md).toContain('| `nixos_system.db` | `10.0.0.6:2222` | update | `rrrrrrrr…-nixos-system-db-1` → `ssssssss…-nixos-system-db-1` |');
    expect(md).toContain('closure 21.1 KiB → 24.8 KiB (+3.7 KiB), 5 → 5 store paths (old closure read from the host)');
    expect(md).toContain('- changed: `hello` 2.12 → 2.13');
    expect(md).toContain('- added: `new-pkg` 0.1');
    expect(md).toContain('- removed: `gone` 1.0');
    expect(md).toContain('- rebuilt, same version: `etc`');
  });
});

describe('reading the plan', () => {
  const json = plan([
    rc('new', ['create'], null, attrs('10.0.0.1', P('n', 'nixos-system-new-1'))),
    rc('up', ['update'], attrs('10.0.0.2', P('o', 'nixos-system-up-1')), attrs('10.0.0.2', P('p', 'nixos-system-up-2'))),
    rc('moved', ['delete', 'create'], attrs('10.0.0.3', P('q', 'nixos-system-m-1')), attrs('10.0.0.4', null), { closure_path: true }),
    rc('gone', ['delete'], attrs('10.0.0.5', P('t', 'nixos-system-g-1')), null),
    ...Array.from({ length: 14 }, (_, i) => rc(`same${i}`, ['no-op'], attrs(`10.1.0.${i}`, P('u', 'nixos-system-s-1')), attrs(`10.1.0.${i}`, P('u', 'nixos-system-s-1')))),
  ]);

  test('actions, closures and SSH settings from prior state and the provider block', () => {
    const changes = systemChanges(json);
    expect(changes.map((c) => [c.address, c.action])).toEqual([
      ['nixos_system.new', 'create'],
      ['nixos_system.up', 'update'],
      ['nixos_system.moved', 'replace'],
      ['nixos_system.gone', 'delete'],
      ...Array.from({ length: 14 }, (_, i) => [`nixos_system.same${i}`, 'no change']),
    ]);
    const up = changes[1];
    expect(up).toMatchObject({ hostLabel: '10.0.0.2:2222', oldClosure: P('o', 'nixos-system-up-1'), newClosure: P('p', 'nixos-system-up-2') });
    expect(up.ssh).toMatchObject({ host: '10.0.0.2', port: 2222, user: 'deploy', privateKeyFile: '/keys/id', hostKey: 'ssh-ed25519 AAAAKEY' });
    expect(changes[0].ssh).toBeUndefined();
    expect(changes[2]).toMatchObject({ newClosureUnknown: true, newClosure: undefined, hostLabel: '10.0.0.4:2222' });
    expect(changes[3]).toMatchObject({ newClosure: undefined, oldClosure: P('t', 'nixos-system-g-1') });
  });

  test('Markdown: one row per changed system, unchanged hosts on one line', () => {
    const md = renderSummary(systemChanges(json) as SystemSummary[]);
    expect(md).toContain('1 to create, 1 to update, 1 to replace, 1 to delete; 14 unchanged.');
    expect(md).toContain('| `nixos_system.new` | `10.0.0.1:2222` | create | `nnnnnnnn…-nixos-system-new-1` |');
    expect(md).toContain('| `nixos_system.moved` | `10.0.0.4:2222` | replace | `qqqqqqqq…-nixos-system-m-1` → (known after apply) |');
    expect(md).toContain('| `nixos_system.gone` | `10.0.0.5:2222` | delete | `tttttttt…-nixos-system-g-1` (the host keeps running it) |');
    expect(md).toContain('14 hosts unchanged: `same0`, `same1`, `same2`, `same3`, `same4`, `same5`, `same6`, `same7`, `same8`, `same9` and 4 more.');
    expect(md.split('\n').filter((l) => l.startsWith('| `')).length).toBe(4);
  });

  test('no changes, and no systems', () => {
    const same = plan([rc('a', ['no-op'], attrs('h', P('u', 's-1')), attrs('h', P('u', 's-1')))]);
    expect(renderSummary(systemChanges(same) as SystemSummary[])).toContain('No changes to NixOS systems.\n\n1 host unchanged: `a`.');
    expect(renderSummary(systemChanges(plan([])) as SystemSummary[])).toContain('No `nixos_system` resources in this plan.');
  });

  test('something that is not a plan is refused', () => {
    expect(() => systemChanges({ values: {} })).toThrow(/terraform show -json PLANFILE/);
  });
});
