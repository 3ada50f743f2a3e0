import * as path from 'path';
import { IResolvable, ITerraformDependable } from 'cdktf';
import { Construct } from 'constructs';
import { checkBinaryCache, NixBinaryCacheConfig } from './binary-cache-config';
import { NixosProvider } from './provider/nixos-provider';
import { SpecialArgs, SystemHealthCheckConfig, SystemKeyConfig, SystemResource } from './provider/system-resource';
import { checkHostKey, checkNonNegative, checkOneOf, checkPort, checkPositive, fail, isUnresolved, show } from './validation';
import { isStorePath } from './engine/store-path';

/** The switch-to-configuration actions. */
/** dry-activate is not among them: it changes nothing, so the resource's state would lie (it stays a CLI action). */
export const NIXOS_ACTIONS = ['switch', 'boot', 'test'] as const;
/** What `switch-to-configuration` does on the host. */
export type NixosAction = (typeof NIXOS_ACTIONS)[number];

/** Where the closure is built. */
export const NIXOS_BUILD_LOCATIONS = ['local', 'target'] as const;
/** Where the closure is built: on the deployer, or on the target host. */
export type NixosBuildLocation = (typeof NIXOS_BUILD_LOCATIONS)[number];

/** An SSH jump host the connection goes through. */
export interface NixosBastion {
  /** The jump host's address. */
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /** @default the system's user */
  readonly user?: string;
  /** A private key file on the deployer. @default the system's key file, or the agent */
  readonly privateKeyFile?: string;
  /** The jump host's public key, `TYPE BASE64`. @default the first key seen, recorded and enforced */
  readonly hostKey?: string;
}

/**
 * A secret put on the host outside the Nix store (in `destDir`, on tmpfs). Give exactly
 * one of `file`, `command` or `textWo`.
 */
export interface NixosKey {
  /** A file on the deployer, read at apply time; a relative path counts from the app's working directory. @default none */
  readonly file?: string;
  /** A shell command on the deployer whose output is the secret, run at apply time. @default none */
  readonly command?: string;
  /**
   * The secret itself, as a write-only attribute (Terraform 1.11+): never in state or plan.
   * It does sit in the synthesized `cdk.tf.json`, so prefer `file` or `command`.
   * @default none
   */
  readonly textWo?: string;
  /** Bump it when `textWo` changes, to upload it again. @default none */
  readonly textWoVersion?: number;
  /** @default '/run/keys' */
  readonly destDir?: string;
  /** Owner on the host. @default 'root' */
  readonly user?: string;
  /** Group on the host. @default 'root' */
  readonly group?: string;
  /** Octal mode, e.g. '0400'. @default '0600' */
  readonly permissions?: string;
}

/** An HTTP request from the deployer after activation. */
export interface NixosHttpCheck {
  readonly url: string;
  /** @default 200 */
  readonly expectStatus?: number;
}

/** A check after activation; a failure rolls the host back. Give exactly one of `command` or `http`. */
export interface NixosHealthCheck {
  /** A shell command on the host that must exit 0. @default none */
  readonly command?: string;
  /** An HTTP request from the deployer. @default none */
  readonly http?: NixosHttpCheck;
  /** @default 10 */
  readonly retries?: number;
  /** @default 1 */
  readonly intervalSeconds?: number;
  /** Each attempt's limit. @default 10 */
  readonly timeoutSeconds?: number;
}

/** How to reach the host: the physical side of a system. */
export interface NixosConnection {
  /** The host's address (a name or IP). Changing it replaces the resource. */
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /** Any user but root needs password-less sudo. @default the provider's sshUser, or 'root' */
  readonly user?: string;
  /**
   * A private key file on the deployer (its path is stored, never its content); a relative
   * path counts from the app's working directory.
   * @default the provider's, or the SSH agent
   */
  readonly privateKeyFile?: string;
  /**
   * The host's public key, `TYPE BASE64`; a different key is refused.
   * @default none: the first key seen is recorded in the provider's known_hosts file and
   * enforced afterwards (trust on first use)
   */
  readonly hostKey?: string;
  /** @default a direct connection */
  readonly bastion?: NixosBastion;
}

