/** How to reach a host over SSH. */
export interface SshEndpoint {
  readonly host: string;
  /** @default 22 */
  readonly port?: number;
  /** @default 'root'. Any other user needs password-less sudo on the host. */
  readonly user?: string;
  /** A private key file on the deployer. @default the agent in `agent` */
  readonly privateKeyFile?: string;
  /** The agent's socket. @default $SSH_AUTH_SOCK when no privateKeyFile is given */
  readonly agent?: string;
  /**
   * The host's public key, `type base64` as in known_hosts. A different key is refused.
   * @default the key recorded in `knownHostsFile`; the first key seen is recorded there
   */
  readonly hostKey?: string;
}

/** A deploy target: an SSH endpoint, optionally behind a jump host. */
export interface SshTarget extends SshEndpoint {
  /** A jump host the connection goes through. @default none */
  readonly bastion?: SshEndpoint;
  /** Where host keys are recorded and checked. @default ~/.config/cdktf-nixos/known_hosts */
  readonly knownHostsFile?: string;
  /** @default 20 */
  readonly connectTimeoutSeconds?: number;
}

/** JSON values, as Terraform hands them over. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What to put on the host: a flake configuration, or a store path built elsewhere. */
export type SystemSource =
  | { readonly flake: string; readonly specialArgs?: { [key: string]: Json } }
  | {
      readonly storePath: string;
      /**
       * The derivation that produces `storePath`, when known (for example from an earlier
       * evaluation). It is built first if the store path is missing, as for a flake.
       * @default none: the store path must be in the deployer's store or on the host
       */
      readonly drvPath?: string;
    };

/** The switch-to-configuration actions. */
export type Action = 'switch' | 'boot' | 'test' | 'dry-activate';

/** Where the closure is built. */
export type BuildLocation = 'local' | 'target' | { readonly buildHost: SshTarget };

/** A secret placed on the host, outside the Nix store. Exactly one of file, command, text. */
export interface KeySpec {
  /** A file on the deployer, read at deploy time. */
  readonly file?: string;
  /** A shell command on the deployer whose standard output is the secret. */
  readonly command?: string;
  /** The secret itself. */
  readonly text?: string;
  /** The secret's bytes, already read on the deployer (by a caller that also hashed them). */
  readonly content?: Buffer;
  /** @default '/run/keys' */
  readonly destDir?: string;
  /** @default 'root' */
  readonly user?: string;
  /** @default 'root' */
  readonly group?: string;
  /** Octal mode. @default '0600' */
  readonly permissions?: string;
}

/** A check after activation; a failure rolls the host back. */
export type HealthCheck = ({ readonly command: string } | { readonly http: { readonly url: string; readonly expectStatus?: number } }) & {
  /** @default 10 */
  readonly retries?: number;
  /** @default 1 */
  readonly intervalSeconds?: number;
  /** Each attempt's limit. @default 10 */
  readonly timeoutSeconds?: number;
};

/** A binary cache the closure is pushed to once, and hosts substitute from. */
export interface BinaryCacheSpec {
  /** A Nix store URI the deployer writes to: file://, http(s)://, s3:// (Nix with S3 support). */
  readonly uri: string;
  /** The URI hosts read from. @default uri */
  readonly substituterUri?: string;
  /** `name:base64`, trusted by the hosts for this cache. */
  readonly publicKey: string;
  /** The signing key, a file on the deployer. */
  readonly secretKeyFile: string;
}

/** One deploy of one host. */
export interface DeployRequest {
  readonly target: SshTarget;
  readonly system: SystemSource;
  /** @default 'switch' */
  readonly action?: Action;
  /** @default 'local' */
  readonly buildOn?: BuildLocation;
  /** Let the host fetch what it can from its own substituters first. @default false */
  readonly substituteOnTarget?: boolean;
  /** @default none */
  readonly binaryCache?: BinaryCacheSpec;
  /** @default {} */
  readonly keys?: { readonly [name: string]: KeySpec };
  /** @default [] */
  readonly healthChecks?: readonly HealthCheck[];
  /** A fresh SSH login must confirm the new system in time, or the host reverts. false turns it off. @default { timeoutSeconds: 30 } */
  readonly magicRollback?: { readonly timeoutSeconds: number } | false;
  /** Generations kept on the host; older ones are deleted and collected. @default 10 */
  readonly keepGenerations?: number;
  /** How long switch-to-configuration may run. @default 600 */
  readonly activationTimeoutSeconds?: number;
  /** How long to wait for another deployer's lock on the host. @default 0 */
  readonly lockWaitSeconds?: number;
  /** How often an interrupted copy is tried again. @default 2 */
  readonly copyRetries?: number;
}

/** Progress of one host's deploy, for people watching it. */
export interface ProgressEvent {
  readonly host: string;
  readonly step: string;
  readonly message: string;
  readonly copied?: { readonly paths: number; readonly totalPaths: number; readonly bytes: number; readonly totalBytes: number };
}

/** Engine-wide settings. */
export interface EngineOptions {
  /** Where evaluation results are cached. @default ~/.cache/cdktf-nixos/eval */
  readonly evalCacheDir?: string;
  /** @default no progress reports */
  readonly onProgress?: (event: ProgressEvent) => void;
  /** Cancels work before activation starts; an activation that started is finished. */
  readonly signal?: AbortSignal;
}

/** What a successful deploy did. */
export interface DeployResult {
  readonly host: string;
  readonly action: Action;
  readonly outPath: string;
  readonly drvPath?: string;
  /** The system profile generation the host is on now (none for a fresh host's test/dry-activate). */
  readonly generation?: number;
  /** The host key seen, `type base64`. */
  readonly hostKey: string;
  /** Store paths the deployer sent to the host: what its closure lacked, or for buildOn 'target' the derivations. */
  readonly pathsCopied: number;
  /** Bytes of store data the deployer sent to the host. */
  readonly bytesSent: number;
  /** The output of dry-activate. */
  readonly dryActivateOutput?: string;
}
