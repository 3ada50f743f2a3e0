#!/bin/sh
# Runs as the first process of a test host's own mount namespace (started through
# `unshare --mount`). It gives the host its own /nix and /run, starts its sshd and
# then holds the namespace open until the host is removed.
#   host-init.sh HOST_DIR
set -eu
dir=$1
. "$dir/host.env"

if [ -n "${STORE_SIZE_BYTES:-}" ]; then
  mount -t tmpfs -o "size=$STORE_SIZE_BYTES,mode=0755" tmpfs /nix
else
  mount --bind "$dir/nix" /nix
fi
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/world /nix/var/nix
cp "$dir/host.env" /run/world/host.env
if [ "${WITHOUT_NIX:-0}" = 1 ]; then
  # A host without Nix: /usr/bin keeps every command but Nix's.
  mkdir -p /run/world/usr-bin
  mount --bind /usr/bin /run/world/usr-bin
  mount -t tmpfs -o mode=0755 tmpfs /usr/bin
  for f in /run/world/usr-bin/*; do
    case "${f##*/}" in nix*) ;; *) ln -s "$f" "/usr/bin/${f##*/}" ;; esac
  done
fi
if [ "${STORE_READ_ONLY:-0}" = 1 ]; then
  nix-store --init 2>/dev/null || true
  mount -o remount,bind,ro /nix
fi

/usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
echo ready > "$dir/ready"
exec sleep infinity
