/**
 * Entry point of the provider plugin: Terraform (or OpenTofu) starts this process
 * and talks to it over gRPC. Bundled into one file by `cdktf-nixos provider install`.
 */
import { servePlugin } from './protocol/serve';
import { nixosProvider } from './provider';

void servePlugin(nixosProvider);
