/**
 * Resource `nixos_system`: one host running one NixOS system closure.
 *
 * - plan evaluates the configuration (through the engine's cache) and plans the
 *   closure's out path; an unchanged closure plans no change.
 * - apply deploys exactly the store path (and derivation) the plan recorded.
 * - read asks the host what it runs, so a change made by hand shows as drift.
 * - destroy only forgets the host: the machine keeps running its system.
 */
import { createHash } from 'node:crypto';
import type { DeployRequest, HealthCheck, HostStatus, Json, KeySpec, SshTarget, SystemSource } from '../../lib/engine';
import { canonicalJson } from '../../lib/engine/canonical-json';
import { DeployError } from '../../lib/engine/errors';
import { engine, engineParts } from './engine';
import { forgetTarget, rememberedTargets, rememberTarget } from './known-targets';
import { forgetPlannedFetch, notePlannedFetch, plannedFetches } from './planned-fetches';
import { containsUnknown, CtyObject, CtyValue, isPlainObject, isUnknown, t, UNKNOWN } from './protocol/cty-types';
import { Diagnostic, error, warning } from './protocol/diagnostics';
import { ApplyResult, PlanResult, ResourceType } from './protocol/provider';
import { Schema } from './protocol/schema';
import { settings } from './settings';
import { canonical, list, map, num, str, toJson } from './values';

/** dry-activate changes nothing on the host, so a state holding its closure would lie: it stays a CLI action. */
const ACTIONS = ['switch', 'boot', 'test'];

export const systemSchema: Schema = {
  version: 0,
  block: {
    description: 'A NixOS system deployed to one host over SSH. Destroying it only removes it from the state: the machine keeps running.',
    attributes: {
      id: { type: t.string, computed: true },
      flake: { type: t.string, optional: true, description: 'PATH#NAME: nixosConfigurations.NAME of the flake at PATH.' },
      store_path: { type: t.string, optional: true, description: 'A system built elsewhere (instead of flake).' },
      special_args: { type: t.dynamic, optional: true, description: 'An object handed to the configuration as specialArgs.terraform.' },
      host: { type: t.string, required: true, description: 'Address of the host. Changing it replaces the resource.' },
      port: { type: t.number, optional: true, description: 'SSH port (22).' },
      user: { type: t.string, optional: true, description: 'SSH user (the provider\'s ssh_user, or root).' },
      private_key_file: { type: t.string, optional: true, description: 'Private key file on the deployer (the provider\'s, or the agent).' },
      host_key: { type: t.string, optional: true, description: 'The host\'s public key, "TYPE BASE64". Default: the first key seen, then enforced.' },
      action: { type: t.string, optional: true, description: 'switch (default), boot or test. For dry-activate use `terraform plan` or `cdktf-nixos deploy --action dry-activate`.' },
      build_on: { type: t.string, optional: true, description: 'local (default) or target.' },
      magic_rollback_seconds: { type: t.number, optional: true, description: 'A new SSH login must confirm within this time or the host reverts (30; 0 turns it off).' },
      keep_generations: { type: t.number, optional: true, description: 'Generations kept on the host (10).' },
      substitute_on_target: { type: t.bool, optional: true, description: 'Let the host fetch what it can from its own substituters first (false).' },
      connect_timeout_seconds: { type: t.number, optional: true, description: 'SSH connection timeout (20 for deploys, 10 for reads).' },
      activation_timeout_seconds: { type: t.number, optional: true, description: 'How long switch-to-configuration may run (600).' },
      lock_wait_seconds: { type: t.number, optional: true, description: 'How long to wait for another deployer\'s lock on the host (0).' },
      keys_hash: { type: t.string, computed: true, description: 'A sha256 over all keys (their content and placement). The content itself is never stored.' },
      drv_path: { type: t.string, computed: true, description: 'The derivation of the system closure (null for a prebuilt store_path).' },
      closure_path: { type: t.string, computed: true, description: 'The system closure the host runs.' },
      generation: { type: t.number, computed: true, description: 'The system profile generation on the host.' },
      host_key_seen: { type: t.string, computed: true, description: 'The host key the host presented.' },
    },
    blocks: {
      bastion: {
        nesting: 'single',
        block: {
          description: 'A jump host the SSH connection goes through. Its credentials default to the provider block\'s.',
          attributes: {
            host: { type: t.string, required: true },
            port: { type: t.number, optional: true, description: 'SSH port (22).' },
            user: { type: t.string, optional: true, description: 'SSH user (the provider\'s ssh_user, or root).' },
            private_key_file: { type: t.string, optional: true },
            host_key: { type: t.string, optional: true, description: 'The jump host\'s public key, "TYPE BASE64". Default: the first key seen, then enforced.' },
          },
        },
      },
      binary_cache: {
        nesting: 'single',
        block: {
          description: 'A binary cache the closure is pushed to once (signed), and the host substitutes from.',
          attributes: {
            uri: { type: t.string, required: true, description: 'Store URI the deployer writes to: file://, http(s)://, s3://.' },
            substituter_uri: { type: t.string, optional: true, description: 'The URI the host reads from (uri).' },
            public_key: { type: t.string, required: true, description: 'NAME:BASE64, trusted by the host for this cache.' },
            secret_key_file: { type: t.string, required: true, description: 'The signing key, a file on the deployer.' },
          },
        },
      },
      health_checks: {
        nesting: 'list',
        block: {
          description: 'A check after activation: a command on the host, or an HTTP request from the deployer. A failure rolls back.',
          attributes: {
            command: { type: t.string, optional: true },
            http_url: { type: t.string, optional: true },
            expect_status: { type: t.number, optional: true },
            retries: { type: t.number, optional: true },
            interval_seconds: { type: t.number, optional: true },
            timeout_seconds: { type: t.number, optional: true },
          },
        },
      },
      keys: {
        nesting: 'map',
        block: {
          description: 'A secret put on the host outside the Nix store. Its content is read on the deployer at apply time; only a hash is kept.',
          attributes: {
            file: { type: t.string, optional: true },
            command: { type: t.string, optional: true },
            text_wo: {
              type: t.string,
              optional: true,
              writeOnly: true,
              description: 'The content itself, write-only: Terraform never stores it in plan or state. Change text_wo_version to deploy a new text.',
            },
            text_wo_version: { type: t.number, optional: true, description: 'A version of text_wo; changing it plans an update.' },
            dest_dir: { type: t.string, optional: true },
            user: { type: t.string, optional: true },
            group: { type: t.string, optional: true },
            permissions: { type: t.string, optional: true },
          },
        },
      },
    },
  },
};

