#!/usr/bin/env bash
# Prove the Python package on arm64 Debian 12 + Python 3.11 (64-bit Raspberry Pi OS), under qemu-user.
#   scripts/arm/test-python.sh [--tier 1|2] [PYTEST ARGS...]
#   (default: tier 1, pytest tests/python -m "not training": whole-epoch runs are native-only; the emulated run
#   trains briefly in tests/python/test_cross_platform.py instead)
# Tier 1 (CI, ~2 min): the wheel is cross-built on the host (scikit-build-core, aarch64 gcc, the rootfs as
#   sysroot), pip puts it and the aarch64 wheels of its dependencies into the rootfs's /usr/local site dir,
#   and only Python runs emulated: pytest as cortex-a53 and as cortex-a76.
# Tier 2 (by hand, slow): what a Pi user does, all emulated in a chroot: a venv, `pip install ".[test]"`
#   (scikit-build-core, cmake and g++ 12 on arm64, dependencies from PyPI), then pytest as both CPUs.
# Both also check that build_info() offers neon_dotprod exactly on the A76. The PyTorch-oracle tests report
# themselves skipped there (pytest.importorskip): PyTorch is the x86 test oracle only, as on a real Pi.
# Needs root or sudo and setup.sh --rootfs; rootfs in $ELASTICZO_ARM_CACHE.
source "$(dirname "$0")/common.sh"
tier=1
if [ "${1:-}" = --tier ]; then tier=$2; shift 2; fi
[ "$tier" = 1 ] || [ "$tier" = 2 ] || die "--tier must be 1 or 2"
cpus=${ELASTICZO_ARM_CPUS:-cortex-a53 cortex-a76}

