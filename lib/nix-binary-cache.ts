import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { Fn } from 'cdktf';
import { Construct } from 'constructs';
import { checkBinaryCache, NixBinaryCacheConfig } from './binary-cache-config';
import { fail, isUnresolved, show } from './validation';

export type { NixBinaryCacheConfig } from './binary-cache-config';

/** Props of an S3 bucket used as a Nix binary cache. */
export interface NixBinaryCacheProps {
  /** The cache's public key, `NAME:BASE64`: hosts trust what it signs. */
  readonly publicKey: string;
  /**
   * The signing key's file on the deployer (`cdktf-nixos cache-key generate --name NAME
   * --out DIR` writes DIR/NAME.sec). Only its path enters the configuration; it is read by
   * the deploy at apply time, never at synth.
   */
  readonly secretKeyFile: string;
  /** @default a name Terraform generates, starting with "nix-cache-" */
  readonly bucketName?: string;
  /**
   * Who may read the cache: an AWS principal (an ARN or account id), or `'*'` for
   * anyone. With `'*'`, hosts read it over HTTPS and need no AWS credentials nor S3
   * support in Nix; otherwise they read `s3://` with credentials of that principal.
   * @default '*' (public read of the cache objects; writing needs the deployer's credentials)
   */
  readonly readPrincipal?: string;
  /** Let `terraform destroy` delete a bucket that still holds objects. @default false */
  readonly forceDestroy?: boolean;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PRINCIPAL = /^(\*|\d{12}|arn:aws[a-z-]*:iam::\d{12}:(root|(user|role)\/\S+))$/;

/**
 * A cache that exists already, given by its store URI (`file://`, `http(s)://`, …): no
 * resources, only a checked description a NixosSystem can use as its `binaryCache`.
 */
export class ExternalBinaryCache extends Construct implements NixBinaryCacheConfig {
  public readonly uri: string;
  public readonly substituterUri?: string;
  public readonly publicKey: string;
  public readonly secretKeyFile: string;

  constructor(scope: Construct, id: string, props: NixBinaryCacheConfig) {
    super(scope, id);
    checkBinaryCache(this, '', props);
    this.uri = props.uri;
    this.substituterUri = props.substituterUri;
    this.publicKey = props.publicKey;
    this.secretKeyFile = props.secretKeyFile;
  }
}

/**
 * An S3 bucket used as a Nix binary cache, with a bucket policy that lets hosts read the
 * cache objects. A system with this `binaryCache` pushes its closure here once, signed
 * with `secretKeyFile`, and every host substitutes from it, trusting `publicKey`.
 *
 * The deployer writes with its own AWS credentials (`nix copy --to s3://…` needs a Nix
 * built with S3 support). For the `local` stack or a cache that exists already, use
 * `NixBinaryCache.fromUri` with a `file://` or `http://` store: same interface, no bucket.
 */
export class NixBinaryCache extends Construct implements NixBinaryCacheConfig {
  /**
   * A cache at a store URI, without any AWS resource: `file:///srv/cache`,
   * `http://cache.local:8080`, … It is checked like a NixBinaryCache's props.
   */
  public static fromUri(scope: Construct, id: string, props: NixBinaryCacheConfig): ExternalBinaryCache {
    return new ExternalBinaryCache(scope, id, props);
  }

  /** The bucket. */
  public readonly bucket: S3Bucket;
  /** The bucket policy granting read access. */
  public readonly policy: S3BucketPolicy;
  /** `s3://BUCKET?region=REGION`: where the deployer pushes. */
  public readonly uri: string;
  /** Where hosts read: the bucket's HTTPS endpoint when public, else the `s3://` URI. */
  public readonly substituterUri?: string;
  public readonly publicKey: string;
  public readonly secretKeyFile: string;

  constructor(scope: Construct, id: string, props: NixBinaryCacheProps) {
    super(scope, id);
    const readPrincipal = props.readPrincipal ?? '*';
    if (props.bucketName !== undefined && !isUnresolved(props.bucketName) && !BUCKET_NAME.test(props.bucketName)) {
      fail(this, `bucketName ${show(props.bucketName)} is not a valid S3 bucket name. Use 3 to 63 lower-case letters, digits, "." and "-", starting and ending with a letter or digit.`);
    }
    if (!isUnresolved(readPrincipal) && !PRINCIPAL.test(readPrincipal)) {
      fail(this, `readPrincipal ${show(readPrincipal)} is not an AWS principal. Give "*" (public read), an account id, or an IAM ARN such as "arn:aws:iam::123456789012:role/nixos-hosts".`);
    }

    this.bucket = new S3Bucket(this, 'Bucket', {
      bucket: props.bucketName,
      bucketPrefix: props.bucketName === undefined ? 'nix-cache-' : undefined,
      forceDestroy: props.forceDestroy,
    });
    const isPublic = readPrincipal === '*';
    // New buckets block public policies; a public cache must lift that (ACLs stay blocked).
    const access = new S3BucketPublicAccessBlock(this, 'PublicAccess', {
      bucket: this.bucket.id,
      blockPublicAcls: true,
      ignorePublicAcls: true,
      blockPublicPolicy: !isPublic,
      restrictPublicBuckets: !isPublic,
    });
    // GetObject only: without ListBucket, S3 answers 403 for a missing path, which Nix
    // treats as "not in this cache"; nobody can list what the cache holds.
    this.policy = new S3BucketPolicy(this, 'Policy', {
      bucket: this.bucket.id,
      dependsOn: [access],
      policy: Fn.jsonencode({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'NixCacheRead',
            Effect: 'Allow',
            Principal: isPublic ? '*' : { AWS: readPrincipal },
            Action: ['s3:GetObject'],
            Resource: [`${this.bucket.arn}/*`],
          },
        ],
      }),
    });

    this.uri = `s3://${this.bucket.bucket}?region=${this.bucket.region}`;
    this.substituterUri = isPublic ? `https://${this.bucket.bucketRegionalDomainName}` : undefined;
    this.publicKey = props.publicKey;
    this.secretKeyFile = props.secretKeyFile;
    checkBinaryCache(this, '', this);
  }
}