const CONFIG_ATTRIBUTES = Object.entries(systemSchema.block.attributes!)
  .filter(([, a]) => !a.computed)
  .map(([n]) => n)
  .concat(Object.keys(systemSchema.block.blocks!));

/** The SSH target of a resource object, completed from the provider block. */
export function targetOf(obj: CtyObject, hostKeyFallback?: string, defaultConnectTimeoutSeconds = 20): SshTarget {
  const bastion = isPlainObject(obj.bastion) ? obj.bastion : null;
  return {
    host: str(obj.host)!,
    port: num(obj.port),
    user: str(obj.user) ?? settings.sshUser,
    privateKeyFile: str(obj.private_key_file) ?? settings.privateKeyFile,
    ...(settings.agentSocket ? { agent: settings.agentSocket } : {}),
    hostKey: str(obj.host_key) ?? hostKeyFallback,
    ...(bastion
      ? {
          bastion: {
            host: str(bastion.host)!,
            port: num(bastion.port),
            user: str(bastion.user) ?? settings.sshUser,
            privateKeyFile: str(bastion.private_key_file) ?? settings.privateKeyFile,
            ...(settings.agentSocket ? { agent: settings.agentSocket } : {}),
            hostKey: str(bastion.host_key),
          },
        }
      : {}),
    knownHostsFile: settings.knownHostsFile,
    connectTimeoutSeconds: num(obj.connect_timeout_seconds) ?? defaultConnectTimeoutSeconds,
  };
}

/**
 * The engine request for a planned object. `config` is the configuration as Terraform
 * sent it with the apply: the only place write-only values (keys' text_wo) exist.
 */
