"""build_info(): what this installation runs on and with."""

import platform

from elasticzo import _core


def build_info() -> dict:
    """Version, machine, chosen ISA, the implementation of every kernel, and OpenMP threads."""
    return {
        "version": _core.__version__,
        "machine": platform.machine(),
        "isa": _core.active_isa(),
        "available_isas": _core.available_isas(),
        "cpu_features": _core.cpu_features(),
        "openmp": _core.openmp_enabled(),
        "threads": _core.num_threads(),
        "kernels": _core.kernel_info(),
    }
