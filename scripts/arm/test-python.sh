#!/usr/bin/env bash
# Prove the Python package on arm64 Debian 12 + Python 3.11 (64-bit Raspberry Pi OS), under qemu-user.
#   scripts/arm/test-python.sh [--tier 1|2] [PYTEST ARGS...]
#   (default: tier 1, pytest tests/python -m "not training": whole-epoch runs are native-only; the emulated run
#   trains briefly in tests/python/test_cross_platform.py instead)
# Tier 1 (CI): the release's wheel as a Pi user installs it. scripts/release.sh cross-builds and repairs the cp311
#   manylinux aarch64 wheel; in a chroot into an arm64 Debian 12 rootfs with no compiler, no python3-dev and no
#   libgomp, Debian's python3 makes a venv and Debian's pip installs the wheel and its dependencies from PyPI;
#   elasticzo and numpy are imported in both orders; pytest runs as cortex-a53 and cortex-a76 side by side.
# Tier 2 (by hand, slow): the source build a Pi user falls back to, all emulated in a chroot: a venv,
#   `pip install ".[test]"` (scikit-build-core, cmake and g++ 12 on arm64, dependencies from PyPI), then pytest
#   as both CPUs.
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
# python -c "$imports_together" numpy elasticzo (or the other order): both load and compute in one process.
imports_together='import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
import numpy as np, elasticzo
a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
assert np.allclose(a @ a.T, (a @ a.T).T, atol=1e-3)
out = elasticzo.models.lenet5(seed=0).forward(np.zeros((64, 1, 28, 28), np.float32))
assert out.shape == (64, 10) and np.isfinite(out).all()
print("imported", " then ".join(sys.argv[1:]) + ": numpy", np.__version__, "and elasticzo computed side by side")'

# Datasets the tests read from outside the repository (tests/python/conftest.py) come into a chroot by bind mount.
binds=()
for data in ${ELASTICZO_DATA:+${ELASTICZO_DATA//:/ }} "$EZ_SRC/../shared/data" /work/shared/data; do
  if [ -d "$data" ]; then binds=(--bind "$(realpath "$data"):/data"); export ELASTICZO_DATA=/data; break; fi
done

tier1() {
  # What a Pi user gets from the release: Debian 12's own python3 and pip, no compiler, no python3-dev, no libgomp.
  local root=$EZ_ARM_CACHE/rootfs-wheel in=("$EZ_SRC/scripts/arm/in-rootfs.sh") wheel
  "$EZ_SRC/scripts/arm/make-rootfs.sh" "$root" python3-venv,libstdc++6
  if compgen -G "$root/usr/bin/*gcc*" >/dev/null || compgen -G "$root/usr/bin/*g++*" >/dev/null ||
    compgen -G "$root/usr/lib/aarch64-linux-gnu/libgomp*" >/dev/null; then
    die "$root must have no compiler and no libgomp"
  fi
  "$EZ_SRC/scripts/release.sh" cp311-aarch64
  wheel=$(ls -t "$EZ_SRC"/dist/elasticzo-*-cp311-cp311-manylinux_*_aarch64.whl | head -n1)
  # No pip cache either: the timed install downloads numpy & co. as on a fresh Pi (README, "Raspberry Pi").
  $SUDO rm -rf "$root/root/venv" "$root/root/dist" "$root/root/elasticzo" "$root/root/.cache/pip"
  $SUDO mkdir -p "$root/root/dist" "$root/root/elasticzo"
  $SUDO cp "$wheel" "$root/root/dist/"
  wheel=/root/dist/${wheel##*/}
  # The files the tests read (MNIST, the README, pytest's settings), and no src/: the tests import the wheel.
  git ls-files -z --cached --others --exclude-standard -- tests/python data README.md LICENSE pyproject.toml |
    tar -c --null -T - | $SUDO tar -x -C "$root/root/elasticzo"
  timed "python3 -m venv (emulated)" "${in[@]}" "$root" -- python3 -m venv /root/venv
  timed "pip install the wheel (emulated, bookworm's pip)" "${in[@]}" "$root" -- \
    /root/venv/bin/pip install --disable-pip-version-check --only-binary=:all: "$wheel"
  timed "pip install the test and plot extras (emulated)" "${in[@]}" "$root" -- \
    /root/venv/bin/pip install --disable-pip-version-check --only-binary=:all: "$wheel[test,plot]"
  # No OpenMP runtime is linked (README, "Raspberry Pi"): elasticzo and numpy (OpenBLAS threads) load and compute
  # together in either order.
  local order
  for order in "numpy elasticzo" "elasticzo numpy"; do
    timed "import $order" "${in[@]}" "$root" -- /root/venv/bin/python -c "$imports_together" $order
  done
  # One emulated Python keeps about one core busy, so the CPU models run side by side, in one chroot session
  # (qemu reads QEMU_CPU at each exec); logs follow in turn.
  local cpu models=()
  for cpu in $cpus; do models+=("$cpu:$(expect_dotprod "$cpu")"); done
  timed "build_info and pytest as ${cpus// /, }, side by side" "${in[@]}" "$root" "${binds[@]}" -- \
    bash -c "$side_by_side" bash "$check_info" "${models[*]}" "${pytest_args[@]}"
}

# In the chroot: bash -c "$side_by_side" bash CHECK_INFO "CPU:DOTPROD..." PYTEST_ARGS...
side_by_side='check_info=$1 models=$2
shift 2
cd /root/elasticzo
pids=() failed=0
for m in $models; do
  (export QEMU_CPU=${m%:*} ELASTICZO_EXPECT_DOTPROD=${m#*:}
   t0=$SECONDS
   /root/venv/bin/python -c "$check_info" && /root/venv/bin/python -m pytest -q -p no:cacheprovider "$@"
   status=$?
   echo "[pytest as $QEMU_CPU took $((SECONDS - t0)) s, exit $status]"
   exit $status) >"/tmp/pytest-${m%:*}.log" 2>&1 &
  pids+=($!)
done
for m in $models; do
  wait "${pids[0]}" || failed=1
  pids=("${pids[@]:1}")
  cat "/tmp/pytest-${m%:*}.log"
done
exit $failed'

tier2() {
  # The apt packages the README tells a Pi user to install, nothing more.
  local root=$EZ_ARM_CACHE/rootfs-dev in=("$EZ_SRC/scripts/arm/in-rootfs.sh")
  "$EZ_SRC/scripts/arm/make-rootfs.sh" "$root" python3-venv,python3-dev,g++,cmake
  # A copy of the files a clone has (tracked and new, not ignored), as a user's checkout on the Pi.
  $SUDO rm -rf "$root/root/elasticzo" "$root/root/venv"
  $SUDO mkdir -p "$root/root/elasticzo"
  git ls-files -z --cached --others --exclude-standard | tar -c --null -T - | $SUDO tar -x -C "$root/root/elasticzo"
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
