import { IConstruct } from 'constructs';
import { fail, isUnresolved, NIX_PUBLIC_KEY, show } from './validation';

/**
 * A Nix binary cache a system is pushed to once, and that hosts substitute from.
 * A `NixBinaryCache` (an S3 bucket) is one; `NixBinaryCache.fromUri` makes one for a
 * `file://` or `http://` store; a plain object works too.
 */
export interface NixBinaryCacheConfig {
  /** The Nix store URI the deployer pushes to: `file:///…`, `http(s)://…`, `s3://bucket?region=…`. */
  readonly uri: string;
  /**
   * The URI the hosts read from, when they reach the cache differently.
   * @default uri
   */
  readonly substituterUri?: string;
  /** The cache's public key, `NAME:BASE64`, as `cdktf-nixos cache-key generate` prints it. */
  readonly publicKey: string;
  /**
   * The signing key: a file path on the deployer, read only by the deploy at apply time,
   * never at synth, and never stored in the configuration or state.
   */
  readonly secretKeyFile: string;
}

const STORE_URI = /^(file|https?|s3|ssh|ssh-ng):\/\/\S+$/;

/** Checks a binary cache's settings; `prefix` (e.g. 'binaryCache.') leads the names in messages. */
export function checkBinaryCache(construct: IConstruct, prefix: string, cache: NixBinaryCacheConfig): void {
  for (const [field, uri] of [['uri', cache.uri], ['substituterUri', cache.substituterUri]] as const) {
    if (uri === undefined || isUnresolved(uri)) continue;
    if (!STORE_URI.test(uri)) {
      fail(construct, `${prefix}${field} ${show(uri)} is not a Nix store URI. Use file:///PATH, http(s)://HOST/PATH or s3://BUCKET?region=REGION.`);
    }
  }
  if (!isUnresolved(cache.publicKey) && !NIX_PUBLIC_KEY.test(cache.publicKey)) {
    fail(construct, `${prefix}publicKey ${show(cache.publicKey)} is not a Nix public key. Give "NAME:BASE64", as printed by \`cdktf-nixos cache-key generate --name NAME --out DIR\`.`);
  }
  if (!isUnresolved(cache.secretKeyFile)) {
    if (cache.secretKeyFile.trim() === '') {
      fail(construct, `${prefix}secretKeyFile is empty. Give the path of the signing key file on the deployer (DIR/NAME.sec from \`cdktf-nixos cache-key generate\`).`);
    }
    if (NIX_PUBLIC_KEY.test(cache.secretKeyFile) && !cache.secretKeyFile.includes('/')) {
      fail(construct, `${prefix}secretKeyFile looks like a key, not a file path. Never put key material in the configuration: give the path of the key file on the deployer.`);
    }
  }
}
