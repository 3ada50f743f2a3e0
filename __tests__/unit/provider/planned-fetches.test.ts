/**
 * The notes a plan leaves for the apply: what each host will fetch from which cache.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { forgetPlannedFetch, notePlannedFetch, PlannedFetch, plannedFetches } from '../../../providers/nixos/planned-fetches';

const OUT = '/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web-1';
const cache = { uri: 'http://cache.example/x', publicKey: 'c-1:AAAA', secretKeyFile: '/keys/c.sec' };
const fetchFor = (host: string, outPath = OUT, uri = cache.uri): PlannedFetch => ({
  target: { host, port: 22, user: 'root', privateKeyFile: '/keys/id', hostKey: 'ssh-ed25519 AAAA' },
  closure: { outPath, drvPath: `${outPath}.drv` },
  cache: { ...cache, uri },
});

describe('planned fetches', () => {
  let dir: string;
  const cwd = process.cwd();
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdktf-nixos-fetches-'));
  });
  afterEach(() => {
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finds the hosts noted for a closure and cache, and no others', () => {
    notePlannedFetch(dir, fetchFor('10.0.0.1'));
    notePlannedFetch(dir, fetchFor('10.0.0.2'));
    notePlannedFetch(dir, fetchFor('10.0.0.3', OUT.replace('web', 'db')));
    notePlannedFetch(dir, fetchFor('10.0.0.4', OUT, 'http://other.example'));
    const found = plannedFetches(dir, OUT, cache.uri);
    expect(found.map((f) => f.target.host).sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(found[0]).toEqual(fetchFor(found[0].target.host));
  });

  it('keeps one note per host: a later plan replaces it, and forgetting removes it', () => {
    notePlannedFetch(dir, fetchFor('10.0.0.1', OUT.replace('web', 'old')));
    notePlannedFetch(dir, fetchFor('10.0.0.1'));
    expect(plannedFetches(dir, OUT.replace('web', 'old'), cache.uri)).toEqual([]);
    expect(plannedFetches(dir, OUT, cache.uri)).toHaveLength(1);
    forgetPlannedFetch(dir, fetchFor('10.0.0.1').target);
    expect(plannedFetches(dir, OUT, cache.uri)).toEqual([]);
  });

  it('ignores notes older than an hour', () => {
    notePlannedFetch(dir, fetchFor('10.0.0.1'));
    notePlannedFetch(dir, fetchFor('10.0.0.2'));
    const [notes] = fs.readdirSync(path.join(dir, 'planned-fetches'));
    const old = (Date.now() - 2 * 3600_000) / 1000;
    const first = fs.readdirSync(path.join(dir, 'planned-fetches', notes))[0];
    fs.utimesSync(path.join(dir, 'planned-fetches', notes, first), old, old);
    expect(plannedFetches(dir, OUT, cache.uri)).toHaveLength(1);
  });

  it('keeps the notes of each Terraform working directory apart, readable by their owner only', () => {
    const a = fs.mkdtempSync(path.join(dir, 'stack-a-'));
    const b = fs.mkdtempSync(path.join(dir, 'stack-b-'));
    process.chdir(a);
    notePlannedFetch(dir, fetchFor('10.0.0.1'));
    process.chdir(b);
    expect(plannedFetches(dir, OUT, cache.uri)).toEqual([]);
    process.chdir(a);
    expect(plannedFetches(dir, OUT, cache.uri)).toHaveLength(1);
    const [notes] = fs.readdirSync(path.join(dir, 'planned-fetches'));
    for (const name of fs.readdirSync(path.join(dir, 'planned-fetches', notes))) {
      expect(fs.statSync(path.join(dir, 'planned-fetches', notes, name)).mode & 0o777).toBe(0o600);
    }
  });
});
