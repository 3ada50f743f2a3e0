#!/usr/bin/env bash
# The plan review of a pull request, without GitHub: `cdktf synth`, then for each stack
# `cdktf diff` (which writes cdktf.out/stacks/STACK/plan), `terraform show -json` of that
# plan and `cdktf-nixos plan-summary`, all Markdown appended to one file.
#
#   scripts/pr-plan-summary.sh OUT.md STACK...
#
# Runs in the current directory (the cdktf app). Needs TF_CLI_CONFIG_FILE from
# `cdktf-nixos provider install`. .github/workflows/plan-summary.yml calls it, and
# __tests__/unit/workflow.test.ts runs it for the `local` stack against a test world.
set -euo pipefail
out=${1:?usage: scripts/pr-plan-summary.sh OUT.md STACK...}
shift
[ "$#" -gt 0 ] || { echo "usage: scripts/pr-plan-summary.sh OUT.md STACK..." >&2; exit 2; }
cli="$(cd "$(dirname "$0")/.." && pwd)/bin/cdktf-nixos.js"
: "${TF_CLI_CONFIG_FILE:?set TF_CLI_CONFIG_FILE (cdktf-nixos provider install prints it)}"
export CHECKPOINT_DISABLE=1
# The app synthesizes only the stacks asked for (main.ts reads CDKTF_NIXOS_STACKS).
CDKTF_NIXOS_STACKS=$(IFS=,; echo "$*")
export CDKTF_NIXOS_STACKS

npx cdktf synth
: > "$out"
for stack in "$@"; do
  npx cdktf diff "$stack" --skip-synth --skip-provider-lock
  json="cdktf.out/stacks/$stack/plan.json"
  (cd "cdktf.out/stacks/$stack" && terraform show -json plan > plan.json)
  # PLAN_SUMMARY_IDENTITY: a key file for reading old closures from hosts (else the plan's own).
  node "$cli" plan-summary "$json" --title "Stack \`$stack\`" ${PLAN_SUMMARY_IDENTITY:+--identity "$PLAN_SUMMARY_IDENTITY"} >> "$out"
done
echo "wrote $out" >&2
