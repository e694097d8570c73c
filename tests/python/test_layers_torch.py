"""Every layer's forward, backward_data and backward_weight against PyTorch (float64 autograd on the same values),
on every ISA, plus softmax cross-entropy and whole LeNet-5 / PointNet forwards with copied weights.

Errors are measured relative to the largest reference value: forward <= 1e-5, gradients <= 1e-4.
"""

import numpy as np
import pytest

# PyTorch is only the oracle: without it (a Raspberry Pi) these tests are reported as skipped, not errors. CI
# installs it and runs pytest with --no-skips (conftest.py), so there a skip fails the run.
torch = pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed: pip install torch==2.13.0")
F = torch.nn.functional

from elasticzo import _core, nn
from elasticzo.models import lenet5, pointnet

FWD_TOL = 1e-5
GRAD_TOL = 1e-4


def _t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def _check_layer(layer, torch_fn, x, seed, what, assert_close):
    """Runs the three methods of `layer` on x and compares them with torch_fn(x, **params) under autograd."""
    rng = np.random.default_rng(seed + 1)
    params = layer.parameters()
    xt = _t(x).requires_grad_(True)
    pt = {k: _t(v).requires_grad_(True) for k, v in params.items()}
    yt = torch_fn(xt, **pt)
    dy = rng.standard_normal(yt.shape).astype(np.float32)
    (yt * _t(dy)).sum().backward()

    y = layer.forward(x)
    assert_close(y, yt.detach().numpy(), FWD_TOL, f"{what} forward")
    dx = layer.backward_data(x, y, dy)
    assert_close(dx, xt.grad.numpy(), GRAD_TOL, f"{what} backward_data")
    grads = layer.backward_weight(x, dy)
    assert sorted(grads) == sorted(params), f"{what}: gradients for {sorted(grads)}, parameters {sorted(params)}"
    for name, g in grads.items():
        assert_close(g, pt[name].grad.numpy(), GRAD_TOL, f"{what} backward_weight[{name}]")


def _randomize(layer, rng):
    for name, value in layer.parameters().items():
        layer.set_parameter(name, rng.uniform(-1, 1, value.shape).astype(np.float32))


# (batch, in_channels, out_channels, height, width, kernel, padding)
CONV_CASES = [
    (1, 1, 1, 1, 1, 1, 0),
    (3, 3, 5, 7, 9, 3, 1),
    (1, 5, 7, 30, 30, 5, 2),
    (17, 1, 6, 28, 28, 5, 2),
    (3, 15, 17, 11, 13, 3, 0),
    (1, 33, 15, 6, 5, 3, 2),
    (1, 7, 33, 5, 30, 5, 1),
    (17, 3, 3, 2, 2, 1, 0),
    (3, 16, 16, 14, 14, 5, 2),
    (1, 17, 1, 13, 1, 1, 1),
    (3, 2, 3, 2, 3, 5, 2),  # kernel larger than the input, made to fit by the padding
]


def _with_bias(cases):
    """Every third case without a bias, so both variants meet awkward sizes without doubling the run."""
    return [pytest.param(c, i % 3 != 2, id=f"{c}-{'bias' if i % 3 != 2 else 'nobias'}") for i, c in enumerate(cases)]


@pytest.mark.parametrize("case,bias", _with_bias(CONV_CASES))
def test_conv2d(case, bias, isa, assert_close):
    n, cin, cout, h, w, k, p = case
    seed = int(np.dot(case, [1, 3, 5, 7, 11, 13, 17])) % 1000
    rng = np.random.default_rng(seed)
    layer = nn.Conv2d(cin, cout, k, padding=p, bias=bias)
    _randomize(layer, rng)
    x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
    _check_layer(layer, lambda x, weight, bias=None: F.conv2d(x, weight, bias, padding=p), x, seed,
                 f"Conv2d{case} bias={bias} isa={isa} seed={seed}", assert_close)


# (leading shape, in_features, out_features); a 2-d leading shape is the per-point layer (batch, points)
LINEAR_CASES = [
    ((1,), 1, 1),
    ((3,), 5, 7),
    ((17,), 33, 15),
    ((1,), 17, 33),
    ((3,), 784, 120),
    ((17,), 7, 3),
    ((1,), 120, 84),
    ((1, 1), 3, 5),
    ((3, 7), 3, 64),
    ((1, 1024), 3, 17),
    ((3, 7), 33, 15),
    ((1, 1024), 15, 7),
    ((17, 7), 5, 1),
]


