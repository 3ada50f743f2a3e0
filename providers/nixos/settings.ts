/**
 * The `provider "nixos"` block: defaults for every resource and data source.
 * Terraform configures a provider process once, before any plan, apply or read.
 */
import { t } from './protocol/cty-types';
import { CtyObject, isUnknown } from './protocol/cty-types';
import { Schema } from './protocol/schema';

export interface ProviderSettings {
  sshUser?: string;
  privateKeyFile?: string;
  agentSocket?: string;
  knownHostsFile?: string;
  evalCacheDir?: string;
}

export const providerSchema: Schema = {
  block: {
    description: 'Deploys NixOS system closures to hosts over SSH.',
    attributes: {
      ssh_user: { type: t.string, optional: true, description: 'Default SSH user of every host (root; any other user needs password-less sudo).' },
      private_key_file: { type: t.string, optional: true, description: 'Default private key file on the deployer.' },
      agent_socket: { type: t.string, optional: true, description: 'SSH agent socket. Default: $SSH_AUTH_SOCK when no key file is given.' },
      known_hosts_file: { type: t.string, optional: true, description: 'Where first-seen host keys are recorded. Default: ~/.config/cdktf-nixos/known_hosts.' },
      eval_cache_dir: { type: t.string, optional: true, description: 'Evaluation cache folder. Default: ~/.cache/cdktf-nixos/eval.' },
    },
  },
};

/** The settings of this provider process (one provider configuration per process). */
export const settings: ProviderSettings = {};

/** Stores the provider block's values. Unknown values count as unset. */
export function configureSettings(config: CtyObject): void {
  const read = (name: string): string | undefined => {
    const v = config[name];
    return typeof v === 'string' && !isUnknown(v) ? v : undefined;
  };
  settings.sshUser = read('ssh_user');
  settings.privateKeyFile = read('private_key_file');
  settings.agentSocket = read('agent_socket');
  settings.knownHostsFile = read('known_hosts_file');
  settings.evalCacheDir = read('eval_cache_dir');
}