export function deployRequestOf(planned: CtyObject, config: CtyObject | null, hostKeyFallback?: string): DeployRequest {
  const system: SystemSource =
    typeof planned.closure_path === 'string'
      ? { storePath: planned.closure_path, ...(typeof planned.drv_path === 'string' ? { drvPath: planned.drv_path } : {}) }
      : { flake: str(planned.flake)!, specialArgs: specialArgsOf(planned.special_args) };
  const rollbackSeconds = num(planned.magic_rollback_seconds);
  const cache = isPlainObject(planned.binary_cache) ? planned.binary_cache : null;
  const optional = <T>(name: string, value: T | undefined) => (value === undefined ? {} : { [name]: value });
  return {
    target: targetOf(planned, hostKeyFallback),
    system,
    action: (str(planned.action) ?? 'switch') as DeployRequest['action'],
    buildOn: (str(planned.build_on) ?? 'local') as 'local' | 'target',
    keys: engineKeys(keySpecs(planned, config)),
    healthChecks: healthChecks(planned),
    ...(rollbackSeconds === undefined ? {} : { magicRollback: rollbackSeconds === 0 ? false : { timeoutSeconds: rollbackSeconds } }),
    keepGenerations: num(planned.keep_generations),
    ...optional('substituteOnTarget', typeof planned.substitute_on_target === 'boolean' ? planned.substitute_on_target : undefined),
    ...(cache
      ? {
          binaryCache: {
            uri: str(cache.uri)!,
            ...optional('substituterUri', str(cache.substituter_uri)),
            publicKey: str(cache.public_key)!,
            secretKeyFile: str(cache.secret_key_file)!,
          },
        }
      : {}),
    ...optional('activationTimeoutSeconds', num(planned.activation_timeout_seconds)),
    ...optional('lockWaitSeconds', num(planned.lock_wait_seconds)),
  };
}

/**
 * A key as planned: the engine's KeySpec, and for a key given as write-only text, the
 * text's version instead of its content (the text is in neither plan nor state).
 */
export interface PlannedKey extends KeySpec {
  writeOnlyVersion?: number | null;
}

/**
 * The keys of an object. A key with neither file nor command takes its text from
 * `text_wo` in `config` (write-only: only Terraform's configuration carries it).
 */
export function keySpecs(obj: CtyObject, config: CtyObject | null = null): { [name: string]: PlannedKey } {
  const out: { [name: string]: PlannedKey } = {};
  const configured = config && isPlainObject(config.keys) ? config.keys : {};
  for (const [name, k] of Object.entries(map(obj.keys))) {
    const file = str(k.file);
    const command = str(k.command);
    const wo = (configured[name] as CtyObject | undefined)?.text_wo;
    out[name] = {
      ...(file !== undefined ? { file } : {}),
      ...(command !== undefined ? { command } : {}),
      ...(typeof wo === 'string' ? { text: wo } : {}),
      ...(file === undefined && command === undefined ? { writeOnlyVersion: num(k.text_wo_version) ?? null } : {}),
      destDir: str(k.dest_dir),
      user: str(k.user),
      group: str(k.group),
      permissions: str(k.permissions),
    };
  }
  return out;
}

/** The keys as the engine takes them. */
function engineKeys(keys: { [name: string]: PlannedKey }): { [name: string]: KeySpec } {
  const out: { [name: string]: KeySpec } = {};
  for (const [name, { writeOnlyVersion, ...spec }] of Object.entries(keys)) {
    void writeOnlyVersion;
    out[name] = spec;
  }
  return out;
}

/**
 * One hash over all keys: each key's placement and the sha256 of its content, read
 * on the deployer now; for write-only text, its text_wo_version instead (the text
 * itself may only reach the host). Null when there are no keys.
 */
export async function hashKeys(keys: { [name: string]: PlannedKey }, host?: string): Promise<string | null> {
  return hashOfKeys(await readKeys(keys, host));
}

/**
 * The keys with the content of file and command keys read on the deployer, once: apply
 * hashes and uploads the same bytes, so a command's output cannot differ between the two.
 */
