# CMake toolchain: cross-compile for 64-bit Raspberry Pi OS (Debian 12, aarch64) with Debian's aarch64-linux-gnu
# gcc; `ctest` then runs the tests under qemu-user as a chosen Raspberry Pi CPU.
#
#   cmake -S . -B build-arm -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake
#   ctest --test-dir build-arm                                  # as Cortex-A53 (Pi Zero 2 W, Pi 3)
#   ELASTICZO_ARM_CPU=cortex-a76 ctest --test-dir build-arm      # as Pi 5: same build, another emulated CPU
#
# Settings (-D or an environment variable of the same name):
#   ELASTICZO_ARM_CPU      CPU that qemu emulates for tests: cortex-a53 (default), cortex-a72 (Pi 4),
#                          cortex-a76 (Pi 5, has dotprod), max; a53/a72/a76 for short. The environment variable
#                          at ctest time wins over the cache value. It never changes the code:
#                          the library is always compiled for the ARMv8.0 baseline, so one build serves every Pi.
#   ELASTICZO_ARM_SYSROOT  optional arm64 Debian root file system (scripts/arm/make-rootfs.sh) used as --sysroot
#                          and as qemu's library prefix; needed to build the Python module against its python3-dev.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

foreach(var ELASTICZO_ARM_CPU ELASTICZO_ARM_SYSROOT)
  if(NOT DEFINED ${var} AND DEFINED ENV{${var}})
    set(${var} "$ENV{${var}}")
  endif()
endforeach()
if(NOT ELASTICZO_ARM_CPU)
  set(ELASTICZO_ARM_CPU cortex-a53)
endif()
set(ELASTICZO_ARM_CPU "${ELASTICZO_ARM_CPU}" CACHE STRING "CPU model qemu-aarch64 emulates for ctest")
set(ELASTICZO_ARM_SYSROOT "${ELASTICZO_ARM_SYSROOT}" CACHE PATH "optional arm64 rootfs used as the sysroot")
# try_compile() projects read this file again and need the same settings.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ELASTICZO_ARM_CPU ELASTICZO_ARM_SYSROOT)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# ARMv8.0 baseline: a whole-program -mcpu=cortex-a76 would let gcc emit LSE atomics (OpenMP reductions) and
# auto-vectorized SDOT, which die of SIGILL on a Pi 3/4. -march rather than -mcpu=cortex-a53 (same code),
# because the *_neon_dotprod.cpp files add -march=armv8.2-a+dotprod, which conflicts with an -mcpu.
set(CMAKE_C_FLAGS_INIT "-march=armv8-a -mtune=cortex-a53")
set(CMAKE_CXX_FLAGS_INIT "-march=armv8-a -mtune=cortex-a53")

if(ELASTICZO_ARM_SYSROOT)
  set(CMAKE_SYSROOT "${ELASTICZO_ARM_SYSROOT}")
  set(_ez_arm_libs "${ELASTICZO_ARM_SYSROOT}")
else()
  set(_ez_arm_libs /usr/aarch64-linux-gnu)  # Debian's cross libc, libstdc++, libgomp
endif()
set(CMAKE_FIND_ROOT_PATH "${_ez_arm_libs}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# BOTH: pybind11's CMake config is header-only and lives on the host (scikit-build-core's CMAKE_PREFIX_PATH).
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# Tests run through scripts/arm/qemu-run.sh, which reads ELASTICZO_ARM_CPU from the environment at test time
# (falling back to the cache value), so one build dir serves every emulated CPU. It hands the CPU to qemu by
# environment, not -cpu, so a test that executes itself again (gtest's "threadsafe" death tests, through
# binfmt_misc) runs as the same CPU.
find_program(ELASTICZO_QEMU NAMES qemu-aarch64 qemu-aarch64-static REQUIRED)
get_filename_component(_ez_qemu_run "${CMAKE_CURRENT_LIST_DIR}/../scripts/arm/qemu-run.sh" ABSOLUTE)
set(CMAKE_CROSSCOMPILING_EMULATOR "${_ez_qemu_run};--default-cpu;${ELASTICZO_ARM_CPU};--libs;${_ez_arm_libs}")
