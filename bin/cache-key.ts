/**
 * `cdktf-nixos cache-key generate --name NAME --out DIR`: makes the signing key pair of a
 * Nix binary cache with `nix-store --generate-binary-cache-key`. DIR/NAME.sec stays on the
 * deployer (mode 0600); only the public key (DIR/NAME.pub, printed) enters the configuration.
 * A key pair that exists already is kept, so the command is safe to run again.
 */
import * as fs from 'fs';
import * as path from 'path';
import execa from 'execa';

export interface CacheKey {
  readonly publicKey: string;
  readonly publicKeyFile: string;
  readonly secretKeyFile: string;
  /** false when an existing key pair was kept. */
  readonly created: boolean;
}

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export async function generateCacheKey(name: string, outDir: string): Promise<CacheKey> {
  if (!KEY_NAME.test(name)) {
    throw new Error(`--name "${name}" is not a usable key name. Use letters, digits, ".", "_" and "-", e.g. "cache.example.org-1".`);
  }
  const dir = path.resolve(outDir);
  const secretKeyFile = path.join(dir, `${name}.sec`);
  const publicKeyFile = path.join(dir, `${name}.pub`);
  if (fs.existsSync(secretKeyFile) && fs.existsSync(publicKeyFile)) {
    return { publicKey: fs.readFileSync(publicKeyFile, 'utf8').trim(), publicKeyFile, secretKeyFile, created: false };
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The child inherits the umask: the secret key is never readable by others, not even briefly.
  const umask = process.umask(0o077);
  let result: execa.ExecaReturnValue;
  try {
    result = await execa('nix-store', ['--generate-binary-cache-key', name, secretKeyFile, publicKeyFile], { reject: false });
  } finally {
    process.umask(umask);
  }
  if (result.exitCode !== 0) {
    throw new Error(`nix-store --generate-binary-cache-key failed: ${(result.stderr || String(result.exitCode)).trim()}. Is Nix installed (npm run setup:system)?`);
  }
  fs.chmodSync(secretKeyFile, 0o600);
  return { publicKey: fs.readFileSync(publicKeyFile, 'utf8').trim(), publicKeyFile, secretKeyFile, created: true };
}
