#!/bin/sh
# Run an aarch64 Linux program under qemu-user as a Raspberry Pi CPU; also CMake's cross-compiling emulator
# (cmake/toolchain-aarch64.cmake), so `ELASTICZO_ARM_CPU=a76 ctest` switches the CPU without reconfiguring.
#   scripts/arm/qemu-run.sh [--default-cpu CPU] [--libs DIR] PROGRAM [ARGS...]
# CPU: $ELASTICZO_ARM_CPU, else --default-cpu, else cortex-a53. a53 = Pi Zero 2 W / Pi 3, a72 = Pi 4 (both
#      ARMv8.0, no dotprod), a76 = Pi 5 (dotprod), or any name from `qemu-aarch64 -cpu help`.
# Libraries: --libs, else $ELASTICZO_ARM_SYSROOT, else Debian's cross libraries in /usr/aarch64-linux-gnu.
# Both go to qemu through QEMU_CPU / QEMU_LD_PREFIX, so programs the guest starts (through binfmt_misc) inherit
# them; qemu's own default CPU, "max", has dotprod and SVE, more than any Pi.
set -eu
cpu=cortex-a53
libs=${ELASTICZO_ARM_SYSROOT:-/usr/aarch64-linux-gnu}
while [ $# -gt 0 ]; do
  case "$1" in
    --default-cpu) cpu=$2; shift 2 ;;
    --libs) libs=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [--default-cpu CPU] [--libs DIR] PROGRAM [ARGS...]" >&2; exit 2; }
cpu=${ELASTICZO_ARM_CPU:-$cpu}
case "$cpu" in a[0-9]*) cpu=cortex-$cpu ;; esac
QEMU_CPU=$cpu QEMU_LD_PREFIX=$libs
export QEMU_CPU QEMU_LD_PREFIX
if command -v qemu-aarch64 >/dev/null; then exec qemu-aarch64 "$@"; fi
exec qemu-aarch64-static "$@"
