# The C++ core: a static library. ISA flags are set per source file from its name, never for the whole library,
# so the baseline code (and the dispatch that picks kernels) runs on any CPU of the architecture:
#   *_avx2.cpp, *_avx512.cpp          x86_64 only, with the matching -m flags
#   *_neon.cpp                        aarch64 only (NEON is baseline on ARMv8)
#   *_neon_dotprod.cpp                aarch64 only, ARMv8.2 dot-product (Cortex-A76, Pi 5); chosen at run time
#   *_avx512_vnni.cpp, *_avx_vnni.cpp x86_64 only, int8 dot products (AVX-VNNI only if the compiler knows it)
include(CheckCXXCompilerFlag)
check_cxx_compiler_flag(-mavxvnni EZ_COMPILER_HAS_AVXVNNI)
file(GLOB_RECURSE EZ_CORE_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cpp/*.cpp)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(EZ_ARCH x86_64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(EZ_ARCH aarch64)
else()
  set(EZ_ARCH other)
endif()

set(_ez_sources "")
foreach(src IN LISTS EZ_CORE_SOURCES)
  if(src MATCHES "_avx512_vnni\\.cpp$")
    if(NOT EZ_ARCH STREQUAL "x86_64")
      continue()
    endif()
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS
      "-mavx2;-mfma;-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx512vnni;-mprefer-vector-width=512")
  elseif(src MATCHES "_avx_vnni\\.cpp$")
    if(NOT EZ_ARCH STREQUAL "x86_64" OR NOT EZ_COMPILER_HAS_AVXVNNI)
      continue()
    endif()
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-mavxvnni")
  elseif(src MATCHES "_avx2\\.cpp$")
    if(NOT EZ_ARCH STREQUAL "x86_64")
      continue()
    endif()
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma")
  elseif(src MATCHES "_avx512\\.cpp$")
    if(NOT EZ_ARCH STREQUAL "x86_64")
      continue()
    endif()
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS
      "-mavx2;-mfma;-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mprefer-vector-width=512")
  elseif(src MATCHES "_neon_dotprod\\.cpp$")
    if(NOT EZ_ARCH STREQUAL "aarch64")
      continue()
    endif()
    set_source_files_properties(${src} PROPERTIES COMPILE_OPTIONS "-march=armv8.2-a+dotprod")
  elseif(src MATCHES "_neon\\.cpp$")
    if(NOT EZ_ARCH STREQUAL "aarch64")
      continue()
    endif()
  endif()
  list(APPEND _ez_sources ${src})
endforeach()

add_library(elasticzo_core STATIC ${_ez_sources})
target_include_directories(elasticzo_core PUBLIC ${PROJECT_SOURCE_DIR}/src/cpp)
set_target_properties(elasticzo_core PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_compile_definitions(elasticzo_core PUBLIC ELASTICZO_VERSION="${PROJECT_VERSION}")
if(EZ_ARCH STREQUAL "x86_64" AND EZ_COMPILER_HAS_AVXVNNI)
  target_compile_definitions(elasticzo_core PRIVATE EZ_HAVE_AVXVNNI)
endif()
# No implicit FMA contraction: the reference kernels must give the same bits on every compiler and architecture;
# optimized kernels use FMA explicitly through intrinsics.
target_compile_options(elasticzo_core PRIVATE -Wall -Wextra -ffp-contract=off)

# Threads come from the library's own pool (core/parallel.*), not OpenMP: its workers sleep instead of spinning
# when the CPU is wanted elsewhere, and no OMP_* variable changes how it behaves.
if(ELASTICZO_THREADS)
  find_package(Threads REQUIRED)
  target_link_libraries(elasticzo_core PUBLIC Threads::Threads)
  target_compile_definitions(elasticzo_core PRIVATE ELASTICZO_THREADS=1)
else()
  target_compile_definitions(elasticzo_core PRIVATE ELASTICZO_THREADS=0)
endif()

if(ELASTICZO_SANITIZE_ADDRESS)
  # -fno-sanitize-recover=all: a UBSan finding aborts the process (so fails its test) instead of printing a report
  # and going on. PUBLIC, so the tests and the Python module are instrumented too (scripts/sanitize.sh).
  set(_ez_sanitize -fsanitize=address,undefined -fno-sanitize-recover=all)
  target_compile_options(elasticzo_core PUBLIC ${_ez_sanitize} -fno-omit-frame-pointer)
  target_link_options(elasticzo_core PUBLIC ${_ez_sanitize})
endif()