export async function readKeys(keys: { [name: string]: PlannedKey }, host?: string): Promise<{ [name: string]: PlannedKey }> {
  const out: { [name: string]: PlannedKey } = {};
  for (const [name, spec] of Object.entries(keys)) {
    if (spec.writeOnlyVersion !== undefined) {
      out[name] = spec;
      continue;
    }
    const placement = { destDir: spec.destDir, user: spec.user, group: spec.group, permissions: spec.permissions };
    out[name] = { ...placement, content: await engineParts().readKeyContent(name, spec, host) };
  }
  return out;
}

/** The hash of keys whose content was read (see readKeys). */
function hashOfKeys(keys: { [name: string]: PlannedKey }): string | null {
  const names = Object.keys(keys).sort();
  if (names.length === 0) return null;
  const entries: Json[] = [];
  for (const name of names) {
    const spec = keys[name];
    const placement = {
      name,
      destDir: spec.destDir ?? null,
      user: spec.user ?? null,
      group: spec.group ?? null,
      permissions: spec.permissions ?? null,
    };
    if (spec.writeOnlyVersion !== undefined) {
      entries.push({ ...placement, writeOnlyVersion: spec.writeOnlyVersion });
      continue;
    }
    entries.push({ ...placement, content: createHash('sha256').update(spec.content!).digest('hex') });
  }
  return `sha256:${createHash('sha256').update(canonicalJson(entries)).digest('hex')}`;
}

function healthChecks(obj: CtyObject): HealthCheck[] {
  return list(obj.health_checks).map((c) => {
    const common = { retries: num(c.retries), intervalSeconds: num(c.interval_seconds), timeoutSeconds: num(c.timeout_seconds) };
    const command = str(c.command);
    if (command !== undefined) return { command, ...common };
    return { http: { url: str(c.http_url)!, expectStatus: num(c.expect_status) }, ...common };
  });
}

function specialArgsOf(value: CtyValue): { [key: string]: Json } | undefined {
  if (value === null) return undefined;
  const json = toJson(value, ['special_args']);
  if (json === null) return undefined;
  if (typeof json !== 'object' || Array.isArray(json)) throw new Error('special_args must be an object');
  return json;
}

function cacheDir(): string | undefined {
  return settings.evalCacheDir;
}

/** Where the provider keeps what outlives a process: the evaluation cache's folder. */
function stateDir(): string {
  return settings.evalCacheDir ?? engine().DEFAULT_EVAL_CACHE_DIR;
}

/** How a refresh reaches the host of a stored object. */
function readTarget(obj: CtyObject): SshTarget {
  return targetOf(obj, str(obj.host_key_seen), 10);
}

let readingAhead = false;

/**
 * At the first refresh of a provider process, starts reading every host this working
 * directory's last refresh reached, all at once (see known-targets.ts).
 */
function readAllAhead(): void {
  if (readingAhead) return;
  readingAhead = true;
  engine().readAhead(rememberedTargets(stateDir()));
}

/** The attributes that say how to reach the host and which cache it fetches from. */
const FETCH_ATTRIBUTES = ['host', 'port', 'user', 'private_key_file', 'host_key', 'bastion', 'connect_timeout_seconds', 'binary_cache', 'closure_path'];

/**
 * Notes what the host will fetch from its binary cache when this plan is applied (see
 * planned-fetches.ts), or removes an older note when it fetches nothing.
 */
function notePlan(planned: CtyObject, prior: CtyObject | null): void {
  // A host known only after apply cannot be noted; its apply fetches for itself.
  if (FETCH_ATTRIBUTES.some((n) => containsUnknown(planned[n]))) return;
  const request = deployRequestOf(planned, null, str(prior?.host_key_seen));
  const outPath = str(planned.closure_path);
  if (!request.binaryCache || !outPath || (request.buildOn ?? 'local') !== 'local' || outPath === str(prior?.closure_path)) {
    forgetPlannedFetch(stateDir(), request.target);
    return;
  }
  const drvPath = str(planned.drv_path);
  notePlannedFetch(stateDir(), { target: request.target, closure: { outPath, ...(drvPath ? { drvPath } : {}) }, cache: request.binaryCache });
}

