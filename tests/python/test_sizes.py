"""Sizes a caller can drive (kernel size, padding, channels, features, batch x points, element and byte counts,
input shapes) are checked for overflow and refused with an OverflowError naming the layer and the sizes, before
anything is allocated: issue 14's `Conv2d(1, 4, 2**30)` used to wrap its byte count to 0 and write past a
64-byte buffer."""

from re import escape as _re

import numpy as np
import pytest

from elasticzo import _core, nn

INT_MAX = 2 ** 31 - 1

TOO_LARGE_LAYERS = [
    (lambda: nn.Conv2d(1, 4, 2 ** 30),
     "Conv2d(1, 4, kernel_size=1073741824, padding=0): weight is too large: 4 x 1 x 1073741824 x 1073741824"),
    (lambda: nn.Conv2d(2 ** 16, 2 ** 16, 1), "Conv2d(65536, 65536, kernel_size=1, padding=0): weight is too large"),
    (lambda: nn.Conv2d(1, 2 ** 31, 1), "out_channels is too large: 2147483648 exceeds 2147483647"),
    (lambda: nn.Conv2d(1, 1, 3, padding=2 ** 31), "padding is too large: 2147483648"),
    (lambda: nn.Linear(2 ** 16, 2 ** 16), "Linear(65536, 65536): weight is too large: 65536 x 65536 exceeds"),
    (lambda: nn.Linear(2 ** 62, 4), "Linear(4611686018427387904, 4): in_features is too large"),
    (lambda: nn.PointLinear(3, 2 ** 40), "PointLinear(3, 1099511627776): out_features is too large"),
    (lambda: nn.MaxPool2d(2 ** 31), "MaxPool2d(2147483648): kernel_size is too large"),
    (lambda: nn.Sequential([("c", nn.Conv2d(1, 4, 2 ** 30))], seed=0), "weight is too large"),
]


@pytest.mark.parametrize("make,msg", TOO_LARGE_LAYERS, ids=[m for _, m in TOO_LARGE_LAYERS])
def test_layer_too_large_to_build(make, msg):
    with pytest.raises(OverflowError, match=_re(msg)):
        make()


TOO_LARGE_INPUTS = [
    (lambda: nn.Conv2d(1, 1, 3, padding=2 ** 30), (1, 1, 4, 4), "padded input is too large: 4 + 2147483648"),
    (lambda: nn.Conv2d(2 ** 10, 1, 3, padding=2 ** 10), (1, 2 ** 10, 4, 4),
     "padded input image is too large: 1024 x 2052 x 2052"),
    (lambda: nn.Conv2d(3, 3, 3), (2 ** 20, 3, 2 ** 10, 2 ** 10), "input is too large: 1048576 x 3 x 1024 x 1024"),
    (lambda: nn.Conv2d(1, 2 ** 10, 2 ** 5, padding=2 ** 10), (1, 1, 2 ** 5, 2 ** 5),
     "output is too large: 1 x 1024 x 2049 x 2049"),
    (lambda: nn.Linear(3, 2), (2 ** 40, 3), "Linear(3, 2): input is too large: 1099511627776 x 3"),
    (lambda: nn.Linear(3, 2 ** 10), (2 ** 22, 3), "Linear(3, 1024): output is too large: 4194304 x 1024"),
    (lambda: nn.PointLinear(3, 2), (2 ** 20, 2 ** 20, 3), "PointLinear(3, 2): batch x points is too large"),
    (lambda: nn.MaxPool2d(2), (2 ** 31, 1, 2, 2), "MaxPool2d(2): input is too large: 2147483648 x 1 x 2 x 2"),
    (lambda: nn.PointMaxPool(), (2 ** 40, 2, 2), "PointMaxPool(): input is too large"),
    (lambda: nn.ReLU(), (2 ** 62, 2 ** 62), "shape (4611686018427387904, 4611686018427387904) is too large"),
    (lambda: nn.Flatten(), (2, 2 ** 62, 2 ** 62), "is too large: 2 x 4611686018427387904 x 4611686018427387904"),
]


@pytest.mark.parametrize("make,shape,msg", TOO_LARGE_INPUTS, ids=[m for _, _, m in TOO_LARGE_INPUTS])
def test_input_shape_too_large(make, shape, msg):
    layer = make()
    with pytest.raises(OverflowError, match=_re(msg)):
        layer.output_shape(list(shape))
    model = nn.Sequential([("first", nn.ReLU()), ("layer", layer)])
    with pytest.raises(OverflowError, match=_re(msg) if "ReLU" not in repr(layer) else "too large"):
        model.output_shape(list(shape))


def test_largest_sizes_that_fit_are_accepted():
    """The limits are exact: the largest counts that fit an int pass, one more is refused."""
    assert nn.Conv2d(1, 1, 3, padding=INT_MAX).num_params == 10  # padding alone is fine until an input is padded
    assert nn.Linear(3, 2).output_shape([INT_MAX // 3, 3]) == [INT_MAX // 3, 2]
    with pytest.raises(OverflowError):
        nn.Linear(3, 2).output_shape([INT_MAX // 3 + 1, 3])
    assert nn.MaxPool2d(2).output_shape([1, 1, 2, INT_MAX // 2]) == [1, 1, 1, INT_MAX // 4]
    assert nn.Flatten().output_shape([2, 2 ** 30, 2 ** 31]) == [2, 2 ** 61]  # a view: no kernel indexes it


def test_refused_layer_left_nothing_allocated():
    before = _core.memory_stats()["total_current"]
    for make, _ in TOO_LARGE_LAYERS:
        with pytest.raises(OverflowError):
            make()
    assert _core.memory_stats()["total_current"] == before