@pytest.mark.parametrize("case,bias", _with_bias(LINEAR_CASES))
def test_linear(case, bias, isa, assert_close):
    lead, fin, fout = case
    seed = (sum(lead) * 31 + fin * 7 + fout) % 1000
    rng = np.random.default_rng(seed)
    layer = (nn.PointLinear if len(lead) == 2 else nn.Linear)(fin, fout, bias=bias)
    _randomize(layer, rng)
    x = rng.standard_normal(lead + (fin,)).astype(np.float32)
    _check_layer(layer, lambda x, weight, bias=None: F.linear(x, weight, bias), x, seed,
                 f"{layer!r} x{x.shape} isa={isa} seed={seed}", assert_close)


SHAPES = [(1, 1), (3, 5), (17, 33), (1, 7, 1024), (3, 15, 7, 9), (1, 1, 30, 1)]


@pytest.mark.parametrize("inplace", [False, True], ids=["copy", "inplace"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu(shape, inplace, isa, assert_close):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape).astype(np.float32)
    before = x.copy()
    _check_layer(nn.ReLU(inplace=inplace), lambda x: F.relu(x), x, 5, f"ReLU {shape} isa={isa}", assert_close)
    np.testing.assert_array_equal(x, before, err_msg="a standalone ReLU call must not modify its input")


# (batch, channels, height, width, kernel): odd sizes floor like torch's default ceil_mode=False
POOL_CASES = [(1, 1, 1, 1, 1), (3, 5, 7, 9, 2), (17, 6, 28, 28, 2), (1, 33, 30, 29, 3), (3, 16, 14, 14, 2),
              (1, 7, 5, 30, 5), (1, 3, 4, 4, 4)]


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_maxpool2d(case, isa, assert_close):
    n, c, h, w, k = case
    rng = np.random.default_rng(h * w)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    _check_layer(nn.MaxPool2d(k), lambda x: F.max_pool2d(x, k), x, 3, f"MaxPool2d({k}) x{x.shape} isa={isa}",
                 assert_close)


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 7, 5), (1, 1024, 33), (17, 7, 17), (3, 1024, 1)], ids=str)
def test_point_maxpool(shape, isa, assert_close):
    rng = np.random.default_rng(shape[1])
    x = rng.standard_normal(shape).astype(np.float32)
    _check_layer(nn.PointMaxPool(), lambda x: x.max(dim=1).values, x, 7, f"PointMaxPool x{shape} isa={isa}",
                 assert_close)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 16, 7, 7), (17, 5, 3), (2, 3)], ids=str)
def test_flatten(shape, isa, assert_close):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    _check_layer(nn.Flatten(), lambda x: x.reshape(x.shape[0], -1), x, 0, f"Flatten x{shape} isa={isa}",
                 assert_close)


@pytest.mark.parametrize("rows,classes,scale", [(1, 1, 1.0), (3, 10, 1.0), (17, 40, 5.0), (32, 10, 1.0),
                                                (5, 33, 1000.0)], ids=str)
def test_softmax_cross_entropy(rows, classes, scale, isa, assert_close):
    """scale=1000 makes naive exp() overflow: the kernel must subtract the row maximum."""
    rng = np.random.default_rng(rows * classes)
    logits = (scale * rng.standard_normal((rows, classes))).astype(np.float32)
    labels = rng.integers(0, classes, rows).astype(np.int32)
    lt = _t(logits).requires_grad_(True)
    ref = F.cross_entropy(lt, torch.from_numpy(labels).long())
    ref.backward()
    loss, dlogits = _core.softmax_cross_entropy(logits, labels)
    what = f"softmax_cross_entropy rows={rows} classes={classes} scale={scale} isa={isa}"
    assert abs(loss - ref.item()) <= FWD_TOL * max(1.0, abs(ref.item())), f"{what}: {loss} != {ref.item()}"
    assert_close(dlogits, lt.grad.numpy(), GRAD_TOL, what)


def _torch_copy(model, torch_modules):
    """torch.nn.Sequential in float64 with the parameters of our model (same module names)."""
    net = torch.nn.Sequential()
    for name, module in torch_modules:
        net.add_module(name, module)
    net = net.double()
    state = {k: _t(v) for k, v in model.state_dict().items()}
    net.load_state_dict(state, strict=True)
    return net


