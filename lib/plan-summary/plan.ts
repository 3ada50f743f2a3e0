/**
 * Reading `terraform show -json PLANFILE`: the `nixos_system` resource changes, with what
 * is needed to reach each host. Plain Terraform JSON; nothing here knows cdktf.
 */

/** What happens to one nixos_system. */
export type SystemAction = 'create' | 'update' | 'replace' | 'no change' | 'delete';

/** How to reach a host over SSH, from the plan's prior state and the provider block. */
export interface SystemSsh {
  readonly host: string;
  readonly port?: number;
  readonly user?: string;
  readonly privateKeyFile?: string;
  /** `TYPE BASE64`: the configured host key, or the one recorded in the state. */
  readonly hostKey?: string;
  readonly knownHostsFile?: string;
  readonly bastion?: { host: string; port?: number; user?: string; privateKeyFile?: string; hostKey?: string };
}

/** One nixos_system of the plan. */
export interface SystemChange {
  readonly address: string;
  readonly action: SystemAction;
  /** `host` or `host:port` (port shown unless 22). */
  readonly hostLabel: string;
  /** The closure the host runs now (prior state), if any. */
  readonly oldClosure?: string;
  /** The planned closure; `undefined` for a delete; `unknown` when known only after apply. */
  readonly newClosure?: string;
  readonly newClosureUnknown: boolean;
  /** The planned closure's derivation, when the plan knows it. */
  readonly newDrvPath?: string;
  /** SSH to the host as it is now (prior state), for fetching the old closure's metadata. */
  readonly ssh?: SystemSsh;
}

type Obj = { [key: string]: unknown };

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

function actionOf(actions: unknown): SystemAction | undefined {
  if (!Array.isArray(actions)) return undefined;
  const a = actions.join(',');
  if (a === 'create') return 'create';
  if (a === 'update') return 'update';
  if (a === 'delete') return 'delete';
  if (a === 'no-op' || a === 'read') return 'no change';
  if (a === 'delete,create' || a === 'create,delete') return 'replace';
  return undefined;
}

/** The provider block's constant values (`provider "nixos"` or an alias of it). */
function providerDefaults(plan: Obj, providerName: unknown): Obj {
  const configs = isObj(plan.configuration) && isObj(plan.configuration.provider_config) ? plan.configuration.provider_config : {};
  const key = typeof providerName === 'string' ? providerName : 'nixos';
  const config = (isObj(configs[key]) ? configs[key] : Object.values(configs).find((c) => isObj(c) && c.name === 'nixos')) as Obj | undefined;
  const out: Obj = {};
  if (config && isObj(config.expressions)) {
    for (const [name, expr] of Object.entries(config.expressions)) if (isObj(expr) && 'constant_value' in expr) out[name] = expr.constant_value;
  }
  return out;
}

function label(host: string, port: number | undefined): string {
  return port && port !== 22 ? `${host}:${port}` : host;
}

/** The nixos_system changes of a plan (`terraform show -json` output, parsed). */
export function systemChanges(planJson: unknown): SystemChange[] {
  if (!isObj(planJson) || !('format_version' in planJson)) {
    throw new Error('this is not the output of `terraform show -json PLANFILE` (no format_version).');
  }
  const changes = Array.isArray(planJson.resource_changes) ? planJson.resource_changes : [];
  const out: SystemChange[] = [];
  for (const rc of changes) {
    if (!isObj(rc) || rc.type !== 'nixos_system' || rc.mode === 'data' || !isObj(rc.change)) continue;
    const action = actionOf(rc.change.actions);
    if (!action) continue;
    const before = isObj(rc.change.before) ? rc.change.before : undefined;
    const after = isObj(rc.change.after) ? rc.change.after : undefined;
    const unknown = isObj(rc.change.after_unknown) ? rc.change.after_unknown : {};
    const defaults = providerDefaults(planJson, rc.provider_config_key);
    const current = before ?? after ?? {};
    const host = str(current.host) ?? '(unknown host)';
    const port = num(current.port);
    const bastion = Array.isArray(current.bastion) ? current.bastion[0] : current.bastion;
    const ssh: SystemSsh | undefined = before
      ? {
          host,
          port,
          user: str(before.user) ?? str(defaults.ssh_user),
          privateKeyFile: str(before.private_key_file) ?? str(defaults.private_key_file),
          hostKey: str(before.host_key) ?? str(before.host_key_seen),
          knownHostsFile: str(defaults.known_hosts_file),
          bastion: isObj(bastion) && str(bastion.host)
            ? {
                host: str(bastion.host)!,
                port: num(bastion.port),
                user: str(bastion.user) ?? str(defaults.ssh_user),
                privateKeyFile: str(bastion.private_key_file) ?? str(defaults.private_key_file),
                hostKey: str(bastion.host_key),
              }
            : undefined,
        }
      : undefined;
    const newClosureUnknown = action !== 'delete' && unknown.closure_path === true;
    out.push({
      address: String(rc.address),
      action,
      hostLabel: after && (unknown.host === true) ? '(known after apply)' : label(str((after ?? current).host) ?? host, num((after ?? current).port) ?? port),
      oldClosure: before ? str(before.closure_path) : undefined,
      newClosure: action === 'delete' || newClosureUnknown ? undefined : str(after?.closure_path),
      newClosureUnknown,
      newDrvPath: action === 'delete' ? undefined : str(after?.drv_path),
      ssh,
    });
  }
  return out;
}
