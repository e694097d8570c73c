"""One copy of the federated model: the server's and every client's are bit-identical at the same global step.

The ZO part (layers [0, C)) moves only by (step, coefficient) pairs applied with the counter-based generator, the
backprop head (layers [C, L)) only by taking the averaged head the server sends, so two replicas that start from the
same seed and apply the same pairs and heads hold the same bits (on any thread count, ISA or architecture: the z
kernel is exact). `digest()` is how replicas compare themselves without moving the weights.

INT8 (ElasticZO-INT8): a coefficient is a ternary gradient g in {-1, 0, +1} (one byte), applied as a training step
applies it (g * zeta rounded to b_zo bits at the p_zero of the step's epoch); parameters are int8 mantissas whose
exponents never change (NITI), so only mantissas travel.
"""

import hashlib

import numpy as np

from elasticzo import models
from elasticzo.federated.data import split_of
from elasticzo.trainer import ElasticZO


class Replica:
    def __init__(self, spec, num_classes: int, sample_shape):
        self.spec = spec
        self.model = models.build(spec.model, num_classes, seed=spec.seed, input_shape=tuple(sample_shape),
                                  precision=models.arithmetic(spec.precision))
        lr_zo, lr_bp = spec.learning_rates(0)
        self.trainer = ElasticZO(self.model, method=spec.method, lr_zo=lr_zo, lr_bp=lr_bp, eps=spec.value("eps"),
                                 grad_clip=spec.value("grad_clip"), seed=spec.seed, precision=spec.precision)
        state = self.model.state_dict()
        self.exponents = {n[:-len(".exponent")]: int(v) for n, v in state.items() if n.endswith(".exponent")}
        self.coefficient_dtype = np.dtype(np.int8 if spec.int8 else np.float32)
        self._steps_per_epoch = (spec.steps_per_epoch(len(split_of(spec.dataset, spec.data_dir, "train",
                                                                   spec.train_samples))) if spec.int8 else None)
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
            if name in self.exponents:  # int8 mantissas at the parameter's fixed exponent
                self.model.set_parameter(name, _exact(value, np.int8, name), exponent=self.exponents[name])
            else:
                self.model.set_parameter(name, np.ascontiguousarray(value, dtype=np.float32))

    def at_step(self, step: int) -> None:
        """INT8: sets the schedules (mu, p_zero) of the epoch global step `step` falls in; FP32 has none per step."""
        if self._steps_per_epoch:
            epoch = step // self._steps_per_epoch
            self.trainer.core.gradient_bits = self.trainer.gradient_bits(epoch)
            self.trainer.core.zo_p_zero = self.trainer.zo_sparsity(epoch)

    def apply(self, first_step: int, coefficients) -> None:
        """Applies the ZO updates of steps first_step, first_step + 1, ... in order: FP32 coefficients -lr_zo g,
        INT8 ternary gradients g."""
        if first_step != self.step:
            raise RuntimeError(f"replica at step {self.step} was given the updates from step {first_step}")
        for k, c in enumerate(_exact(coefficients, self.coefficient_dtype, "coefficients")):
            self.at_step(first_step + k)
            self.trainer.core.apply_zo_update(first_step + k, float(c))
        self.step = first_step + len(coefficients)

    def digest(self) -> str:
        """SHA-256 (first 128 bits, hex) over the step and every parameter's name and bytes."""
        h = hashlib.sha256(str(self.step).encode())
        for name in self.model.parameter_names():
            h.update(name.encode())
            h.update(np.ascontiguousarray(self.model.parameter(name)).tobytes())
        return h.hexdigest()[:32]


def _exact(values, dtype, what):
    """`values` as a contiguous array of `dtype`; for an integer dtype, refusing values it cannot hold exactly (an
    int8 weight or a ternary gradient received as floats must be whole numbers in range, never wrapped or rounded)."""
    values = np.asarray(values)
    out = np.ascontiguousarray(values, dtype=dtype)
    if out.dtype.kind == "i" and values.dtype != out.dtype and not np.array_equal(out, values):
        raise ValueError(f"{what}: values that {np.dtype(dtype).name} cannot hold exactly")
    return out
