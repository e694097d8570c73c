# Sourced by the scripts in scripts/arm: logging with elapsed seconds, root via sudo, the project and cache paths.
# Root file systems live outside the source tree, in $ELASTICZO_ARM_CACHE (default ~/.cache/elasticzo-arm).
set -euo pipefail
EZ_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EZ_ARM_CACHE=${ELASTICZO_ARM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/elasticzo-arm}
EZ_TAG=$(basename "$0" .sh)
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

log() { printf '[%s %4ds] %s\n' "$EZ_TAG" "$SECONDS" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# timed "what" CMD ARGS...: runs CMD, then logs how long it took (the figures in the README's Raspberry Pi section come from here).
timed() {
  local what=$1 t0=$SECONDS
  shift
  log "$what: $*"
  "$@"
  log "$what took $((SECONDS - t0)) s"
}
# 0 or 1: whether qemu's CPU model has the ARMv8.2 dot product (Pi 5's Cortex-A76 does, the A53 and A72 do not).
expect_dotprod() {
  case "$1" in
    a53 | a72 | cortex-a53 | cortex-a72 | cortex-a57 | cortex-a35) echo 0 ;;
    a76 | cortex-a76 | neoverse-n1 | max) echo 1 ;;
    *) die "unknown CPU '$1': say whether it has dotprod in scripts/arm/common.sh" ;;
  esac
}
