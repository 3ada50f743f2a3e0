import { IResolvable, TerraformMetaArguments, TerraformResource } from 'cdktf';
import { Construct } from 'constructs';

/**
 * A value handed to the configuration as `specialArgs.terraform`: JSON-able, and any
 * part of it may be a Terraform token (for example another resource's IP address).
 */
export type SpecialArgValue = string | number | boolean | null | IResolvable | readonly SpecialArgValue[] | { readonly [key: string]: SpecialArgValue };

/** The `special_args` object. */
export type SpecialArgs = { readonly [key: string]: SpecialArgValue };

/** An SSH jump host (`bastion` block). */
export interface SystemBastionConfig {
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /** @default the resource's user */
  readonly user?: string;
  /** @default the resource's key file, or the agent */
  readonly privateKeyFile?: string;
  /** @default the first key seen, then enforced */
  readonly hostKey?: string;
}

/** A binary cache (`binary_cache` block). */
export interface SystemBinaryCacheConfig {
  /** The store URI the deployer pushes to. */
  readonly uri: string;
  /** @default uri */
  readonly substituterUri?: string;
  /** `name:base64`, trusted by the hosts for this cache. */
  readonly publicKey: string;
  /** The signing key, a file on the deployer (read at apply time, never stored). */
  readonly secretKeyFile: string;
}

/** A check after activation (`health_checks` block). */
export interface SystemHealthCheckConfig {
  /** @default none (then httpUrl) */
  readonly command?: string;
  /** @default none (then command) */
  readonly httpUrl?: string;
  /** @default 200 */
  readonly expectStatus?: number;
  /** @default 10 */
  readonly retries?: number;
  /** @default 1 */
  readonly intervalSeconds?: number;
  /** @default 10 */
  readonly timeoutSeconds?: number;
}

/** A secret placed on the host (`keys` block, by name). */
export interface SystemKeyConfig {
  /** @default none */
  readonly file?: string;
  /** @default none */
  readonly command?: string;
  /** Write-only: Terraform never stores it in state or plan. @default none */
  readonly textWo?: string;
  /** Change it to re-upload a changed `textWo`. @default none */
  readonly textWoVersion?: number;
  /** @default '/run/keys' */
  readonly destDir?: string;
  /** @default 'root' */
  readonly user?: string;
  /** @default 'root' */
  readonly group?: string;
  /** @default '0600' */
  readonly permissions?: string;
}

/** The arguments of a `nixos_system` resource, in camelCase. */
export interface SystemResourceConfig extends TerraformMetaArguments {
  /** @default none (then storePath) */
  readonly flake?: string;
  /** @default none (then flake) */
  readonly storePath?: string;
  /** @default none */
  readonly specialArgs?: SpecialArgs | IResolvable;
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /** @default the provider's sshUser, or root */
  readonly user?: string;
  /** @default the provider's, or the agent */
  readonly privateKeyFile?: string;
  /** @default the first key seen, then enforced */
  readonly hostKey?: string;
  /** @default 'switch' */
  readonly action?: string;
  /** @default 'local' */
  readonly buildOn?: string;
  /** 0 turns magic rollback off. @default 30 */
  readonly magicRollbackSeconds?: number;
  /** @default 10 */
  readonly keepGenerations?: number;
  /** @default false */
  readonly substituteOnTarget?: boolean;
  /** @default 20 */
  readonly connectTimeoutSeconds?: number;
  /** @default 600 */
  readonly activationTimeoutSeconds?: number;
  /** @default 0 */
  readonly lockWaitSeconds?: number;
  /** @default none */
  readonly bastion?: SystemBastionConfig;
  /** @default none */
  readonly binaryCache?: SystemBinaryCacheConfig;
  /** @default [] */
  readonly healthChecks?: readonly SystemHealthCheckConfig[];
  /** @default {} */
  readonly keys?: { readonly [name: string]: SystemKeyConfig };
}

