"""Bad input through the Python API: each case raises a clear Python exception (type and message checked), never a
crash, and leaves the layer or model usable."""

from re import escape as _re

import numpy as np
import pytest

from elasticzo import ElasticZO, _core, nn
from elasticzo.models import lenet5


def f32(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def misaligned(*shape):
    """float32 data one byte into a buffer: legal numpy, but no valid float* in C++."""
    n = int(np.prod(shape))
    return np.frombuffer(bytearray(4 * n + 1), dtype=np.float32, count=n, offset=1).reshape(shape)


def with_value(value, index):
    def make(a):
        out = a.copy()
        out.ravel()[index] = value
        return out
    return make


GOOD = f32(2, 3, 8, 8)

# (name, defect applied to a good array, exception, message after the argument's name)
DEFECTS = [
    ("float64", lambda a: a.astype(np.float64), TypeError, "must be a float32 array, got float64"),
    ("int32", lambda a: a.astype(np.int32), TypeError, "must be a float32 array, got int32"),
    ("list", lambda a: a.tolist(), TypeError, "must be a float32 array, got list; convert with np.asarray("),
    ("numpy scalar", lambda a: a.ravel()[0], TypeError, "must be a float32 array, got numpy.float32"),
    ("float16", lambda a: a.astype(np.float16), TypeError, "must be a float32 array, got float16"),
    ("big-endian", lambda a: a.astype(">f4"), TypeError, "must be a float32 array, got >f4"),
    ("None", lambda a: None, TypeError, "must be a float32 array, got NoneType"),
    ("NaN", with_value(np.nan, 7), ValueError, "contains a non-finite value (nan) at flat index 7"),
    ("inf", with_value(np.inf, 0), ValueError, "contains a non-finite value (inf) at flat index 0"),
    ("-inf", with_value(-np.inf, 5), ValueError, "contains a non-finite value (-inf) at flat index 5"),
    ("transposed", lambda a: np.ascontiguousarray(a.T).T, ValueError, "must be C-contiguous"),
    ("sliced", lambda a: np.repeat(a, 2, axis=-1)[..., ::2], ValueError, "must be C-contiguous"),
    ("zero-size", lambda a: a[:0], ValueError, "is empty (shape (0, "),
    ("misaligned", lambda a: misaligned(*a.shape), ValueError, "is not aligned"),
]
LAYERS = [("conv", lambda: nn.Conv2d(3, 4, 3)), ("relu", lambda: nn.ReLU(inplace=True)),
          ("pool", lambda: nn.MaxPool2d(2)), ("flatten", lambda: nn.Flatten())]


@pytest.mark.parametrize("name,defect,exc,msg", DEFECTS, ids=[d[0] for d in DEFECTS])
@pytest.mark.parametrize("kind,make", LAYERS, ids=[k for k, _ in LAYERS])
def test_bad_arrays_in_every_argument(kind, make, name, defect, exc, msg):
    layer = make()
    y = layer.forward(GOOD)
    dy = np.ones_like(y)
    for arg, call in [("x", lambda: layer.forward(defect(GOOD))),
                      ("x", lambda: layer.backward_data(defect(GOOD), y, dy)),
                      ("y", lambda: layer.backward_data(GOOD, defect(y), dy)),
                      ("dy", lambda: layer.backward_data(GOOD, y, defect(dy))),
                      ("x", lambda: layer.backward_weight(defect(GOOD), dy)),
                      ("dy", lambda: layer.backward_weight(GOOD, defect(dy)))]:
        with pytest.raises(exc) as info:
            call()
        assert str(info.value).startswith(f"{arg} {msg}"), f"{kind} {name}: {info.value}"
    np.testing.assert_array_equal(layer.forward(GOOD), y)  # still usable


WRONG_SHAPES = [
    (lambda: nn.Conv2d(3, 4, 3), (2, 2, 8, 8), "Conv2d(3, 4, kernel_size=3, padding=0) expects 3 input channels"),
    (lambda: nn.Conv2d(3, 4, 3), (3, 8, 8), "Conv2d(3, 4, kernel_size=3, padding=0) expects a 4-d input (N, C, H, W)"),
    (lambda: nn.Conv2d(3, 4, 3), (1, 1, 3, 8, 8), "expects a 4-d input (N, C, H, W), got shape (1, 1, 3, 8, 8)"),
    (lambda: nn.Conv2d(1, 1, 5), (1, 1, 3, 9), "Conv2d(1, 1, kernel_size=5, padding=0): input (1, 1, 3, 9) is smaller"),
    (lambda: nn.Linear(5, 3), (2, 4), "Linear(5, 3) expects 5 input features (axis 1), got shape (2, 4)"),
    (lambda: nn.Linear(5, 3), (2, 1, 5), "Linear(5, 3) expects a 2-d input (N, features)"),
    (lambda: nn.Linear(5, 3), (5,), "Linear(5, 3) expects a 2-d input (N, features), got shape (5,)"),
    (lambda: nn.PointLinear(3, 8), (2, 3), "PointLinear(3, 8) expects a 3-d input (N, points, features)"),
    (lambda: nn.PointLinear(3, 8), (2, 7, 4), "PointLinear(3, 8) expects 3 input features (axis 2)"),
    (lambda: nn.MaxPool2d(3), (1, 1, 2, 5), "MaxPool2d(3): input (1, 1, 2, 5) is smaller than the window"),
    (lambda: nn.MaxPool2d(2), (4, 8, 8), "MaxPool2d(2) expects a 4-d input (N, C, H, W)"),
    (lambda: nn.PointMaxPool(), (2, 8), "PointMaxPool() expects a 3-d input (N, points, features)"),
    (lambda: nn.Flatten(), (6,), "Flatten expects (N, ...) with at least 2 dims, got (6,)"),
]


@pytest.mark.parametrize("make,shape,msg", WRONG_SHAPES, ids=[str(w[1]) + str(i) for i, w in enumerate(WRONG_SHAPES)])
def test_wrong_shape_or_rank(make, shape, msg):
    layer = make()
    x = f32(*shape)
    for call in (lambda: layer.forward(x), lambda: layer.output_shape(list(shape)),
                 lambda: layer.backward_data(x, x, x), lambda: layer.backward_weight(x, x)):
        with pytest.raises(ValueError, match=_re(msg)):
            call()


def test_zero_dim_array():
    with pytest.raises(ValueError, match=_re("ReLU() got an empty input of shape ()")):
        nn.ReLU().forward(np.array(1.0, dtype=np.float32))


@pytest.mark.parametrize("shape", [[0, 3], [-1, 3], [2, -5]])
def test_output_shape_rejects_empty_and_negative_dims(shape):
    for layer in (nn.ReLU(), nn.Flatten(), nn.Linear(3, 2), nn.PointMaxPool()):
        with pytest.raises(ValueError, match="empty input|expects"):
            layer.output_shape(shape)


def test_output_shape_rejects_dims_beyond_int():
    with pytest.raises(OverflowError, match=_re("Linear(3, 2): input is too large: 1099511627776 x 3 exceeds")):
        nn.Linear(3, 2).output_shape([2 ** 40, 3])


def test_y_and_dy_must_have_the_output_shape():
    layer = nn.Conv2d(3, 4, 3)
    y = layer.forward(GOOD)
    with pytest.raises(ValueError, match=_re("y and dy must have the output shape (2, 4, 6, 6), got (2, 4, 6, 5)")):
        layer.backward_data(GOOD, y[..., :5].copy(), y)
    with pytest.raises(ValueError, match=_re("dy must have the output shape (2, 4, 6, 6), got (2, 3, 8, 8)")):
        layer.backward_weight(GOOD, GOOD)


BAD_CONSTRUCTORS = [
    (lambda: nn.Conv2d(-1, 3, 3), ValueError, "Conv2d(-1, 3, kernel_size=3, padding=0): in_channels must be >= 1"),
    (lambda: nn.Conv2d(1, 0, 3), ValueError, "out_channels must be >= 1, got 0"),
    (lambda: nn.Conv2d(1, 3, 0), ValueError, "kernel_size must be >= 1, got 0"),
    (lambda: nn.Conv2d(1, 3, 3, padding=-1), ValueError, "Conv2d(1, 3, kernel_size=3, padding=-1): padding must be"),
    (lambda: nn.Linear(0, 3), ValueError, "Linear(0, 3): in_features must be >= 1, got 0"),
    (lambda: nn.Linear(3, -2), ValueError, "out_features must be >= 1, got -2"),
    (lambda: nn.PointLinear(-3, 2), ValueError, "PointLinear(-3, 2): in_features must be >= 1"),
    (lambda: nn.MaxPool2d(0), ValueError, "MaxPool2d(0): kernel_size must be >= 1, got 0"),
    (lambda: nn.Conv2d("1", 3, 3), TypeError, "incompatible constructor arguments"),
    (lambda: nn.Linear(2.5, 3), TypeError, "incompatible constructor arguments"),
    (lambda: nn.Conv2d(2 ** 40, 3, 3), OverflowError, "in_channels is too large: 1099511627776 exceeds 2147483647"),
    (lambda: nn.Conv2d(1, 3, 3, padding=2 ** 70), TypeError, "incompatible constructor arguments"),
]


@pytest.mark.parametrize("make,exc,msg", BAD_CONSTRUCTORS, ids=[str(i) for i in range(len(BAD_CONSTRUCTORS))])
def test_bad_constructor_arguments(make, exc, msg):
    with pytest.raises(exc, match=_re(msg)):
        make()


@pytest.mark.parametrize("seed,msg", [(-1, "seed must lie in [0, 2^64), got -1"),
                                      (2 ** 64, "seed must lie in [0, 2^64), got 18446744073709551616"),
                                      (1.5, "seed must be an integer, got 1.5"), ("3", "seed must be an integer, got '3'")])
def test_a_bad_seed_is_a_value_error_wherever_a_seed_enters(seed, msg):
    """Before: pybind11's TypeError listing signatures for -1 and 2^64, and 1.5 or "3" silently taken as int()."""
    for make in (lambda: nn.Linear(2, 3, seed=seed), lambda: nn.Conv2d(1, 2, 3, seed=seed),
                 lambda: nn.PointLinear(3, 2, seed=seed), lambda: nn.Sequential([("fc", nn.Linear(4, 2))], seed=seed),
                 lambda: lenet5(seed=seed), lambda: ElasticZO(lenet5(seed=0), method="full-zo", seed=seed)):
        with pytest.raises(ValueError, match=_re(msg)):
            make()
    assert nn.Linear(2, 3, seed=np.uint64(2 ** 64 - 1)).seed == 2 ** 64 - 1  # the whole range, numpy ints too


def test_kernel_larger_than_input_even_with_padding():
    with pytest.raises(ValueError, match="smaller than the kernel"):
        nn.Conv2d(1, 1, 7, padding=1).forward(f32(1, 1, 4, 4))


def test_set_parameter_errors():
    layer = nn.Linear(4, 3)
    before = layer.parameters()
    with pytest.raises(ValueError, match=_re("weight has shape (4, 3), expected (3, 4)")):
        layer.set_parameter("weight", f32(4, 3))
    with pytest.raises(KeyError, match=_re("Linear(4, 3) has no parameter 'gamma'")):
        layer.set_parameter("gamma", f32(3))
    with pytest.raises(KeyError, match="has no parameter 'bias'"):
        nn.Linear(4, 3, bias=False).set_parameter("bias", f32(3))
    with pytest.raises(KeyError, match="has no parameter 'weight'"):
        nn.ReLU().set_parameter("weight", f32(3))
    with pytest.raises(TypeError, match="bias must be a float32 array, got float64"):
        layer.set_parameter("bias", np.zeros(3))
    with pytest.raises(ValueError, match="bias contains a non-finite value"):
        layer.set_parameter("bias", np.full(3, np.nan, dtype=np.float32))
    for name, value in layer.parameters().items():
        np.testing.assert_array_equal(value, before[name], err_msg=f"{name} changed by a rejected set_parameter")


def test_sequential_errors():
    model = lenet5(seed=0)
    with pytest.raises(ValueError, match=_re("Conv2d(1, 6, kernel_size=5, padding=2) expects 1 input channels")):
        model.forward(f32(2, 3, 28, 28))
    with pytest.raises(ValueError, match=_re("Linear(784, 120) expects 784 input features")):
        model.forward(f32(2, 1, 32, 32))
    with pytest.raises(TypeError, match="x must be a float32 array, got float64"):
        model.forward(np.zeros((2, 1, 28, 28)))
    with pytest.raises(KeyError, match="no parameter named 'conv9.weight'"):
        model.parameter("conv9.weight")
    with pytest.raises(KeyError, match="no parameter named 'fc1'"):
        model.set_parameter("fc1", f32(120))
    with pytest.raises(ValueError, match=_re("fc3.bias has shape (9,), expected (10,)")):
        model.set_parameter("fc3.bias", f32(9))
    with pytest.raises(IndexError, match="module index 12 is out of range for 12 modules"):
        model[12]
    with pytest.raises(IndexError, match="module index -13 is out of range"):
        model[-13]
    assert model[-1][0] == "fc3"
    assert model.forward(f32(2, 1, 28, 28)).shape == (2, 10)  # still usable


def test_sequential_construction_errors():
    with pytest.raises(ValueError, match="duplicate module name 'a'"):
        nn.Sequential([("a", nn.ReLU()), ("a", nn.ReLU())])
    with pytest.raises(ValueError, match="module name must be non-empty and without '.', got 'a.b'"):
        nn.Sequential([("a.b", nn.ReLU())])
    with pytest.raises(ValueError, match="module name must be non-empty"):
        nn.Sequential([("", nn.ReLU())])
    with pytest.raises(TypeError, match="Sequential takes"):
        nn.Sequential([nn.ReLU()])
    with pytest.raises(ValueError, match="Sequential has no modules"):
        nn.Sequential([]).forward(f32(2, 3))
    with pytest.raises(ValueError, match=_re("Linear(4, 2) expects 4 input features")):
        nn.Sequential([("fc1", nn.Linear(3, 5)), ("fc2", nn.Linear(4, 2))]).forward(f32(2, 3))


def test_first_module_never_writes_or_keeps_the_callers_input():
    """An in-place ReLU or Flatten first used to alias the caller's array past the call (and write into it)."""
    relu_first = nn.Sequential([("relu", nn.ReLU(inplace=True)), ("fc", nn.Linear(4, 2))], seed=0)
    x = np.array([[-1, 2, -3, 4]], dtype=np.float32)
    x.flags.writeable = False
    relu_first.forward(x)
    np.testing.assert_array_equal(x, [[-1, 2, -3, 4]])
    flatten_first = nn.Sequential([("flatten", nn.Flatten()), ("fc", nn.Linear(12, 2))], seed=0)
    x1, x2 = f32(1, 3, 4, seed=1), f32(1, 3, 4, seed=2)
    first = flatten_first.forward(x1)
    flatten_first.forward(x2)  # a kept view of x1 would receive x2 here (or, x1 freed, corrupt the heap)
    np.testing.assert_array_equal(x1, f32(1, 3, 4, seed=1))
    np.testing.assert_array_equal(flatten_first.forward(x1), first)


def test_layer_taken_from_a_model_can_be_reused():
    model = nn.Sequential([("relu", nn.ReLU())])  # the ReLU's own Python object is gone after this line
    name, layer = model[0]
    other = nn.Sequential([("again", layer)])
    assert name == "relu" and other[0][1].kind == "relu"


def test_runtime_errors(restore_threads):
    with pytest.raises(ValueError, match="ISA 'nonsense' is not available on this CPU"):
        _core.set_isa("nonsense")
    assert _core.active_isa() in _core.available_isas()
    for n in (0, -1):
        with pytest.raises(ValueError, match=f"thread count must be >= 1, got {n}"):
            _core.set_num_threads(n)


def test_softmax_cross_entropy_errors():
    logits = f32(3, 4)
    labels = np.array([0, 3, 1], dtype=np.int32)
    with pytest.raises(TypeError, match=_re("labels must be an int32 array, got int64; convert with labels.astype")):
        _core.softmax_cross_entropy(logits, labels.astype(np.int64))
    with pytest.raises(TypeError, match=_re("labels must be an int32 array, got list; convert with np.asarray(labels, d")):
        _core.softmax_cross_entropy(logits, [0, 3, 1])
    with pytest.raises(ValueError, match=_re("label 4 at index 1 is outside [0, 4)")):
        _core.softmax_cross_entropy(logits, np.array([0, 4, 1], dtype=np.int32))
    with pytest.raises(ValueError, match=_re("label -1 at index 2 is outside [0, 4)")):
        _core.softmax_cross_entropy(logits, np.array([0, 1, -1], dtype=np.int32))
    with pytest.raises(ValueError, match=_re("labels must have shape (3,), got (2,)")):
        _core.softmax_cross_entropy(logits, labels[:2].copy())
    with pytest.raises(ValueError, match=_re("logits must have shape (N, classes), got (12,)")):
        _core.softmax_cross_entropy(logits.ravel(), labels)
    with pytest.raises(ValueError, match="logits contains a non-finite value"):
        _core.softmax_cross_entropy(np.full((3, 4), np.inf, dtype=np.float32), labels)
