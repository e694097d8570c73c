"""Finite-difference checks of every layer's backward_data and backward_weight, of softmax cross-entropy, and of a
small Sequential's gradient chained from its layers' methods.

The layers are piecewise linear, so a central difference of L = sum(y * dy) is exact up to rounding as long as no
ReLU sign or max-pool winner changes between x - h and x + h; the inputs are built so that none can (|x| >= 0.1 for
ReLU, pool inputs spaced 0.05 apart), and the Sequential check asserts it. Differences are taken in float64 over the
float32 outputs, dividing by the step actually taken after rounding to float32.
"""

import numpy as np
import pytest

from elasticzo import _core, nn

H = 1e-2
TOL = 1e-3


def _central_difference(f, arr, h=H):
    """d f / d arr by central differences, one element at a time; f reads arr (float32) in place."""
    grad = np.zeros(arr.shape, dtype=np.float64)
    for idx in np.ndindex(arr.shape):
        orig = arr[idx]
        arr[idx] = orig + np.float32(h)
        hi_x, hi = np.float64(arr[idx]), f()
        arr[idx] = orig - np.float32(h)
        lo_x, lo = np.float64(arr[idx]), f()
        arr[idx] = orig
        grad[idx] = (hi - lo) / (hi_x - lo_x)
    return grad


def _check_layer(layer, x, seed, what, assert_close):
    rng = np.random.default_rng(seed)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape)

    def loss():
        return float(np.sum(layer.forward(x).astype(np.float64) * dy))

    dy32 = dy.astype(np.float32)
    assert_close(layer.backward_data(x, y, dy32), _central_difference(loss, x), TOL, f"{what} backward_data")
    grads = layer.backward_weight(x, dy32)
    for name, value in layer.parameters().items():
        def loss_of_param():
            layer.set_parameter(name, value)
            return loss()
        assert_close(grads[name], _central_difference(loss_of_param, value), TOL, f"{what} backward_weight[{name}]")


def _spaced(shape, rng):
    """Distinct values 0.05 apart in random order: no two pool candidates come within 2h of each other."""
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float32) * np.float32(0.05) - np.float32(0.025 * n)).reshape(shape)


def _away_from_zero(shape, rng):
    return (rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 1.0, shape)).astype(np.float32)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n,cin,cout,h,w,k,p", [(2, 3, 2, 5, 4, 3, 1), (1, 1, 3, 3, 6, 1, 0), (1, 2, 1, 2, 2, 5, 2)])
def test_conv2d(n, cin, cout, h, w, k, p, bias, assert_close):
    rng = np.random.default_rng(cin * 10 + k)
    layer = nn.Conv2d(cin, cout, k, padding=p, bias=bias)
    for name, v in layer.parameters().items():
        layer.set_parameter(name, rng.uniform(-1, 1, v.shape).astype(np.float32))
    x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
    _check_layer(layer, x, 1, f"{layer!r} x{x.shape}", assert_close)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("make,shape", [(nn.Linear, (3, 5)), (nn.Linear, (1, 1)), (nn.PointLinear, (2, 3, 4))])
def test_linear(make, shape, bias, assert_close):
    rng = np.random.default_rng(len(shape))
    layer = make(shape[-1], 3, bias=bias)
    for name, v in layer.parameters().items():
        layer.set_parameter(name, rng.uniform(-1, 1, v.shape).astype(np.float32))
    x = rng.standard_normal(shape).astype(np.float32)
    _check_layer(layer, x, 2, f"{layer!r} x{x.shape}", assert_close)


@pytest.mark.parametrize("inplace", [False, True])
def test_relu(inplace, assert_close):
    x = _away_from_zero((2, 3, 5), np.random.default_rng(3))
    _check_layer(nn.ReLU(inplace=inplace), x, 3, f"ReLU(inplace={inplace})", assert_close)


@pytest.mark.parametrize("k,shape", [(2, (2, 3, 5, 4)), (3, (1, 2, 7, 6)), (1, (1, 1, 2, 3))])
def test_maxpool2d(k, shape, assert_close):
    x = _spaced(shape, np.random.default_rng(k))
    _check_layer(nn.MaxPool2d(k), x, 4, f"MaxPool2d({k}) x{shape}", assert_close)


