/**
 * The `nixos` Terraform provider (registry.terraform.io/cdktf-nixos/nixos):
 * resource `nixos_system` and data source `nixos_closure`, on the plugin protocol layer.
 */
import { ProviderDefinition } from './protocol/provider';
import { closureDataSource } from './data-closure';
import { systemResource } from './resource-system';
import { configureSettings, providerSchema } from './settings';

export { providerSchema } from './settings';

export const nixosProvider: ProviderDefinition = {
  schema: providerSchema,
  resources: { nixos_system: systemResource },
  dataSources: { nixos_closure: closureDataSource },
  configure(config) {
    configureSettings(config);
    return [];
  },
};