/** What to run and how to put it there: the logical side of a system. */
export interface NixosSystemOptions {
  /**
   * `PATH#NAME`: nixosConfigurations.NAME of the flake at PATH. A relative PATH (`./…`,
   * `../…`) counts from the app's working directory and is made absolute at synth.
   * @default none: give `storePath` instead
   */
  readonly flake?: string;
  /** A system built elsewhere (for example in CI), `/nix/store/HASH-NAME`. @default none: give `flake` instead */
  readonly storePath?: string;
  /**
   * Values for the configuration, as `specialArgs.terraform`. JSON-able; any part may be a
   * token, such as another machine's IP (the closure is then known after apply).
   * @default none
   */
  readonly specialArgs?: SpecialArgs | IResolvable;
  /** Secrets by file name. @default none */
  readonly keys?: { readonly [name: string]: NixosKey };
  /** @default 'switch' */
  readonly action?: NixosAction;
  /** @default 'local' */
  readonly buildOn?: NixosBuildLocation;
  /** @default none */
  readonly healthChecks?: readonly NixosHealthCheck[];
  /**
   * A new SSH login must confirm the activated system in time, or the host reverts.
   * `false` turns it off.
   * @default { timeoutSeconds: 30 }
   */
  readonly magicRollback?: { readonly timeoutSeconds: number } | false;
  /** Let the host fetch what it can from its own substituters first. @default false */
  readonly substituteOnTarget?: boolean;
  /** Push the closure there once; the host substitutes from it, trusting its key. @default none */
  readonly binaryCache?: NixBinaryCacheConfig;
  /** Generations kept on the host. @default 10 */
  readonly keepGenerations?: number;
  /** @default 20 */
  readonly connectTimeoutSeconds?: number;
  /** How long switch-to-configuration may run. @default 600 */
  readonly activationTimeoutSeconds?: number;
  /** How long to wait for another deployer's lock on the host; 0 fails at once. @default 0 */
  readonly lockWaitSeconds?: number;
}

/** Props of a NixosSystem: what to run, and where. */
export interface NixosSystemProps extends NixosSystemOptions, NixosConnection {
  /** @default the stack's `nixos` provider, created with default settings if there is none */
  readonly provider?: NixosProvider;
  /** @default none (references in props already order the deploy) */
  readonly dependsOn?: ITerraformDependable[];
}

const KEY_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
const PERMISSIONS = /^0?[0-7]{3}$/;

/**
 * One host running one NixOS system closure: a `nixos_system` resource.
 *
 * Plan evaluates the configuration and shows the closure it would put on the host;
 * apply builds, copies, uploads keys, activates and checks it, rolling back on failure.
 * Destroying it only forgets the host: the machine keeps running its system.
 */
export class NixosSystem extends Construct {
  /** The `nixos_system` resource. */
  public readonly resource: SystemResource;
  /** The system closure the host runs. */
  public readonly closurePath: string;
  /** The system profile generation on the host. */
  public readonly generation: number;
  /** The closure's derivation (null for a prebuilt store path). */
  public readonly drvPath: string;
  /** The host key the host presented. */
  public readonly hostKeySeen: string;

