"""build_info(): what this installation runs on and with."""

import platform

from elasticzo import _core


def build_info() -> dict:
    """Version, machine, chosen ISA, the implementation of every kernel, and the thread pool."""
    return {
        "version": _core.__version__,
        "machine": platform.machine(),
        "isa": _core.active_isa(),
        "available_isas": _core.available_isas(),
        "cpu_features": _core.cpu_features(),
        "thread_pool": _core.thread_pool_enabled(),
        "threads": _core.num_threads(),
        "kernels": _core.kernel_info(),
    }
