#!/usr/bin/env bash
# Make an arm64 Debian root file system: bookworm (Debian 12, the base of 64-bit Raspberry Pi OS: Python 3.11,
# gcc 12) by default, or trixie (Debian 13: Python 3.13) with --suite trixie.
#   scripts/arm/make-rootfs.sh [--suite SUITE] DIR [PACKAGES]     PACKAGES: comma-separated Debian packages
# mmdebstrap's extract mode only unpacks the packages (15-40 s): no maintainer script runs under emulation, which
# is what makes a configured rootfs take 8 minutes. Python, g++, cmake and pip all work in such a tree; it lacks
# only what postinst scripts make (alternatives such as `c++`, ld.so.cache, the generated CA bundle).
# Does nothing when DIR already holds a rootfs of the same packages. Needs root or sudo, and setup.sh --rootfs.
# ELASTICZO_ARM_MIRROR chooses the Debian mirror (default http://deb.debian.org/debian).
source "$(dirname "$0")/common.sh"
suite=bookworm
if [ "${1:-}" = --suite ]; then suite=$2; shift 2; fi
[ $# -ge 1 ] || die "usage: $0 [--suite SUITE] DIR [PACKAGES]"
dir=$(realpath -m "$1")
# bash, dash, coreutils and base-files/passwd make the tree usable as a chroot (in-rootfs.sh).
packages=base-files,base-passwd,bash,dash,coreutils,${2:-python3,python3-dev,libstdc++6,libgomp1}
mirror=${ELASTICZO_ARM_MIRROR:-http://deb.debian.org/debian}
stamp="$dir/.elasticzo-rootfs"

if [ -f "$stamp" ] && [ "$(head -n1 "$stamp")" = "$packages" ] && [ "$(sed -n 2p "$stamp" | cut -d' ' -f1)" = "$suite" ]; then
  log "$dir is ready ($(tail -n1 "$stamp"))"
  exit 0
fi
if [ -e "$dir" ]; then
  # Only ever delete what this script made.
  [ -f "$stamp" ] || die "$dir exists and is not a rootfs made here; remove it yourself"
  findmnt -rno TARGET | grep -q "^$dir/" && die "something is still mounted below $dir"
  log "removing $dir (made with other packages or another suite)"
  $SUDO rm -rf "$dir"
fi
# Built beside DIR and renamed when complete, so an interrupted run leaves no half rootfs behind under DIR's name.
$SUDO rm -rf "$dir.partial"
mkdir -p "$(dirname "$dir")"
timed "mmdebstrap extract" $SUDO mmdebstrap --quiet --arch=arm64 --variant=extract --include="$packages" \
  "$suite" "$dir.partial" "$mirror"
printf '%s\n%s\n' "$packages" "$suite arm64, made $(date -u +%Y-%m-%dT%H:%MZ)" | $SUDO tee "$dir.partial/${stamp##*/}" >/dev/null
$SUDO mv "$dir.partial" "$dir"
log "ready: $dir ($(du -sh "$dir" | cut -f1))"