function bastionToTerraform(b: SystemBastionConfig | undefined): object | undefined {
  if (b === undefined) return undefined;
  return { host: b.host, port: b.port, user: b.user, private_key_file: b.privateKeyFile, host_key: b.hostKey };
}

function binaryCacheToTerraform(c: SystemBinaryCacheConfig | undefined): object | undefined {
  if (c === undefined) return undefined;
  return { uri: c.uri, substituter_uri: c.substituterUri, public_key: c.publicKey, secret_key_file: c.secretKeyFile };
}

function healthCheckToTerraform(c: SystemHealthCheckConfig): object {
  return {
    command: c.command,
    http_url: c.httpUrl,
    expect_status: c.expectStatus,
    retries: c.retries,
    interval_seconds: c.intervalSeconds,
    timeout_seconds: c.timeoutSeconds,
  };
}

function keyToTerraform(k: SystemKeyConfig): object {
  return {
    file: k.file,
    command: k.command,
    text_wo: k.textWo,
    text_wo_version: k.textWoVersion,
    dest_dir: k.destDir,
    user: k.user,
    group: k.group,
    permissions: k.permissions,
  };
}

/**
 * Resource `nixos_system`: one host running one NixOS system closure.
 * Most users want the `NixosSystem` construct, which validates its props and picks the
 * stack's provider; this is the plain binding.
 */
export class SystemResource extends TerraformResource {
  /** The Terraform type name of this resource. */
  public static readonly tfResourceType = 'nixos_system';

  /** The arguments as given. */
  public readonly config: SystemResourceConfig;

  constructor(scope: Construct, id: string, config: SystemResourceConfig) {
    super(scope, id, {
      terraformResourceType: SystemResource.tfResourceType,
      terraformGeneratorMetadata: { providerName: 'nixos' },
      provider: config.provider,
      dependsOn: config.dependsOn,
      count: config.count,
      lifecycle: config.lifecycle,
      provisioners: config.provisioners,
      connection: config.connection,
      forEach: config.forEach,
    });
    this.config = config;
  }

  /** `id`: the host and port. */
  public get id(): string {
    return this.getStringAttribute('id');
  }

  /** `closure_path`: the system closure the host runs (known after apply when its inputs are). */
  public get closurePath(): string {
    return this.getStringAttribute('closure_path');
  }

  /** `drv_path`: the derivation of the closure (null for a prebuilt store path). */
  public get drvPath(): string {
    return this.getStringAttribute('drv_path');
  }

  /** `generation`: the system profile generation on the host. */
  public get generation(): number {
    return this.getNumberAttribute('generation');
  }

  /** `host_key_seen`: the host key the host presented. */
  public get hostKeySeen(): string {
    return this.getStringAttribute('host_key_seen');
  }

  /** `keys_hash`: a sha256 over every key's placement and content (never the content). */
  public get keysHash(): string {
    return this.getStringAttribute('keys_hash');
  }

  protected override synthesizeAttributes(): { [name: string]: unknown } {
    const c = this.config;
    const keys = c.keys === undefined ? undefined : Object.fromEntries(Object.entries(c.keys).map(([name, k]) => [name, keyToTerraform(k)]));
    return {
      flake: c.flake,
      store_path: c.storePath,
      special_args: c.specialArgs,
      host: c.host,
      port: c.port,
      user: c.user,
      private_key_file: c.privateKeyFile,
      host_key: c.hostKey,
      action: c.action,
      build_on: c.buildOn,
      magic_rollback_seconds: c.magicRollbackSeconds,
      keep_generations: c.keepGenerations,
      substitute_on_target: c.substituteOnTarget,
      connect_timeout_seconds: c.connectTimeoutSeconds,
      activation_timeout_seconds: c.activationTimeoutSeconds,
      lock_wait_seconds: c.lockWaitSeconds,
      bastion: bastionToTerraform(c.bastion),
      binary_cache: binaryCacheToTerraform(c.binaryCache),
      health_checks: c.healthChecks?.map(healthCheckToTerraform),
      keys,
    };
  }
}

