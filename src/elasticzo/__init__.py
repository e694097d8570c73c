"""elasticzo: on-device training with the memory of inference (ElasticZO, arXiv 2501.04287)."""

from elasticzo import _core
from elasticzo._core import (
    __version__,
    available_isas,
    active_isa,
    set_isa,
    num_threads,
    set_num_threads,
    memory_stats,
    reset_peak_memory,
)
from elasticzo.info import build_info
from elasticzo.memory import memory_report
from elasticzo import data, hparams, models, nn
from elasticzo.trainer import ElasticZO, evaluate
from elasticzo.weights import from_torch, save_safetensors

__all__ = [
    "__version__",
    "available_isas",
    "active_isa",
    "set_isa",
    "num_threads",
    "set_num_threads",
    "memory_stats",
    "reset_peak_memory",
    "build_info",
    "memory_report",
    "data",
    "hparams",
    "models",
    "nn",
    "ElasticZO",
    "evaluate",
    "from_torch",
    "save_safetensors",
]
