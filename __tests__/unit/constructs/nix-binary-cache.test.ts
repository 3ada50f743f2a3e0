import { Fn } from 'cdktf';
import { Construct } from 'constructs';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { NixBinaryCache, NixBinaryCacheProps, NixosSystem } from '../../../lib';
import { CACHE_PUBLIC_KEY, onlyResource, synthJson } from './setup';

const props: NixBinaryCacheProps = { publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '/etc/nix/cache-1.sec' };

describe('NixBinaryCache', () => {
  it('makes a bucket with a public-read policy of the cache objects', () => {
    const json = synthJson((scope) => new NixBinaryCache(scope, 'cache', props));
    const text = JSON.stringify(json);
    expect(text).toHaveResourceWithProperties(S3Bucket, { bucket_prefix: 'nix-cache-' });
    expect(text).toHaveResourceWithProperties(S3BucketPublicAccessBlock, { block_public_acls: true, ignore_public_acls: true, block_public_policy: false, restrict_public_buckets: false });
    const policy = onlyResource(json, 'aws_s3_bucket_policy');
    expect(policy.depends_on).toEqual([expect.stringMatching(/^aws_s3_bucket_public_access_block\./)]);
    // jsonencode, so that tokens in it stay valid JSON once Terraform knows them
    expect(policy.policy).toMatch(
      /^\$\{jsonencode\(\{"Version" = "2012-10-17", "Statement" = \[\{"Sid" = "NixCacheRead", "Effect" = "Allow", "Principal" = "\*", "Action" = \["s3:GetObject"\], "Resource" = \["\$\{aws_s3_bucket\.cache_Bucket_\w+\.arn\}\/\*"\]\}\]\}\)\}$/,
    );
    expect(text).not.toContain('cache-1.sec'); // the key file is not an AWS resource's business
  });

  it('grants a given principal instead, keeps public access blocked, and takes a name', () => {
    const json = synthJson((scope) => new NixBinaryCache(scope, 'cache', { ...props, readPrincipal: 'arn:aws:iam::123456789012:role/hosts', bucketName: 'my-nix-cache', forceDestroy: true }));
    expect(JSON.stringify(json)).toHaveResourceWithProperties(S3Bucket, { bucket: 'my-nix-cache', force_destroy: true });
    expect(JSON.stringify(json)).toHaveResourceWithProperties(S3BucketPublicAccessBlock, { block_public_policy: true, restrict_public_buckets: true });
    expect(onlyResource(json, 'aws_s3_bucket_policy').policy).toContain('"Principal" = {"AWS" = "arn:aws:iam::123456789012:role/hosts"}');
    expect(JSON.stringify(json)).toHaveResource(S3BucketPolicy);
  });

  it('serves as a system binary cache: push to s3://, substitute over HTTPS when public', () => {
    const json = synthJson((scope) => {
      const cache = new NixBinaryCache(scope, 'cache', props);
      new NixosSystem(scope, 'web', { flake: '/f#web', host: 'h', binaryCache: cache });
    });
    const r = onlyResource(json, 'nixos_system');
    expect(r.binary_cache).toEqual({
      uri: expect.stringMatching(/^s3:\/\/\$\{aws_s3_bucket\.cache_Bucket_\w+\.bucket\}\?region=\$\{aws_s3_bucket\.cache_Bucket_\w+\.region\}$/),
      substituter_uri: expect.stringMatching(/^https:\/\/\$\{aws_s3_bucket\.cache_Bucket_\w+\.bucket_regional_domain_name\}$/),
      public_key: CACHE_PUBLIC_KEY,
      secret_key_file: '/etc/nix/cache-1.sec',
    });
    const restricted = synthJson((scope) => {
      const cache = new NixBinaryCache(scope, 'cache', { ...props, readPrincipal: '123456789012' });
      new NixosSystem(scope, 'web', { flake: '/f#web', host: 'h', binaryCache: cache });
    });
    expect(onlyResource(restricted, 'nixos_system').binary_cache.substituter_uri).toBeUndefined();
  });

  it('fromUri: a file:// or http:// cache without any bucket', () => {
    const json = synthJson((scope) => {
      const cache = NixBinaryCache.fromUri(scope, 'cache', { uri: 'file:///srv/cache', substituterUri: 'http://10.0.0.1:8080', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '/k.sec' });
      new NixosSystem(scope, 'web', { flake: '/f#web', host: 'h', binaryCache: cache });
    });
    expect(json.resource.aws_s3_bucket).toBeUndefined();
    expect(onlyResource(json, 'nixos_system').binary_cache).toEqual({ uri: 'file:///srv/cache', substituter_uri: 'http://10.0.0.1:8080', public_key: CACHE_PUBLIC_KEY, secret_key_file: '/k.sec' });
  });

  const invalid = (fn: (scope: Construct) => void) => {
    try {
      synthJson(fn);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected an error');
  };

  it.each([
    ['a bad bucket name', { bucketName: 'My_Cache' }, /NixBinaryCache stack\/cache: bucketName "My_Cache" is not a valid S3 bucket name\. Use 3 to 63 lower-case letters/],
    ['a bad principal', { readPrincipal: 'everyone' }, /readPrincipal "everyone" is not an AWS principal\. Give "\*" \(public read\), an account id, or an IAM ARN/],
    ['a bad public key', { publicKey: 'x' }, /NixBinaryCache stack\/cache: publicKey "x" is not a Nix public key/],
    ['an empty key file', { secretKeyFile: ' ' }, /secretKeyFile is empty/],
  ] as [string, Partial<NixBinaryCacheProps>, RegExp][])('rejects %s', (_n, bad, message) => {
    expect(invalid((scope: Construct) => new NixBinaryCache(scope, 'cache', { ...props, ...bad }))).toMatch(message);
  });

  it('fromUri rejects what is not a store URI', () => {
    expect(invalid((scope: Construct) => NixBinaryCache.fromUri(scope, 'cache', { uri: 'srv/cache', publicKey: CACHE_PUBLIC_KEY, secretKeyFile: '/k' }))).toMatch(
      /ExternalBinaryCache stack\/cache: uri "srv\/cache" is not a Nix store URI\. Use file:\/\/\/PATH, http\(s\):\/\/HOST\/PATH or s3:\/\/BUCKET\?region=REGION\./,
    );
  });

  it('skips checks of unresolved tokens', () => {
    const json = synthJson((scope) => new NixBinaryCache(scope, 'cache', { publicKey: Fn.lower('K'), secretKeyFile: Fn.lower('S'), bucketName: Fn.lower('B'), readPrincipal: Fn.lower('P') }));
    expect(onlyResource(json, 'aws_s3_bucket').bucket).toBe('${lower("B")}');
    expect(onlyResource(json, 'aws_s3_bucket_policy').policy).toContain('"Principal" = {"AWS" = lower("P")}');
  });
});
