import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateCacheKey } from '../../../bin/cache-key';
import { NIX_PUBLIC_KEY } from '../../../lib/validation';

describe('cdktf-nixos cache-key generate', () => {
  it('makes a key pair with nix-store, the secret readable only by its owner, and keeps it on a second run', async () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cache-key-')), 'keys');
    const first = await generateCacheKey('test-cache-1', dir);
    expect(first.created).toBe(true);
    expect(first.publicKey).toMatch(NIX_PUBLIC_KEY);
    expect(first.publicKey.startsWith('test-cache-1:')).toBe(true);
    expect(fs.statSync(first.secretKeyFile).mode & 0o077).toBe(0);
    const again = await generateCacheKey('test-cache-1', dir);
    expect(again).toEqual({ ...first, created: false });
  });

  it('refuses a name that is not a file name', async () => {
    await expect(generateCacheKey('../x', os.tmpdir())).rejects.toThrow('--name "../x" is not a usable key name');
  });
});
