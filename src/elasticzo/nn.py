"""Layers and the Sequential container (implemented in C++, elasticzo._core)."""

import warnings
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
    int8_quantize_input,
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
        model.init_parameters(seed)  # the core refuses anything but an integer in [0, 2^64)
    return model


class IncompatibleKeys(NamedTuple):
    missing_keys: list
    unexpected_keys: list


def _as_array(value, name):
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor; torch itself is never imported
        try:
            value = value.detach().cpu()
            if value.is_floating_point() and value.element_size() < 4:  # bfloat16 has no numpy dtype; exact widening
                value = value.float()
            value = value.numpy()
        except (TypeError, RuntimeError) as exc:
            raise TypeError(f"{name}: cannot convert {type(value).__name__} to numpy: {exc}") from None
    try:
        array = np.asarray(value)
    except ValueError:  # a ragged list
        array = None
    if array is None or array.dtype.kind in "OUSV":  # also None (an object array), strings, bytes, records
        raise TypeError(f"{name}: a {type(value).__name__} is not an array of numbers")
    return array


EXPONENT = ".exponent"
# An int8 parameter's exponent must keep mantissa * 2^exponent an exact, finite float32 (what export writes):
# 127 * 2^121 is below float32's largest value, and 2^-149 is its smallest step.
EXPONENT_RANGE = (-149, 121)


def _quantized(name, value, problems):
    """Float weights for an int8 parameter as (int8 mantissas, exponent), or None after noting the problem.

    NITI's rule for inputs: one power-of-two exponent from the largest magnitude, mantissas rounded half away from
    zero. It preserves values to 8 bits, so an exported model (mantissa * 2^exponent in float32) comes back with
    the same values, and bit for bit when its largest mantissa is at least 64.
    """
    if value.dtype == np.int8:
        problems.append(f"{name} is an int8 parameter and {name}{EXPONENT} is missing (float weights alone are "
                        "quantized)")
    elif value.dtype.kind != "f":
        problems.append(f"{name} is an int8 parameter, got dtype {value.dtype} (give int8 mantissas with "
                        f"{name}{EXPONENT}, or float weights to quantize)")
    elif not np.isfinite(value).all():
        problems.append(f"{name} holds non-finite values")
    else:
        return int8_quantize_input(np.ascontiguousarray(value, dtype=np.float32))
    return None


def _mantissas(name, value, exponent, problems, into_int8):
    """(int8 mantissas, exponent) given with '<name>.exponent', checked, or None after noting the problem."""
    exponent = _as_array(exponent, name + EXPONENT)
    if value.dtype != np.int8:
        problems.append(f"{name} is an int8 parameter, got dtype {value.dtype} with {name}{EXPONENT} (float weights "
                        "go without an exponent)" if into_int8 else
                        f"{name}{EXPONENT} is given, so {name} must hold int8 mantissas, got dtype {value.dtype}")
    elif (value == -128).any():
        problems.append(f"{name} holds -128; int8 mantissas must lie in [-127, 127]")
    elif exponent.shape != () or exponent.dtype.kind not in "iu":
        problems.append(f"{name}{EXPONENT} must be an integer scalar, got dtype {exponent.dtype} shape "
                        f"{tuple(exponent.shape)}")
    elif not EXPONENT_RANGE[0] <= int(exponent) <= EXPONENT_RANGE[1]:
        problems.append(f"{name}{EXPONENT} is {int(exponent)}, outside [{EXPONENT_RANGE[0]}, {EXPONENT_RANGE[1]}] "
                        "(mantissa * 2^exponent would not be a float32)")
    else:
        return np.ascontiguousarray(value), int(exponent)
    return None


def _biases_without_layer(model, names, keys):
    """Keys 'X.bias' for which the model has X.weight but no X.bias (INT8 layers never have one)."""
    return [k for k in keys if isinstance(k, str) and k.endswith(".bias") and k not in names
            and k[:-len("bias")] + "weight" in names]


def load_state_dict(model, state_dict, strict=True, drop_biases=False):
    """Copies parameters into `model` by name, PyTorch's names ('conv1.weight', 'fc3.bias', ...) and shapes, from
    a mapping of numpy arrays or torch tensors (of any floating dtype, converted as torch's copy_ would).

    An int8 parameter (NITI mantissas) takes an int8 array and its exponent from '<name>.exponent', as
    state_dict() gives them, so model.load_state_dict(other.state_dict()) round-trips every dtype; given float
    weights alone, it quantizes them (8-bit mantissas, one power-of-two exponent). A float32 parameter given int8
    mantissas with an exponent takes their value, mantissa * 2^exponent.

    A bias for a layer that has none (every INT8 layer: NITI has no biases) is an error even when not strict,
    since dropping it changes what the model computes; drop_biases=True drops such biases with a warning.

    Everything is checked before anything is copied: a missing key, an unexpected key (both only when strict), a
    shape or dtype that does not fit and a non-finite value are all listed in one ValueError, and the model is
    left as it was. Returns (missing_keys, unexpected_keys), as torch.nn.Module.load_state_dict does.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping of name -> array, got {type(state_dict).__name__}")
    names = model.parameter_names()
    int8 = {n for n in names if model.parameter(n).dtype == np.int8}
    exponent_keys = {n + EXPONENT for n in names if n + EXPONENT in state_dict}
    biases = _biases_without_layer(model, names, state_dict)
    missing = [n for n in names if n not in state_dict]
    unexpected = [k for k in state_dict if k not in names and k not in exponent_keys and k not in biases]
    problems = []
    if biases and not drop_biases:
        problems.append(f"the model has no bias for {', '.join(biases)} (INT8 layers have none); pass "
                        "drop_biases=True (elasticzo train: --init-drop-biases) to load without them (the model "
                        "then computes something else than the source)")
    elif biases:
        warnings.warn(f"dropped {', '.join(biases)}: the model's layers have no bias", stacklevel=2)
    if strict and missing:
        problems.append(f"missing key(s): {', '.join(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected key(s): {', '.join(map(str, unexpected))}")
    values, exponents = {}, {}
    for name in (n for n in names if n in state_dict):
        value, want = _as_array(state_dict[name], name), model.parameter(name)
        exponent = state_dict.get(name + EXPONENT)
        if value.shape != want.shape:
            problems.append(f"size mismatch for {name}: got {tuple(value.shape)}, the model's is {want.shape}")
        elif name in int8:
            entry = (_quantized(name, value, problems) if exponent is None
                     else _mantissas(name, value, exponent, problems, into_int8=True))
            if entry is not None:
                values[name], exponents[name] = entry
        elif exponent is not None:  # an INT8 model's mantissas into a float parameter: their value
            entry = _mantissas(name, value, exponent, problems, into_int8=False)
            if entry is not None:
                values[name] = np.ldexp(entry[0].astype(want.dtype), entry[1]).astype(want.dtype)
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