  constructor(scope: Construct, id: string, props: NixosSystemProps) {
    super(scope, id);
    this.validate(props);
    this.resource = new SystemResource(this, 'Resource', {
      provider: props.provider ?? NixosProvider.ofStack(this),
      dependsOn: props.dependsOn,
      flake: props.flake === undefined ? undefined : absoluteFlake(props.flake),
      storePath: props.storePath,
      specialArgs: props.specialArgs,
      host: props.host,
      port: props.port,
      user: props.user,
      privateKeyFile: absolutePath(props.privateKeyFile),
      hostKey: props.hostKey,
      bastion: props.bastion && { ...props.bastion, privateKeyFile: absolutePath(props.bastion.privateKeyFile) },
      action: props.action,
      buildOn: props.buildOn,
      magicRollbackSeconds: props.magicRollback === undefined ? undefined : props.magicRollback === false ? 0 : props.magicRollback.timeoutSeconds,
      keepGenerations: props.keepGenerations,
      substituteOnTarget: props.substituteOnTarget,
      connectTimeoutSeconds: props.connectTimeoutSeconds,
      activationTimeoutSeconds: props.activationTimeoutSeconds,
      lockWaitSeconds: props.lockWaitSeconds,
      binaryCache: props.binaryCache && {
        uri: props.binaryCache.uri,
        substituterUri: props.binaryCache.substituterUri,
        publicKey: props.binaryCache.publicKey,
        secretKeyFile: absolutePath(props.binaryCache.secretKeyFile)!,
      },
      healthChecks: props.healthChecks?.map(healthCheckConfig),
      keys: props.keys && Object.fromEntries(Object.entries(props.keys).map(([name, k]) => [name, keyConfig(k)])),
    });
    this.closurePath = this.resource.closurePath;
    this.generation = this.resource.generation;
    this.drvPath = this.resource.drvPath;
    this.hostKeySeen = this.resource.hostKeySeen;
  }