def _torch_lenet5_modules():
    tn = torch.nn
    return [("conv1", tn.Conv2d(1, 6, 5, padding=2)), ("relu1", tn.ReLU()), ("pool1", tn.MaxPool2d(2)),
            ("conv2", tn.Conv2d(6, 16, 5, padding=2)), ("relu2", tn.ReLU()), ("pool2", tn.MaxPool2d(2)),
            ("flatten", tn.Flatten()), ("fc1", tn.Linear(784, 120)), ("relu3", tn.ReLU()),
            ("fc2", tn.Linear(120, 84)), ("relu4", tn.ReLU()), ("fc3", tn.Linear(84, 10))]


class _PointMax(torch.nn.Module):
    def forward(self, x):
        return x.max(dim=1).values


def _torch_pointnet_modules(num_classes=40):
    tn = torch.nn
    widths = [3, 64, 64, 64, 128, 1024]
    mods = []
    for i in range(5):
        mods += [(f"mlp{i + 1}", tn.Linear(widths[i], widths[i + 1])), (f"mlp_relu{i + 1}", tn.ReLU())]
    return mods + [("maxpool", _PointMax()), ("fc1", tn.Linear(1024, 512)), ("relu1", tn.ReLU()),
                   ("fc2", tn.Linear(512, 256)), ("relu2", tn.ReLU()), ("fc3", tn.Linear(256, num_classes))]


def test_lenet5_forward_matches_torch(isa, assert_close):
    model = lenet5(seed=3)
    net = _torch_copy(model, _torch_lenet5_modules())
    x = np.random.default_rng(1).random((5, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        ref = net(_t(x)).numpy()
    assert_close(model.forward(x), ref, FWD_TOL, f"LeNet-5 forward batch 5 seed 3 isa={isa}")


def test_pointnet_forward_matches_torch(isa, assert_close):
    model = pointnet(num_classes=40, seed=4)
    net = _torch_copy(model, _torch_pointnet_modules())
    x = np.random.default_rng(2).uniform(-1, 1, (2, 33, 3)).astype(np.float32)
    with torch.no_grad():
        ref = net(_t(x)).numpy()
    assert_close(model.forward(x), ref, FWD_TOL, f"PointNet forward batch 2, 33 points, seed 4 isa={isa}")


def _torch_sgd_reference(model, net, x, labels, lr):
    """(loss, {name: parameter after one SGD step}) in float64 torch from our model's current parameters."""
    net.zero_grad()
    loss = F.cross_entropy(net(_t(x)), torch.from_numpy(labels).long())
    loss.backward()
    return loss.item(), {k: (p - lr * p.grad).detach().numpy() for k, p in net.named_parameters()}


@pytest.mark.parametrize("name", ["lenet5", "pointnet"])
def test_full_backprop_step_matches_torch_sgd(name, isa, assert_close):
    """One Full-BP trainer step: the loss is torch's cross-entropy of the model output, and every parameter moves by
    -lr * torch's gradient through the whole net (flatten views, in-place ReLUs and point max-pool included)."""
    rng = np.random.default_rng(9)
    if name == "lenet5":
        model = lenet5(seed=9)
        x = rng.random((3, 1, 28, 28), dtype=np.float32)
        labels = np.array([1, 7, 3], dtype=np.int32)
        net = _torch_copy(model, _torch_lenet5_modules())
    else:
        model = pointnet(num_classes=40, seed=9)
        x = rng.uniform(-1, 1, (2, 17, 3)).astype(np.float32)
        labels = np.array([39, 4], dtype=np.int32)
        net = _torch_copy(model, _torch_pointnet_modules())
    lr = 64.0  # a power of two (exact scaling) big enough that float32 rounding of the parameters stays far below it
    ref_loss, expected = _torch_sgd_reference(model, net, x, labels, lr)
    before = model.state_dict()
    trainer = _core.ElasticZO(model, 0, **{**_core.default_config(), "lr_bp": lr, "optimizer": "sgd"})
    stats = trainer.step(x, labels)
    assert abs(stats["loss"] - ref_loss) <= FWD_TOL * ref_loss, f"{name} isa={isa}: {stats['loss']} != {ref_loss}"
    after = model.state_dict()
    for key, value in expected.items():
        # Compare the steps, not the parameters: the step is small next to the values it moves.
        assert_close(after[key] - before[key], value - before[key], GRAD_TOL, f"{name} {key} step isa={isa}")
