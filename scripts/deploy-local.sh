#!/usr/bin/env bash
# The main job: `cdktf deploy local` of the example app onto the test world's two hosts,
# then what those hosts report over SSH. A second run is a no-change deploy.
set -euo pipefail
cd "$(dirname "$0")/.."
world=${CDKTF_NIXOS_WORLD:-/var/lib/cdktf-nixos-world/default}

bash world/setup-system.sh
npx tsx world/cli.ts up 2 >/dev/null   # host1 and host2; running hosts are kept
# The local binary cache's signing key (kept if it exists); stack `local` trusts its public half.
node bin/cdktf-nixos.js cache-key generate --name cdktf-nixos-local-1 --out "$world/cache-key" >/dev/null
node bin/cdktf-nixos.js provider install >/dev/null

export TF_CLI_CONFIG_FILE="$PWD/.terraform-providers/terraform.rc" CHECKPOINT_DISABLE=1
# The provider is rebuilt from this checkout, so its hash changes with the code: keep it out
# of Terraform's shared plugin cache, and let init record it afresh.
export CDKTF_DISABLE_PLUGIN_CACHE_ENV=1
rm -f cdktf.out/stacks/local/.terraform.lock.hcl
# Offline, `terraform providers lock` cannot reach a registry; the filesystem mirror is enough.
npx cdktf deploy local --auto-approve --skip-provider-lock

for host in host1 host2; do
  port=$(node -p "require('$world/hosts/$host/host.json').port")
  node bin/cdktf-nixos.js status --host 127.0.0.1 --port "$port" --identity "$world/client/id_ed25519" \
    --host-key "$(cut -d' ' -f1,2 "$world/hosts/$host/ssh_host_ed25519_key.pub")"
done
