"""Layers and the Sequential container (implemented in C++, elasticzo._core)."""

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
]
