#!/usr/bin/env bash
# Cross-compile the C++ core and tests for aarch64 once, then run ctest under qemu as each Raspberry Pi CPU in
# $ELASTICZO_ARM_CPUS (default "cortex-a53 cortex-a76": Pi Zero 2 W / Pi 3 without dotprod, Pi 5 with it).
# The build dir is reused; only the emulated CPU changes, and ELASTICZO_EXPECT_DOTPROD tells
# tests/cpp/test_dispatch.cpp which kernel level that CPU must get.
#   scripts/arm/test-cpp.sh [BUILD_DIR]        (default: build-arm in the source tree; needs setup.sh first)
source "$(dirname "$0")/common.sh"
build=$(realpath -m "${1:-$EZ_SRC/build-arm}")
cpus=${ELASTICZO_ARM_CPUS:-cortex-a53 cortex-a76}

timed "configure" cmake -S "$EZ_SRC" -B "$build" -G Ninja -Wno-dev \
  -DCMAKE_TOOLCHAIN_FILE="$EZ_SRC/cmake/toolchain-aarch64.cmake"
timed "build" cmake --build "$build" -j2
for cpu in $cpus; do
  ELASTICZO_ARM_CPU=$cpu ELASTICZO_EXPECT_DOTPROD=$(expect_dotprod "$cpu") \
    timed "ctest as $cpu" ctest --test-dir "$build" -j2 --output-on-failure
done