  private validate(props: NixosSystemProps): void {
    const { flake, storePath } = props;
    if (flake !== undefined && storePath !== undefined) {
      fail(this, `give either flake or storePath, not both (flake ${show(flake)}, storePath ${show(storePath)}). Remove one of them.`);
    }
    if (flake === undefined && storePath === undefined) {
      fail(this, 'neither flake nor storePath is set. Set flake to "PATH#NAME" (e.g. "./infra#web") or storePath to a system built elsewhere.');
    }
    if (flake !== undefined && !isUnresolved(flake) && !/^[^#]+#[^#\s]+$/.test(flake)) {
      fail(this, `flake ${show(flake)} names no configuration. Write it as PATH#NAME, e.g. "./infra#web" for nixosConfigurations.web.`);
    }
    if (storePath !== undefined && !isUnresolved(storePath) && !isStorePath(storePath)) {
      fail(this, `storePath ${show(storePath)} is not a Nix store path. Give /nix/store/HASH-NAME, the out path of the system's toplevel.`);
    }
    if (!isUnresolved(props.host) && props.host.trim() === '') fail(this, 'host is empty. Give the address (name or IP) of the machine to deploy to.');
    checkPort(this, 'port', props.port);
    checkHostKey(this, 'hostKey', props.hostKey);
    if (props.bastion) {
      if (!isUnresolved(props.bastion.host) && props.bastion.host.trim() === '') fail(this, 'bastion.host is empty. Give the jump host\'s address, or leave bastion out.');
      checkPort(this, 'bastion.port', props.bastion.port);
      checkHostKey(this, 'bastion.hostKey', props.bastion.hostKey);
    }
    checkOneOf(this, 'action', props.action, NIXOS_ACTIONS);
    checkOneOf(this, 'buildOn', props.buildOn, NIXOS_BUILD_LOCATIONS);
    for (const [name, key] of Object.entries(props.keys ?? {})) this.validateKey(name, key);
    (props.healthChecks ?? []).forEach((check, i) => this.validateHealthCheck(`healthChecks[${i}]`, check));
    if (props.magicRollback !== undefined && props.magicRollback !== false) {
      checkPositive(this, 'magicRollback.timeoutSeconds', props.magicRollback.timeoutSeconds, '30, or magicRollback: false to turn it off');
    }
    if (props.keepGenerations !== undefined && !isUnresolved(props.keepGenerations) && !(Number.isInteger(props.keepGenerations) && props.keepGenerations >= 1)) {
      fail(this, `keepGenerations ${show(props.keepGenerations)} must be a whole number of at least 1 (the running generation), e.g. 10.`);
    }
    checkPositive(this, 'connectTimeoutSeconds', props.connectTimeoutSeconds, '20');
    checkPositive(this, 'activationTimeoutSeconds', props.activationTimeoutSeconds, '600');
    checkNonNegative(this, 'lockWaitSeconds', props.lockWaitSeconds, false, 'use 0 to fail at once when another deployer holds the host');
    if (props.binaryCache) checkBinaryCache(this, 'binaryCache.', props.binaryCache);
  }

  private validateKey(name: string, key: NixosKey): void {
    if (!KEY_NAME.test(name) || name === '..') {
      fail(this, `key name ${show(name)} is not a file name. Use letters, digits, ".", "_" and "-" (no "/"); the key lands in destDir/NAME.`);
    }
    const sources = (['file', 'command', 'textWo'] as const).filter((s) => key[s] !== undefined);
    if (sources.length === 0) fail(this, `key "${name}" has no source. Set exactly one of file, command or textWo.`);
    if (sources.length > 1) fail(this, `key "${name}" has several sources (${sources.join(', ')}). Set exactly one of file, command or textWo.`);
    if (key.permissions !== undefined && !isUnresolved(key.permissions) && !PERMISSIONS.test(key.permissions)) {
      fail(this, `key "${name}" has permissions ${show(key.permissions)}, which is not an octal mode. Use e.g. "0400" or "0640".`);
    }
    if (key.destDir !== undefined && !isUnresolved(key.destDir) && !key.destDir.startsWith('/')) {
      fail(this, `key "${name}" has destDir ${show(key.destDir)}, which is not an absolute path. Use a tmpfs folder such as "/run/keys".`);
    }
  }

  private validateHealthCheck(where: string, check: NixosHealthCheck): void {
    if (check.command === undefined && check.http === undefined) fail(this, `${where} has neither command nor http. Give exactly one: { command: 'systemctl is-active nginx' } or { http: { url } }.`);
    if (check.command !== undefined && check.http !== undefined) fail(this, `${where} has both command and http. Split it into two checks.`);
    if (check.http) {
      const { url, expectStatus } = check.http;
      if (!isUnresolved(url) && !/^https?:\/\/\S+$/.test(url)) fail(this, `${where}.http.url ${show(url)} is not an http(s) URL. Use e.g. "http://10.0.0.5:8080/health".`);
      if (expectStatus !== undefined && !isUnresolved(expectStatus) && !(Number.isInteger(expectStatus) && expectStatus >= 100 && expectStatus <= 599)) {
        fail(this, `${where}.http.expectStatus ${show(expectStatus)} is not an HTTP status. Use an integer from 100 to 599, e.g. 200.`);
      }
    }
    checkNonNegative(this, `${where}.retries`, check.retries, true, 'e.g. 10');
    checkPositive(this, `${where}.intervalSeconds`, check.intervalSeconds, '1');
    checkPositive(this, `${where}.timeoutSeconds`, check.timeoutSeconds, '10');
  }
}

/** Makes a relative local flake path absolute: Terraform runs in the stack's output folder. */
function absoluteFlake(flake: string): string {
  if (isUnresolved(flake) || !/^\.\.?(\/|#)/.test(flake)) return flake;
  const hash = flake.indexOf('#');
  return `${path.resolve(flake.slice(0, hash))}${flake.slice(hash)}`;
}

/**
 * Makes a relative file path absolute (from the app's working directory), since the
 * provider reads it from the stack's output folder. `~/…` and tokens stay as they are.
 */
function absolutePath(file: string | undefined): string | undefined {
  if (file === undefined || isUnresolved(file) || file.startsWith('/') || file.startsWith('~')) return file;
  return path.resolve(file);
}

function healthCheckConfig(c: NixosHealthCheck): SystemHealthCheckConfig {
  return {
    command: c.command,
    httpUrl: c.http?.url,
    expectStatus: c.http?.expectStatus,
    retries: c.retries,
    intervalSeconds: c.intervalSeconds,
    timeoutSeconds: c.timeoutSeconds,
  };
}

function keyConfig(k: NixosKey): SystemKeyConfig {
  return {
    file: absolutePath(k.file),
    command: k.command,
    textWo: k.textWo,
    textWoVersion: k.textWoVersion,
    destDir: k.destDir,
    user: k.user,
    group: k.group,
    permissions: k.permissions,
  };
}