cd "$EZ_SRC"
pytest_args=("$@")
[ ${#pytest_args[@]} -gt 0 ] || pytest_args=(tests/python -m "not training")
# Printed by every run, and checked: the machine and the kernel level chosen at run time.
check_info='import json, os, elasticzo
info = elasticzo.build_info()
print(json.dumps({k: info[k] for k in ("machine", "isa", "available_isas", "thread_pool", "threads")}))
want = os.environ["ELASTICZO_EXPECT_DOTPROD"] == "1"
assert info["machine"] == "aarch64", info
assert ("neon_dotprod" in info["available_isas"]) == want and info["isa"] == info["available_isas"][-1], info'

tier1() {
  local root=$EZ_ARM_CACHE/rootfs-py dist=$EZ_ARM_CACHE/dist
  local site=$root/usr/local/lib/python3.11/dist-packages   # on the path of Debian's python3
  local ext=.cpython-311-aarch64-linux-gnu.so
  "$EZ_SRC/scripts/arm/make-rootfs.sh" "$root" python3,python3-dev,libstdc++6,libgomp1
  [ "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = 3.11 ] ||
    die "the host's python3 must be 3.11 like Debian 12's to cross-build its wheel"
  rm -rf "$dist"
  # scikit-build-core takes the wheel's platform from _PYTHON_HOST_PLATFORM and the module suffix from
  # SETUPTOOLS_EXT_SUFFIX; pybind11 and FindPython need the suffix and the headers spelled out. Debian's cmake
  # (setup.sh): otherwise pip, seeing that platform, fills the isolated build environment with an aarch64 cmake.
  timed "cross-build the wheel" env ELASTICZO_ARM_SYSROOT="$root" _PYTHON_HOST_PLATFORM=linux-aarch64 \
    SETUPTOOLS_EXT_SUFFIX=$ext CMAKE_EXECUTABLE=/usr/bin/cmake python3 -m pip wheel -q --no-deps -w "$dist" . \
    --config-settings=cmake.define.CMAKE_TOOLCHAIN_FILE="$EZ_SRC/cmake/toolchain-aarch64.cmake" \
    --config-settings=cmake.define.Python_INCLUDE_DIR="$root/usr/include/python3.11" \
    --config-settings=cmake.define.PYTHON_MODULE_EXTENSION=$ext \
    --config-settings=cmake.define.PYTHON_MODULE_DEBUG_POSTFIX=
  local wheel
  wheel=$(ls "$dist"/elasticzo-*-cp311-cp311-linux_aarch64.whl) || die "no linux_aarch64 wheel in $dist"
  # The host's pip picks aarch64 wheels for Python 3.11 and Debian 12's glibc 2.36 (manylinux tags down to
  # 2.17 must be listed one by one), nothing runs emulated.
  local plats=(--platform linux_aarch64 --platform manylinux2014_aarch64) m
  for ((m = 36; m >= 17; m--)); do plats+=(--platform "manylinux_2_${m}_aarch64"); done
  $SUDO rm -rf "$site"
  timed "install the wheel and its aarch64 dependencies" $SUDO python3 -m pip install -q --target "$site" \
    --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 "${plats[@]}" "$wheel[test]"
  # One emulated Python keeps about one core busy, so the CPU models run side by side; logs follow in turn.
  local cpu pids=() failed=0 logs=$EZ_ARM_CACHE/logs
  mkdir -p "$logs"
  for cpu in $cpus; do
    tier1_cpu "$root" "$cpu" >"$logs/$cpu.log" 2>&1 &
    pids+=($!)
  done
  for cpu in $cpus; do
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
    cat "$logs/$cpu.log"
  done
  [ $failed = 0 ] || die "arm64 Python tests failed"
}

tier1_cpu() {  # tier1_cpu ROOTFS CPU: the checks as one CPU model
  local run=("$EZ_SRC/scripts/arm/qemu-run.sh" --libs "$1" "$1/usr/bin/python3")
  export ELASTICZO_ARM_CPU=$2 ELASTICZO_EXPECT_DOTPROD
  ELASTICZO_EXPECT_DOTPROD=$(expect_dotprod "$2")
  timed "build_info as $2" "${run[@]}" -c "$check_info"
  timed "pytest as $2" "${run[@]}" -m pytest -q -p no:cacheprovider "${pytest_args[@]}"
}

tier2() {
  # The apt packages the README tells a Pi user to install, nothing more.
  local root=$EZ_ARM_CACHE/rootfs-dev in=("$EZ_SRC/scripts/arm/in-rootfs.sh")
  "$EZ_SRC/scripts/arm/make-rootfs.sh" "$root" python3-venv,python3-dev,g++,cmake
  # A copy of the files a clone has (tracked and new, not ignored), as a user's checkout on the Pi.
  $SUDO rm -rf "$root/root/elasticzo" "$root/root/venv"
  $SUDO mkdir -p "$root/root/elasticzo"
  git ls-files -z --cached --others --exclude-standard | tar -c --null -T - | $SUDO tar -x -C "$root/root/elasticzo"
  # Datasets the tests read from outside the repository (tests/python/conftest.py) come in by bind mount.
  local data binds=()
  for data in ${ELASTICZO_DATA:+${ELASTICZO_DATA//:/ }} "$EZ_SRC/../shared/data" /work/shared/data; do
    if [ -d "$data" ]; then binds=(--bind "$(realpath "$data"):/data"); export ELASTICZO_DATA=/data; break; fi
  done
  timed "python3 -m venv (emulated)" "${in[@]}" "$root" -- python3 -m venv /root/venv
  timed "pip install .[test] (emulated, as a Pi user)" "${in[@]}" "$root" -- \
    sh -c 'cd /root/elasticzo && /root/venv/bin/pip install --disable-pip-version-check ".[test]"'
  local cpu
  for cpu in $cpus; do
    export ELASTICZO_EXPECT_DOTPROD
    ELASTICZO_EXPECT_DOTPROD=$(expect_dotprod "$cpu")
    timed "build_info as $cpu" "${in[@]}" "$root" --cpu "$cpu" -- /root/venv/bin/python -c "$check_info"
    timed "pytest as $cpu" "${in[@]}" "$root" --cpu "$cpu" "${binds[@]}" -- \
      sh -c 'cd /root/elasticzo && exec /root/venv/bin/python -m pytest -q -p no:cacheprovider "$@"' sh \
      "${pytest_args[@]}"
  done
}

timed "arm64 Python tier $tier" "tier$tier"