/** Starts every host that the plan gave this closure and cache fetching it (once per host and closure). */
function fetchAheadAsPlanned(outPath: string, cache: { uri: string }): void {
  for (const fetch of plannedFetches(stateDir(), outPath, cache.uri)) void engine().fetchAhead(fetch.target, fetch.closure, fetch.cache, stateDir());
}

function messageOf(thrown: unknown): string {
  return thrown instanceof Error ? thrown.message : String(thrown);
}

/** Checks what can be checked without touching any host. */
function validateConfig(config: CtyObject): Diagnostic[] {
  const diags: Diagnostic[] = [];
  const known = (v: CtyValue) => !isUnknown(v);
  if (known(config.flake) && known(config.store_path) && (config.flake === null) === (config.store_path === null)) {
    diags.push(error('Give exactly one of flake or store_path', 'flake is PATH#NAME of a nixosConfiguration; store_path a system built elsewhere.', ['flake']));
  }
  if (config.action === 'dry-activate') {
    diags.push(
      error(
        'action "dry-activate" cannot be a resource\'s action',
        'It changes nothing on the host, so the state would record a system the host does not run. Use switch, boot or test here; `cdktf-nixos deploy --action dry-activate` shows what an activation would do.',
        ['action'],
      ),
    );
  } else if (typeof config.action === 'string' && !ACTIONS.includes(config.action)) {
    diags.push(error(`Unknown action "${config.action}"`, `Use one of ${ACTIONS.join(', ')}.`, ['action']));
  }
  if (typeof config.build_on === 'string' && !['local', 'target'].includes(config.build_on)) {
    diags.push(error(`Unknown build_on "${config.build_on}"`, 'Use local or target.', ['build_on']));
  }
  const args = config.special_args;
  if (args !== null && !containsUnknown(args)) {
    try {
      specialArgsOf(args);
    } catch (e) {
      diags.push(error('special_args must be an object', messageOf(e), ['special_args']));
    }
  }
  if (isPlainObject(config.keys)) {
    for (const [name, k] of Object.entries(config.keys)) {
      if (!isPlainObject(k) || containsUnknown(k)) continue;
      if ([k.file, k.command, k.text_wo].filter((v) => v !== null && v !== undefined).length !== 1) {
        diags.push(
          error(`Key "${name}" needs exactly one of file, command or text_wo`, 'A file or command is read on the deployer at apply time; text_wo is write-only. The content is never stored.', ['keys', { key: name }]),
        );
      }
      if ((k.text_wo ?? null) === null && (k.text_wo_version ?? null) !== null) {
        diags.push(error(`Key "${name}" has text_wo_version without text_wo`, undefined, ['keys', { key: name }, 'text_wo_version']));
      }
    }
  }
  if (Array.isArray(config.health_checks)) {
    config.health_checks.forEach((c, i) => {
      if (!isPlainObject(c) || containsUnknown(c)) return;
      if ((c.command === null) === (c.http_url === null)) {
        diags.push(error('A health check needs exactly one of command or http_url', undefined, ['health_checks', i]));
      }
    });
  }
  return diags;
}

/** The store path the host runs for this action: the profile's for boot, else the active one. */
function runningSystem(st: HostStatus, action: string): string | undefined {
  if (action === 'boot') return st.generations.find((g) => g.current)?.system ?? st.currentSystem;
  return st.currentSystem;
}

function sameConfig(a: CtyObject, b: CtyObject): boolean {
  return CONFIG_ATTRIBUTES.every((n) => canonical(a[n]) === canonical(b[n]));
}

