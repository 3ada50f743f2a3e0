import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generationOf } from '../../lib/engine/activation';
import { formatBytes } from '../../lib/engine/copy';
import { DeployError, nixErrorText, tail } from '../../lib/engine/errors';
import { canonicalJson } from '../../lib/engine/canonical-json';
import { nixString, parseFlakeRef } from '../../lib/engine/evaluate';
import { formatHostKey, KnownHosts, normalizeHostKey } from '../../lib/engine/known-hosts';
import { pathInfoEntries } from '../../lib/engine/local-nix';
import { expandHome } from '../../lib/engine/paths';
import { shellJoin, shellQuote } from '../../lib/engine/shell';
import execa from 'execa';

describe('shell quoting', () => {
  it('leaves plain words alone and quotes the rest so that sh reads them back unchanged', async () => {
    expect(shellQuote('/nix/store/abc-x')).toBe('/nix/store/abc-x');
    const awkward = ["it's", 'a b', '$HOME', '`id`', 'back\\slash', '', 'new\nline'];
    const { stdout } = await execa('sh', ['-c', `printf '%s\\0' ${shellJoin(awkward)}`]);
    expect(stdout.split('\0').slice(0, -1)).toEqual(awkward);
  });
});

describe('flake references', () => {
  it('splits PATH#NAME and makes a relative path absolute', () => {
    expect(parseFlakeRef('./infra#web', '/srv/repo')).toEqual({ source: '/srv/repo/infra', name: 'web', localDir: '/srv/repo/infra' });
    expect(parseFlakeRef('github:org/repo#db')).toEqual({ source: 'github:org/repo', name: 'db' });
    expect(parseFlakeRef('path:/x/y#a')).toMatchObject({ source: 'path:/x/y', localDir: '/x/y' });
  });

  it('refuses a reference without a configuration name, saying how to write it', () => {
    expect(() => parseFlakeRef('./infra')).toThrow(/has no configuration name\. Write it as PATH#NAME/);
    expect(() => parseFlakeRef('./infra#')).toThrow(DeployError);
  });
});

describe('special args reach Nix unchanged', () => {
  it('escapes quotes, backslashes and interpolation in a Nix string literal', async () => {
    const value = { s: 'a "q" \\ ${x} $y\nz ünï' };
    const { stdout } = await execa('nix', ['eval', '--raw', '--expr', `builtins.toJSON (builtins.fromJSON ${nixString(JSON.stringify(value))})`]);
    expect(JSON.parse(stdout)).toEqual(value);
  });

  it('gives equal JSON for equal values whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 2, c: null }] })).toBe(canonicalJson({ a: [{ c: null, d: 2 }], b: 1 }));
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: '1' }));
  });
});

describe('nix path-info JSON', () => {
  it('reads both the array of Nix 2.8 and the object of Nix 2.19+', () => {
    const old = [{ path: '/nix/store/a-x', narSize: 10, references: [] }];
    const current = { '/nix/store/a-x': { narSize: 10, references: [] }, '/nix/store/b-y': null };
    expect(pathInfoEntries(old)).toEqual([['/nix/store/a-x', old[0]]]);
    expect(pathInfoEntries(current)).toEqual([['/nix/store/a-x', { narSize: 10, references: [] }]]);
  });
});

describe('host keys', () => {
  it('formats an SSH key blob like known_hosts and records keys per host and port', () => {
    const type = Buffer.from('ssh-ed25519');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(type.length);
    const blob = Buffer.concat([length, type, Buffer.alloc(36, 1)]);
    const key = formatHostKey(blob);
    expect(key).toBe(`ssh-ed25519 ${blob.toString('base64')}`);
    expect(normalizeHostKey(`${key} comment here`)).toBe(key);

    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kh-')), 'sub', 'known_hosts');
    const known = new KnownHosts(file);
    expect(known.lookup('10.0.0.1', 22)).toEqual([]);
    known.record('10.0.0.1', 22, key);
    known.record('10.0.0.1', 2222, 'ssh-rsa AAAA');
    expect(fs.readFileSync(file, 'utf8')).toBe(`10.0.0.1 ${key}\n[10.0.0.1]:2222 ssh-rsa AAAA\n`);
    expect(known.lookup('10.0.0.1', 22)).toEqual([key]);
    expect(known.lookup('10.0.0.1', 2222)).toEqual(['ssh-rsa AAAA']);
  });
});

describe('deployer paths', () => {
  it('expands a leading ~/ like a shell, and nothing else', () => {
    expect(expandHome('~/.ssh/id_ed25519')).toBe(path.join(os.homedir(), '.ssh/id_ed25519'));
    expect(expandHome('/etc/key')).toBe('/etc/key');
    expect(expandHome('a/~/b')).toBe('a/~/b');
  });
});

describe('messages', () => {
  it('makes one paragraph with host, step, problem and fix', () => {
    const error = new DeployError('copy', 'web1', 'the disk\nis full.', 'Free some space.');
    expect(error.message).toBe('web1: copy failed: the disk is full. Free some space.');
  });

  it('keeps the end of a log and drops Nix trace hints', () => {
    expect(tail('a\n\nb\nc\n', 2)).toBe('b | c');
    expect(nixErrorText("warning: Git tree is dirty\nerror: boom\n(use '--show-trace' to show detailed location information)")).toBe('boom');
  });

  it('reads generation numbers and prints sizes', () => {
    expect(generationOf('system-12-link')).toBe(12);
    expect(generationOf('/nix/var/nix/profiles/system-3-link')).toBe(3);
    expect(generationOf('')).toBeUndefined();
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
  });
});
