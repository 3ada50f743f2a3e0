import { defineMachines, NixosEc2Machine, NixosSystem, placeOnEc2, placeOnHosts } from '../../../lib';
import { CACHE_PUBLIC_KEY, HOST_KEY, synthJson } from './setup';

const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC4N8sVspYasBq6pJ6B3joKVObN/1NILlYhF9agYlBkt me@laptop';

const machines = defineMachines({
  db: { flake: '/infra#db', keys: { pw: { file: '/secrets/db' } }, healthChecks: [{ command: 'true' }] },
  web: { flake: '/infra#web', specialArgs: (m) => ({ db: { host: m.db.address, port: m.db.facts.port ?? 5432 } }) },
});

const byFlake = (json: { [key: string]: any }, flake: string) => Object.values(json.resource.nixos_system as object).find((r) => r.flake === flake);

describe('logical machines and their placement', () => {
  it('places the machines on existing hosts, web learning db\'s address', () => {
    let systems: { web: NixosSystem; db: NixosSystem } | undefined;
    const json = synthJson((scope) => {
      systems = placeOnHosts(scope, machines, {
        web: { host: '192.0.2.10', port: 2222, hostKey: HOST_KEY, healthChecks: [{ http: { url: 'http://192.0.2.10/' } }] },
        db: { host: '192.0.2.11', peerAddress: '10.1.0.11', facts: { port: 6543 }, user: 'deploy', privateKeyFile: '/k', bastion: { host: 'jump' }, lockWaitSeconds: 30 },
      });
    });
    expect(systems!.web.node.path).toBe('stack/web');
    expect(systems!.db.node.path).toBe('stack/db');
    expect(byFlake(json, '/infra#web')).toMatchObject({ host: '192.0.2.10', port: 2222, host_key: HOST_KEY, special_args: { db: { host: '10.1.0.11', port: 6543 } }, health_checks: [{ http_url: 'http://192.0.2.10/' }] });
    expect(byFlake(json, '/infra#db')).toMatchObject({
      host: '192.0.2.11',
      user: 'deploy',
      private_key_file: '/k',
      bastion: { host: 'jump' },
      lock_wait_seconds: 30,
      keys: { pw: { file: '/secrets/db' } },
      health_checks: [{ command: 'true' }],
    });
    expect(byFlake(json, '/infra#db').special_args).toBeUndefined();
  });

  it('places the same machines on EC2, web learning db\'s private IP', () => {
    let placed: { web: NixosEc2Machine; db: NixosEc2Machine } | undefined;
    const json = synthJson((scope) => {
      placed = placeOnEc2(scope, machines, {
        defaults: { ami: 'ami-0123456789abcdef0', sshPublicKey: SSH_KEY },
        settings: { binaryCache: { uri: 'file:///c', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '/c.sec' }, healthChecks: [{ command: 'uptime' }] },
        machines: { db: { instanceType: 'r6i.large', facts: { port: 5433 } } },
      });
    });
    expect(placed!.db.node.path).toBe('stack/db');
    const web = byFlake(json, '/infra#web');
    expect(web.special_args).toEqual({ db: { host: expect.stringMatching(/^\$\{aws_instance\.db_Instance_\w+\.private_ip\}$/), port: 5433 } });
    expect(web.host).toMatch(/^\$\{aws_instance\.web_Instance_\w+\.public_ip\}$/);
    expect(web.binary_cache.uri).toBe('file:///c');
    expect(byFlake(json, '/infra#db').health_checks).toEqual([{ command: 'true' }, { command: 'uptime' }]);
    const types = Object.values(json.resource.aws_instance as object).map((i) => i.instance_type).sort();
    expect(types).toEqual(['r6i.large', 't3.micro']);
  });

  it('rejects bad names and missing or unknown placements', () => {
    expect(() => defineMachines({ '1web': { flake: '/f#w' } })).toThrow('defineMachines: machine name "1web" is not usable as an id. Start with a letter');
    expect(() => synthJson((scope) => placeOnHosts(scope, machines, { web: { host: 'a' } } as never))).toThrow(
      'placeOnHosts(stack): no placement for machine(s) db. Give one for every machine of the set.',
    );
    expect(() => synthJson((scope) => placeOnHosts(scope, machines, { web: { host: 'a' }, db: { host: 'b' }, cache: { host: 'c' } } as never))).toThrow(
      'placeOnHosts(stack): placement(s) for cache, which the machine set does not define. Check the names (db, web).',
    );
    expect(() =>
      synthJson((scope) => placeOnEc2(scope, machines, { defaults: { ami: 'ami-0123456789abcdef0', sshPublicKey: SSH_KEY }, machines: { cache: {} } as never })),
    ).toThrow('placeOnEc2(stack): settings for cache, which the machine set does not define. Check the names (db, web).');
  });
});