def test_point_maxpool(assert_close):
    x = _spaced((2, 7, 3), np.random.default_rng(5))
    _check_layer(nn.PointMaxPool(), x, 5, "PointMaxPool x(2, 7, 3)", assert_close)


def test_flatten(assert_close):
    x = np.random.default_rng(6).standard_normal((2, 3, 2, 2)).astype(np.float32)
    _check_layer(nn.Flatten(), x, 6, "Flatten x(2, 3, 2, 2)", assert_close)


def test_softmax_cross_entropy(assert_close):
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((3, 5)).astype(np.float32)
    labels = np.array([4, 0, 2], dtype=np.int32)
    _, dlogits = _core.softmax_cross_entropy(logits, labels)
    # The loss is smooth: the central difference's O(h^2) error is far below the tolerance.
    numeric = _central_difference(lambda: float(_core.softmax_cross_entropy(logits, labels)[0]), logits)
    assert_close(dlogits, numeric, 5 * TOL, "softmax_cross_entropy (3, 5)")


# A tiny LeNet: every kind of LeNet-5 module, small enough to difference every parameter.
TINY = [("conv1", lambda: nn.Conv2d(2, 3, 3, padding=1)), ("relu1", lambda: nn.ReLU()),
        ("pool1", lambda: nn.MaxPool2d(2)), ("flatten", lambda: nn.Flatten()), ("fc1", lambda: nn.Linear(27, 5)),
        ("relu2", lambda: nn.ReLU(inplace=True)), ("fc2", lambda: nn.Linear(5, 4))]


def _chain_forward(layers, x):
    acts = [x]
    for layer in layers:
        acts.append(layer.forward(acts[-1]))
    return acts


def _pattern(layers, acts):
    """Which ReLUs pass and which pool inputs win: the piece of the piecewise-linear net we are on."""
    marks = []
    for layer, a_in, a_out in zip(layers, acts, acts[1:]):
        if layer.kind == "relu":
            marks.append(a_out.ravel() > 0)
        elif layer.kind == "maxpool2d":
            marks.append(layer.backward_data(a_in, a_out, np.ones_like(a_out)).ravel() != 0)
    return np.concatenate(marks)


def test_small_sequential(assert_close):
    """Gradients chained through the layers' methods match differences of the Sequential's own forward."""
    model = nn.Sequential([(name, make()) for name, make in TINY], seed=11)
    layers = [model[i][1] for i in range(len(model))]
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    labels = np.array([3, 1], dtype=np.int32)

    acts = _chain_forward(layers, x)
    np.testing.assert_array_equal(model.forward(x), acts[-1], err_msg="Sequential.forward != chained layers")
    _, dlogits = _core.softmax_cross_entropy(acts[-1], labels)
    grads, err = {}, dlogits
    for i in reversed(range(len(layers))):
        for pname, g in layers[i].backward_weight(acts[i], err).items():
            grads[f"{TINY[i][0]}.{pname}"] = g
        err = layers[i].backward_data(acts[i], acts[i + 1], err)

    # Differencing sum(logits * dlogits) keeps the net piecewise linear in each parameter. Random weights put some
    # ReLU inputs within 1e-2 of zero, so the step is 1e-3 and the pattern check proves no difference straddled a
    # kink; float32 rounding of the logits over that step costs about 1e-3 of the largest gradient, hence 3 TOL.
    pattern = _pattern(layers, acts)
    weights = dlogits.astype(np.float64)

    def loss():
        out = _chain_forward(layers, x)
        assert np.array_equal(_pattern(layers, out), pattern), "a finite difference crossed a ReLU/pool kink"
        return float(np.sum(out[-1].astype(np.float64) * weights))

    assert_close(err, _central_difference(loss, x, h=1e-3), 3 * TOL, "tiny LeNet input")
    for name in model.parameter_names():
        value = model.parameter(name)

        def loss_of_param():
            model.set_parameter(name, value)
            return loss()
        assert_close(grads[name], _central_difference(loss_of_param, value, h=1e-3), 3 * TOL, f"tiny LeNet {name}")
