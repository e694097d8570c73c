"""One copy of the federated model: the server's and every client's are bit-identical at the same global step.

The ZO part (layers [0, C)) moves only by (step, coefficient) pairs applied with the counter-based generator, the
backprop head (layers [C, L)) only by taking the averaged head the server sends, so two replicas that start from the
same seed and apply the same pairs and heads hold the same bits (on any thread count, ISA or architecture: the z
kernel is exact). `digest()` is how replicas compare themselves without moving the weights.
"""

import hashlib

import numpy as np

from elasticzo import models
from elasticzo.trainer import ElasticZO


class Replica:
    def __init__(self, spec, num_classes: int, sample_shape):
        self.spec = spec
        self.model = models.build(spec.model, num_classes, seed=spec.seed, input_shape=tuple(sample_shape))
        lr_zo, lr_bp = spec.learning_rates(0)
        self.trainer = ElasticZO(self.model, method=spec.method, lr_zo=lr_zo, lr_bp=lr_bp, eps=spec.value("eps"),
                                 grad_clip=spec.value("grad_clip"), seed=spec.seed)
        zo_modules = set(self.model.param_layer_names()[:self.trainer.zo_layers])
        names = self.model.parameter_names()
        self.zo_names = [n for n in names if n.rpartition(".")[0] in zo_modules]
        self.head_names = [n for n in names if n.rpartition(".")[0] not in zo_modules]
        self.step = 0  # the global step these weights are at: every step before it applied

    @property
    def zo_bytes(self) -> int:
        return sum(self.model.parameter(n).nbytes for n in self.zo_names)

    def arrays(self, names) -> dict:
        return {n: self.model.parameter(n) for n in names}

    def load(self, arrays: dict) -> None:
        for name, value in arrays.items():
            self.model.set_parameter(name, np.ascontiguousarray(value, dtype=np.float32))

    def apply(self, first_step: int, coefficients) -> None:
        """Applies the ZO updates of steps first_step, first_step + 1, ... (coefficient -lr_zo g each), in order."""
        if first_step != self.step:
            raise RuntimeError(f"replica at step {self.step} was given the updates from step {first_step}")
        for k, c in enumerate(np.asarray(coefficients, dtype=np.float32)):
            self.trainer.core.apply_zo_update(first_step + k, float(c))
        self.step = first_step + len(coefficients)

    def digest(self) -> str:
        """SHA-256 (first 128 bits, hex) over the step and every parameter's name and bytes."""
        h = hashlib.sha256(str(self.step).encode())
        for name in self.model.parameter_names():
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.model.parameter(name)).tobytes())
        return h.hexdigest()[:32]
