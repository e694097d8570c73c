#!/usr/bin/env bash
# Run a command inside an arm64 rootfs (make-rootfs.sh) with chroot: every aarch64 program in it, the compiler
# included, runs under qemu-user-static through binfmt_misc, as on a Raspberry Pi.
#   scripts/arm/in-rootfs.sh ROOTFS [--cpu CPU] [--bind HOSTDIR:/inside]... -- COMMAND [ARGS...]
# CPU: --cpu, else $ELASTICZO_ARM_CPU, else cortex-a53 (never qemu's default "max", which has dotprod).
# /proc, /sys and /dev are mounted for the command and unmounted after it. The command gets a clean environment
# with the host's proxies, ELASTICZO_* variables and CA bundle: behind a TLS-inspecting proxy the rootfs's own bundle fails
# with CERTIFICATE_VERIFY_FAILED. Needs root or sudo, and setup.sh.
source "$(dirname "$0")/common.sh"
[ $# -ge 1 ] || die "usage: $0 ROOTFS [--cpu CPU] [--bind HOSTDIR:/inside]... -- COMMAND [ARGS...]"
root=$(realpath "$1")
shift
cpu=${ELASTICZO_ARM_CPU:-cortex-a53}
binds=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu=$2; shift 2 ;;
    --bind) binds+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || die "no command given"
case "$cpu" in a[0-9]*) cpu=cortex-$cpu ;; esac
[ -x "$root/bin/sh" ] || die "$root is not a root file system"
grep -qs '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 not in binfmt_misc: run setup.sh"

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    $SUDO umount -R "${mounted[$i]}" 2>/dev/null || $SUDO umount -Rl "${mounted[$i]}" || true
  done
}
trap cleanup EXIT
mount_in() {  # mount_in DIR-INSIDE MOUNT-ARGS...
  local dst=$root$1
  shift
  if mountpoint -q "$dst"; then
    # A run killed before its cleanup leaves its mounts behind; a bind whose source has since gone (a share mounted
    # again shows an empty directory there) must not be taken for the requested one: replace any bind that is not
    # the requested directory, share anything else as it is (another run of the same root may be using it).
    [ "$1" = --bind ] && [ "$(stat -Lc %d:%i "$2")" != "$(stat -Lc %d:%i "$dst")" ] || return 0
    $SUDO umount -Rl "$dst"
  fi
  $SUDO mkdir -p "$dst"
  $SUDO mount "$@" "$dst"
  mounted+=("$dst")
  $SUDO mount --make-rprivate "$dst"  # mounts made inside must not reach the host
}
mount_in /proc -t proc proc
mount_in /sys --rbind /sys
mount_in /dev --rbind /dev
for b in "${binds[@]}"; do mount_in "${b#*:}" --bind "${b%%:*}"; done

# rm first: an absolute symlink there would make cp write to the host's file.
$SUDO rm -f "$root/etc/resolv.conf" "$root/etc/ssl/certs/host-ca.crt"
$SUDO cp -L /etc/resolv.conf "$root/etc/resolv.conf"
env_vars=(HOME=/root LANG=C.UTF-8 QEMU_CPU="$cpu" PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin)
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  $SUDO mkdir -p "$root/etc/ssl/certs"
  $SUDO cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/host-ca.crt"
  env_vars+=(PIP_CERT=/etc/ssl/certs/host-ca.crt SSL_CERT_FILE=/etc/ssl/certs/host-ca.crt)
fi
for v in PIP_INDEX_URL http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY $(compgen -e | grep '^ELASTICZO_'); do
  if [ -n "${!v:-}" ]; then env_vars+=("$v=${!v}"); fi
done
log "chroot $root as $cpu: $*"
$SUDO chroot "$root" /usr/bin/env -i "${env_vars[@]}" "$@"
