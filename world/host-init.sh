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
# Like a fresh NixOS root account: sshd's `bash -c` must not run this machine's shell
# start-up files (here pyenv's, which takes a lock and can stall every command).
for rc in /root/.bashrc /root/.profile /root/.bash_profile; do
  if [ -e "$rc" ]; then mount --bind /dev/null "$rc"; fi
done
# A machine's own ~/.cache: Nix keeps what it learnt of binary caches there, and one host
# must not trust what the deployer or another host remembers of a cache.
mkdir -p /root/.cache
mount -t tmpfs -o mode=0700 tmpfs /root/.cache
if [ -f "$dir/nix.conf.extra" ]; then
  # A host Nix configuration of its own: a copy of the machine's with the extra lines.
  rm -rf "$dir/etc-nix"
  cp -rL /etc/nix "$dir/etc-nix"
  cat "$dir/nix.conf.extra" >> "$dir/etc-nix/nix.conf"
  mount --bind "$dir/etc-nix" /etc/nix
fi
mkdir -p /run/sshd /run/world /nix/var/nix
cp "$dir/host.env" /run/world/host.env
if [ "${WITHOUT_NIX:-0}" = 1 ]; then
  # A host without Nix: /usr/bin keeps every command but Nix's.
  mkdir -p /run/world/usr-bin
  mount --bind /usr/bin /run/world/usr-bin
  mount -t tmpfs -o mode=0755 tmpfs /usr/bin
  for f in /run/world/usr-bin/*; do
    case "${f##*/}" in nix*) ;; *) /run/world/usr-bin/ln -s "$f" "/usr/bin/${f##*/}" ;; esac
  done
fi
guard=
if [ "${STORE_READ_ONLY:-0}" = 1 ]; then
  nix-store --init 2>/dev/null || true
  mount -o remount,bind,ro /nix
  # Without CAP_SYS_ADMIN, Nix cannot remount the store writable behind our back.
  guard="setpriv --bounding-set -sys_admin --"
fi

$guard /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
echo ready > "$dir/ready"
exec sleep infinity
