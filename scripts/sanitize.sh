#!/usr/bin/env bash
# The C++ tests and a short Python session under AddressSanitizer + UBSan, UBSan findings fatal
# (-fno-sanitize-recover=all): the core, the tests and the pybind11 module are built with
# ELASTICZO_SANITIZE_ADDRESS=ON; Python itself is not instrumented, so it runs with libasan preloaded and leak
# checks off (the interpreter keeps memory until exit by design). The session runs the misuse reproducers of
# issue 14 (sizes that used to wrap, a model used from two threads) and a short fuzz run of the public API.
#   scripts/sanitize.sh [BUILD_DIR]      (default: build-asan in the source tree; reused, so reruns are incremental)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$src/build-asan}")
python=${PYTHON:-python}

cmake -S "$src" -B "$build" -G Ninja -Wno-dev -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DELASTICZO_SANITIZE_ADDRESS=ON -DELASTICZO_BUILD_TESTS=ON -DELASTICZO_BUILD_BENCHMARKS=OFF \
  -DELASTICZO_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(command -v "$python")" \
  -Dpybind11_DIR="$("$python" -m pybind11 --cmakedir)"
cmake --build "$build" -j2
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir "$build" -j2 --output-on-failure

# The package from the source tree with the sanitized module in it, ahead of any installed copy.
pkg=$build/python
rm -rf "$pkg"
mkdir -p "$pkg"
cp -r "$src/src/elasticzo" "$pkg/"
cp "$build"/_core*.so "$pkg/elasticzo/"
# libstdc++ is preloaded too: the interpreter does not link it, and ASan's __cxa_throw interceptor must find it at
# start-up or the first C++ exception aborts ("CHECK failed ... real___cxa_throw").
export PYTHONPATH=$pkg ASAN_OPTIONS=detect_leaks=0
export LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so)"
"$python" -c "import elasticzo, sys; sys.exit(0 if elasticzo.__file__.startswith('$pkg') else 'not the sanitized build')"
cd "$src"
ELASTICZO_FUZZ_SECONDS=${ELASTICZO_FUZZ_SECONDS:-30} "$python" -m pytest -q -p no:cacheprovider \
  tests/python/test_sizes.py tests/python/test_threads_contract.py tests/python/test_bad_input.py \
  tests/python/test_fuzz.py
