#!/usr/bin/env bash
# The main job until the constructs exist: the engine's own deploy of the fixture flake
# onto two local test hosts, then what those hosts report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash world/setup-system.sh
npx tsx scripts/local-targets.ts .world/targets.json
node bin/cdktf-nixos.js deploy --targets .world/targets.json
for port in $(node -e 'for (const r of require("./.world/targets.json")) console.log(r.target.port)'); do
  node bin/cdktf-nixos.js status --host 127.0.0.1 --port "$port" --identity /var/lib/cdktf-nixos-world/default/client/id_ed25519 --known-hosts .world/known_hosts
done
