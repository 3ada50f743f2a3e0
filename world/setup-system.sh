#!/usr/bin/env bash
# Installs and configures what the test world needs on this machine. Idempotent:
# a second run changes nothing and takes well under a second.
set -euo pipefail

need=()
command -v nix-store >/dev/null || need+=(nix-bin)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v sudo >/dev/null || need+=(sudo)
command -v ip >/dev/null || need+=(iproute2)
command -v flock >/dev/null || need+=(util-linux)
# Terraform's pg backend in the tests: a throwaway cluster per suite (world/postgres.ts).
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup-system: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Single-user Nix as root. No substituters: this machine reaches no binary cache,
# and trying cache.nixos.org costs seconds per build.
mkdir -p /etc/nix
conf=/etc/nix/nix.conf
touch "$conf"
set_conf() {
  if grep -qE "^$1 *=" "$conf"; then
    sed -i -E "s|^$1 *=.*|$1 = $2|" "$conf"
  else
    echo "$1 = $2" >> "$conf"
  fi
}
set_conf sandbox false
set_conf experimental-features "nix-command flakes"
set_conf substituters ""
set_conf warn-dirty false

# The unprivileged deploy user of the sudo tests.
if ! id nixdeploy >/dev/null 2>&1; then
  useradd --system --create-home --shell /bin/sh nixdeploy
fi
# Without PAM, sshd refuses every login to a locked account ("!" as its password), keys
# included: '*' has no password either, but is not locked.
if [ "$(getent shadow nixdeploy | cut -d: -f2)" = '!' ]; then usermod -p '*' nixdeploy; fi
echo 'nixdeploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/nixdeploy
chmod 0440 /etc/sudoers.d/nixdeploy
