"""Layers and the Sequential container (implemented in C++, elasticzo._core)."""

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from elasticzo._core import (
    Conv2d,
    Flatten,
    Layer,
    Linear,
    MaxPool2d,
    PointLinear,
    PointMaxPool,
    ReLU,
)
from elasticzo._core import Sequential as _CoreSequential


def Sequential(modules=(), *, seed=None):
    """A Sequential model from (name, layer) pairs; parameters are initialized from `seed` when given.

    >>> model = Sequential([("fc", Linear(4, 2))], seed=0)
    """
    model = _CoreSequential()
    for item in modules:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Layer)):
            raise TypeError(f"Sequential takes (name, layer) pairs, got {item!r}")
        model.add(*item)
    if seed is not None:
        model.init_parameters(int(seed))
    return model


class IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


def _as_array(value, name):
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor; torch itself is never imported
        try:
            value = value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as exc:
            raise TypeError(f"{name}: cannot convert {type(value).__name__} to numpy: {exc}") from None
    return np.asarray(value)


def load_state_dict(model, state_dict, strict=True):
    """Copies parameters into `model` by name, PyTorch's names ('conv1.weight', 'fc3.bias', ...) and shapes, from
    a mapping of numpy arrays or torch tensors (of any floating dtype, converted as torch's copy_ would).

    An int8 parameter (NITI mantissas) takes an int8 array and its exponent from '<name>.exponent', as
    state_dict() gives them, so model.load_state_dict(other.state_dict()) round-trips every dtype.

    Everything is checked before anything is copied: a missing key, an unexpected key (both only when strict), a
    shape or dtype that does not fit and a non-finite value are all listed in one ValueError, and the model is
    left as it was. Returns (missing_keys, unexpected_keys), as torch.nn.Module.load_state_dict does.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}")
    names = model.parameter_names()
    int8 = {n for n in names if model.parameter(n).dtype == np.int8}
    exponent_keys = {n + ".exponent" for n in int8}
    missing = [n for n in names if n not in state_dict]
    unexpected = [k for k in state_dict if k not in names and k not in exponent_keys]
    problems = []
    if strict and missing:
        problems.append(f"missing key(s): {', '.join(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected key(s): {', '.join(map(str, unexpected))}")
    values, exponents = {}, {}
    for name in (n for n in names if n in state_dict):
        value, want = _as_array(state_dict[name], name), model.parameter(name)
        if value.shape != want.shape:
            problems.append(f"size mismatch for {name}: got {tuple(value.shape)}, the model's is {want.shape}")
        elif name in int8:
            exponent = state_dict.get(name + ".exponent")
            if value.dtype != np.int8:
                problems.append(f"{name} is an int8 parameter, got dtype {value.dtype}")
            elif exponent is None:
                problems.append(f"{name} is an int8 parameter and {name}.exponent is missing")
            else:
                values[name], exponents[name] = np.ascontiguousarray(value), int(_as_array(exponent, name))
        elif value.dtype.kind != "f":
            problems.append(f"{name} has dtype {value.dtype}, not a floating-point type")
        elif not np.isfinite(value).all():
            problems.append(f"{name} holds non-finite values")
        else:
            values[name] = np.ascontiguousarray(value, dtype=want.dtype)
    if problems:
        raise ValueError("load_state_dict: " + "; ".join(problems) + " (nothing was copied)")
    for name, value in values.items():
        model.set_parameter(name, value, exponents.get(name))
    return IncompatibleKeys(missing, unexpected)


# Layer types a checkpoint may name (elasticzo.checkpoint.build_model rebuilds models from them).
LAYER_TYPES = ("Conv2d", "Flatten", "Linear", "MaxPool2d", "PointLinear", "PointMaxPool", "ReLU")

# A method of every model, as on torch.nn.Module: model.load_state_dict(mapping, strict=True).
_CoreSequential.load_state_dict = load_state_dict


__all__ = [
    "Conv2d",
    "Flatten",
    "Layer",
    "Linear",
    "MaxPool2d",
    "PointLinear",
    "PointMaxPool",
    "ReLU",
    "Sequential",
    "load_state_dict",
]
