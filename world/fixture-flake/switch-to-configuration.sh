#!/bin/sh
# Emulates NixOS's switch-to-configuration on a cdktf-nixos test host: it writes files
# under /run/world, (re)starts the fixture service and records what it did. Some
# variants fail on purpose.
set -eu
PATH=/usr/local/bin:/usr/bin:/bin
system=@out@
variant=@variant@
action=${1:-}
state=/run/world
. "$state/host.env"

record() { echo "$(date +%s) $action $system $*" >> "$state/activations.log"; }

case "$action" in
  switch|test) ;;
  boot)
    ln -sfn "$system" "$state/next-boot"
    record
    echo "updated boot entry: $system becomes active at the next boot"
    exit 0 ;;
  dry-activate)
    echo "would restart the following units: fixture-service.service"
    echo "would activate $system (version $(cat "$system/nixos-version"))"
    exit 0 ;;
  *)
    echo "usage: $0 switch|boot|test|dry-activate" >&2
    exit 1 ;;
esac

echo "stopping the following units: fixture-service.service"
if [ -e "$state/service.pid" ]; then
  kill "$(cat "$state/service.pid")" 2>/dev/null || true
  rm -f "$state/service.pid"
fi
mkdir -p "$state/etc"
cp "$system/nixos-version" "$state/etc/system-version"
ln -sfn "$system" /run/current-system
[ "$action" = switch ] && ln -sfn "$system" "$state/next-boot"

if [ "$variant" = break-ssh ]; then
  touch "$state/ssh-login-disabled"
else
  rm -f "$state/ssh-login-disabled"
fi

delay=0
case "$variant" in
  fail-activation)
    record failed
    echo "warning: the following units failed: fixture-service.service (this variant fails on purpose)" >&2
    exit 4 ;;
  service-down)
    record
    exit 0 ;;
  slow-service) delay=@slow@ ;;
  slow-activation)
    echo "starting the following units: fixture-setup.service (this variant hangs in activation on purpose)"
    sleep @slow@ ;;
esac

echo "starting the following units: fixture-service.service"
setsid node "$system/share/service.js" "$SERVICE_ADDRESS" "$SERVICE_PORT" "$delay" </dev/null >>"$state/service.log" 2>&1 &
echo $! > "$state/service.pid"
record