export const systemResource: ResourceType = {
  schema: systemSchema,

  validate(config) {
    return validateConfig(config);
  },

  async plan({ prior, proposed, config }): Promise<PlanResult> {
    if (proposed === null) return { planned: null }; // destroy: the host is left as it is
    // Write-only values are only in config (Terraform nulls them elsewhere): validate that.
    const diagnostics = validateConfig(config ?? proposed);
    if (diagnostics.some((d) => d.severity === 'error')) return { planned: null, diagnostics };
    const planned: CtyObject = { ...proposed };
    const host = typeof proposed.host === 'string' ? proposed.host : undefined;

    // The closure: from the store path, or evaluated from the flake when its inputs are known.
    const { flake, store_path: storePath, special_args: args } = proposed;
    if (isUnknown(storePath) || (storePath === null && (isUnknown(flake) || containsUnknown(args)))) {
      planned.closure_path = UNKNOWN;
      planned.drv_path = UNKNOWN;
    } else if (typeof storePath === 'string') {
      planned.closure_path = storePath;
      planned.drv_path = null;
    } else {
      try {
        const evaluation = await engine().evaluate({ flake: flake as string, specialArgs: specialArgsOf(args) }, cacheDir(), host);
        planned.closure_path = evaluation.outPath;
        planned.drv_path = evaluation.drvPath ?? null;
      } catch (e) {
        return { planned: null, diagnostics: [error('Evaluating the NixOS configuration failed', messageOf(e), ['flake'])] };
      }
    }

    // Keys: a hash of their content now, so that a changed secret plans an update.
    if (containsUnknown(proposed.keys)) {
      planned.keys_hash = UNKNOWN;
    } else {
      try {
        planned.keys_hash = await hashKeys(keySpecs(proposed), host);
      } catch (e) {
        return { planned: null, diagnostics: [error('Reading a key on the deployer failed', messageOf(e), ['keys'])] };
      }
    }

    const replacing = prior !== null && canonical(prior.host) !== canonical(proposed.host);
    notePlan(planned, replacing ? null : prior);
    const pinned = typeof proposed.host_key === 'string' ? proposed.host_key : undefined;
    if (prior === null || replacing) {
      planned.id = UNKNOWN;
      planned.generation = UNKNOWN;
      planned.host_key_seen = pinned ?? UNKNOWN;
      return { planned, requiresReplace: replacing ? [['host']] : [], diagnostics };
    }
    planned.id = prior.id;
    planned.host_key_seen = pinned ?? (isUnknown(proposed.host_key) ? UNKNOWN : prior.host_key_seen);
    const unchanged =
      sameConfig(prior, proposed) &&
      canonical(prior.closure_path) === canonical(planned.closure_path) &&
      canonical(prior.drv_path) === canonical(planned.drv_path) &&
      canonical(prior.keys_hash) === canonical(planned.keys_hash);
    planned.generation = unchanged ? prior.generation : UNKNOWN;
    if (unchanged) planned.host_key_seen = prior.host_key_seen;
    return { planned, diagnostics };
  },

  async apply({ prior, planned, config }, ctx): Promise<ApplyResult> {
    if (planned === null) {
      // Destroyed: forgotten, the machine keeps running.
      if (prior !== null) forgetTarget(stateDir(), readTarget(prior));
      return { newState: null };
    }
    const host = str(planned.host)!;
    const hostKeyFallback = prior && canonical(prior.host) === canonical(planned.host) ? str(prior.host_key_seen) : undefined;
    const target = targetOf(planned, hostKeyFallback);
    let keys: { [name: string]: PlannedKey };
    let keysHash: string | null;
    try {
      keys = await readKeys(keySpecs(planned, config), host);
      keysHash = hashOfKeys(keys);
    } catch (e) {
      return failed(prior, planned, target, [error('Reading a key on the deployer failed', messageOf(e), ['keys'])]);
    }
    if (!isUnknown(planned.keys_hash) && planned.keys_hash !== keysHash) {
      return failed(prior, planned, target, [
        error('A key changed between plan and apply', 'The content of a key is not what the plan saw. Nothing was deployed; plan again.', ['keys']),
      ]);
    }
    // Deploy what the plan recorded; only a closure unknown at plan time is evaluated now.
    const request: DeployRequest = { ...deployRequestOf(planned, config, hostKeyFallback), keys: engineKeys(keys) };
    if (request.binaryCache && typeof planned.closure_path === 'string') fetchAheadAsPlanned(planned.closure_path, request.binaryCache);
    try {
      const result = await engine().deploy(request, { evalCacheDir: cacheDir(), signal: ctx.signal });
      const port = num(planned.port) ?? 22;
      const newState: CtyObject = {
        ...planned,
        id: typeof planned.id === 'string' ? planned.id : `${host}:${port}`,
        closure_path: result.outPath,
        drv_path: typeof planned.drv_path === 'string' || planned.drv_path === null ? planned.drv_path : (result.drvPath ?? null),
        keys_hash: keysHash,
        generation: result.generation ?? null,
        host_key_seen: typeof planned.host_key_seen === 'string' ? planned.host_key_seen : result.hostKey,
      };
      rememberTarget(stateDir(), readTarget(newState));
      return { newState };
    } catch (e) {
      const summary = e instanceof DeployError ? `Deploying to ${host} failed` : `Deploying to ${host} failed unexpectedly`;
      return failed(prior, planned, target, [error(summary, messageOf(e))]);
    } finally {
      forgetPlannedFetch(stateDir(), target);
    }
  },

  async read({ current }) {
    const action = str(current.action) ?? 'switch';
    const target = readTarget(current);
    readAllAhead();
    let st: HostStatus;
    try {
      st = await engine().statusReadAhead(target);
      rememberTarget(stateDir(), target);
    } catch (e) {
      return {
        newState: current,
        diagnostics: [warning(`Cannot read what ${str(current.host)} runs; keeping the stored state`, messageOf(e))],
      };
    }
    const running = runningSystem(st, action) ?? null;
    if (running !== current.closure_path) {
      // Changed outside Terraform: report what the host really runs, so the plan shows it.
      return { newState: { ...current, closure_path: running, drv_path: null, generation: st.generation ?? null } };
    }
    return { newState: { ...current, generation: st.generation ?? current.generation } };
  },

  async importState(id) {
    const match = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(id.trim());
    if (!match) {
      return { imported: [], diagnostics: [error('Cannot read the import address', `Write it as HOST, HOST:PORT or USER@HOST:PORT, not "${id}".`)] };
    }
    const [, user, rawHost, port] = match;
    const host = rawHost.replace(/^\[(.*)\]$/, '$1');
    const state: CtyObject = {};
    for (const name of Object.keys(systemSchema.block.attributes!)) state[name] = null;
    Object.assign(state, { health_checks: [], keys: {}, bastion: null, binary_cache: null, host, port: port ? Number(port) : null, user: user ?? null });
    let st: HostStatus;
    try {
      st = await engine().status(targetOf(state, undefined, 10));
    } catch (e) {
      return { imported: [], diagnostics: [error(`Cannot reach ${host} to import it`, messageOf(e))] };
    }
    if (!st.currentSystem) {
      return { imported: [], diagnostics: [error(`${host} runs no NixOS system`, 'There is no /run/current-system to adopt; create the resource instead.')] };
    }
    rememberTarget(stateDir(), targetOf(state, st.hostKey, 10));
    Object.assign(state, {
      id: `${host}:${port ?? 22}`,
      closure_path: st.currentSystem,
      generation: st.generation ?? null,
      host_key_seen: st.hostKey,
    });
    return { imported: [{ state }] };
  },
};

/**
 * The state after a failed apply: no object after a failed create, otherwise the prior
 * object with what the host really runs (it was rolled back, or never changed).
 */
async function failed(prior: CtyObject | null, planned: CtyObject, target: SshTarget, diagnostics: Diagnostic[]): Promise<ApplyResult> {
  if (prior === null) return { newState: null, diagnostics };
  const state: CtyObject = { ...prior };
  try {
    const st = await engine().status({ ...target, connectTimeoutSeconds: 10 });
    const running = runningSystem(st, str(prior.action) ?? 'switch');
    if (running && running !== prior.closure_path) {
      state.closure_path = running;
      state.drv_path = running === planned.closure_path && typeof planned.drv_path === 'string' ? planned.drv_path : null;
    }
    state.generation = st.generation ?? prior.generation;
  } catch (e) {
    diagnostics.push(warning('Cannot check what the host runs after the failure; keeping the prior state', messageOf(e)));
  }
  return { newState: state, diagnostics };
}
