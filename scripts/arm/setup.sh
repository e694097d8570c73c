#!/usr/bin/env bash
# Prepare an x86_64 Debian/Ubuntu host for the ARM checks: the aarch64 cross compiler, qemu-user, googletest, and
# qemu registered with binfmt_misc (so aarch64 programs, and a chroot into an arm64 rootfs, just run).
#   scripts/arm/setup.sh            enough for scripts/arm/test-cpp.sh
#   scripts/arm/setup.sh --rootfs   also mmdebstrap, for make-rootfs.sh and test-python.sh
# Needs root or sudo. Safe to run again: installs only what is missing (about 30 s on a fresh machine).
source "$(dirname "$0")/common.sh"

pkgs=(g++-aarch64-linux-gnu qemu-user qemu-user-static binfmt-support cmake ninja-build googletest)
[ "${1:-}" = --rootfs ] && pkgs+=(mmdebstrap arch-test)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  timed "apt-get update" $SUDO apt-get update -q
  timed "apt-get install" $SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "already installed: ${pkgs[*]}"
fi

# qemu-user-static's entry has the F flag (interpreter opened at registration), so it works inside a chroot too.
# Containers and fresh boots may lack the binfmt_misc mount.
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  log "mounting binfmt_misc"
  $SUDO mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if ! grep -qs '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
  log "registering qemu-aarch64 with binfmt_misc"
  $SUDO update-binfmts --enable qemu-aarch64
fi
grep -qs '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 is not registered with binfmt_misc"
log "ready: $(aarch64-linux-gnu-g++ --version | head -n1), $(qemu-aarch64 --version | head -n1)"
