"""Per-epoch schedules, in one place: the trainer, the CLI, the benchmarks and the tuned defaults all use these.

The paper decays both learning rates by 0.8 every 10 epochs (SPEC §3).
"""

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class StepDecay:
    """A value multiplied by `factor` after every `every` epochs: base * factor ** (epoch // every)."""

    factor: float = 0.8
    every: int = 10

    def __post_init__(self):
        try:
            factor = float(self.factor)
        except (TypeError, ValueError):
            factor = math.nan
        if isinstance(self.factor, bool) or not math.isfinite(factor) or factor <= 0:
            raise ValueError(f"lr_decay must be a positive finite number, got {self.factor!r}")
        object.__setattr__(self, "factor", factor)
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"lr_decay_every must be an int >= 1, got {self.every!r}")

    def __call__(self, base: float, epoch: int) -> float:
        """The value in effect during `epoch` (0-based)."""
        return base * self.factor ** (epoch // self.every)
