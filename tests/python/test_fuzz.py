"""Fuzz test of the public Python API (Hypothesis): random layer stacks and sizes (0, negative, beyond int, beyond
int64), input arrays of every dtype and layout (strided, reversed, Fortran, unaligned, read-only, lists) with
extreme values (NaN, inf, 1e30, subnormals), training with random hyper-parameters and labels, and mutated
parameters and checkpoint files (flipped bits, truncation). Every call must give a clear Python exception or a correct result: never a crash, hang or wrong value.

Correct results are checked through identities that hold for every layer: the adjoint identity
<dy, f(x) - b> = <backward_data(dy), x> = <backward_weight(dy), W> (conv, linear, and the piecewise-linear ReLU,
pooling and flatten), db = dy summed over all but the feature axis, and Sequential.forward = the layers' forwards
chained. Each side rounds differently, within K u sum|dy|(|W||x| + |b|) (K: reduction length, u = 2^-24).

Budget: ELASTICZO_FUZZ_SECONDS (default 40) is shared by the targets below; CI runs the default, and
`ELASTICZO_FUZZ_SECONDS=1800 python -m pytest -q tests/python/test_fuzz.py` is the half-hour run by hand (README,
"Fuzz test and sanitizers"). Each round of a target uses the next Hypothesis seed from ELASTICZO_FUZZ_SEED (default 0), so a failure
names the seed that reproduces it. An example running longer than ELASTICZO_FUZZ_HANG_SECONDS (default 120) dumps
every thread's traceback and exits: a hang fails the run instead of stalling it.
"""

import faulthandler
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from elasticzo import _core, checkpoint, nn
from elasticzo.trainer import ElasticZO

TARGETS = 4
BUDGET = float(os.environ.get("ELASTICZO_FUZZ_SECONDS", "40")) / TARGETS
FIRST_SEED = int(os.environ.get("ELASTICZO_FUZZ_SEED", "0"))
HANG_SECONDS = float(os.environ.get("ELASTICZO_FUZZ_HANG_SECONDS", "120"))
U = 2.0 ** -24
INT_MAX = 2 ** 31 - 1
# Buffers above these sizes are legal but not allocated here (the machine is shared): such cases still go through
# output_shape and the constructors' checks, just not through a forward pass.
MAX_PARAMS = 2_000_000
MAX_ELEMENTS = 1_000_000

# Sizes: mostly small, sometimes at or past a limit (0, negative, INT_MAX, beyond int, beyond int64).
EDGE = [0, -1, -(2 ** 31), 2 ** 31 - 1, 2 ** 31, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64]
SIZE = st.one_of(st.integers(1, 9), st.integers(1, 9), st.integers(10, 300), st.sampled_from(EDGE))
PAD = st.one_of(st.integers(0, 3), st.sampled_from(EDGE))
CLEAR = (ValueError, TypeError, OverflowError)


def run_rounds(target):
    """Runs the Hypothesis test `target` round after round (each with its own seed) for this target's budget."""
    end = time.monotonic() + BUDGET
    round_ = 0
    while True:
        seed = FIRST_SEED + round_
        try:
            hypothesis_seed(seed)(target)()
        except Exception as exc:
            raise AssertionError(f"{target.__name__} failed with ELASTICZO_FUZZ_SEED={seed}") from exc
        round_ += 1
        if time.monotonic() > end:
            return round_


def fuzz_settings(examples):
    return settings(max_examples=examples, deadline=None, database=None, print_blob=True,
                    suppress_health_check=list(HealthCheck))


class Watchdog:
    """Dumps every thread's traceback and exits if one example runs longer than HANG_SECONDS."""

    def __enter__(self):
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)

    def __exit__(self, *exc):
        faulthandler.cancel_dump_traceback_later()


# ---- layers ----------------------------------------------------------------------------------------------------

LAYER_SPECS = st.one_of(
    st.tuples(st.just("Conv2d"), SIZE, SIZE, SIZE, PAD, st.booleans()),
    st.tuples(st.just("Linear"), SIZE, SIZE, st.booleans()),
    st.tuples(st.just("PointLinear"), SIZE, SIZE, st.booleans()),
    st.tuples(st.just("ReLU"), st.booleans()),
    st.tuples(st.just("MaxPool2d"), SIZE),
    st.tuples(st.just("Flatten")),
    st.tuples(st.just("PointMaxPool")),
)


@st.composite
def coherent_stacks(draw):
    """(specs, input shape) of a stack whose sizes fit together (an image or a point-cloud net, then a classifier
    head), with at most one size replaced by an edge value: most examples then reach the kernels."""
    n = draw(st.integers(1, 5))
    specs = []
    if draw(st.booleans()):
        c, h, w = draw(st.integers(1, 4)), draw(st.integers(1, 13)), draw(st.integers(1, 13))
        shape = [n, c, h, w]
        for kind in draw(st.lists(st.sampled_from(["Conv2d", "ReLU", "MaxPool2d"]), max_size=4)):
            if kind == "Conv2d":
                cout, k, pad = draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(0, 2))
                specs.append(("Conv2d", c, cout, k, pad, draw(st.booleans())))
                c, h, w = cout, h + 2 * pad - k + 1, w + 2 * pad - k + 1
            elif kind == "MaxPool2d":
                k = draw(st.integers(1, 3))
                specs.append(("MaxPool2d", k))
                h, w = h // k, w // k
            else:
                specs.append(("ReLU", draw(st.booleans())))
        specs.append(("Flatten",))
        features = c * max(h, 0) * max(w, 0)
    else:
        points, features = draw(st.integers(1, 40)), draw(st.integers(1, 8))
        shape = [n, points, features]
        for _ in range(draw(st.integers(0, 2))):
            out = draw(st.integers(1, 20))
            specs += [("PointLinear", features, out, draw(st.booleans())), ("ReLU", draw(st.booleans()))]
            features = out
        specs.append(("PointMaxPool",))
    for _ in range(draw(st.integers(0, 2))):
        out = draw(st.integers(1, 12))
        specs += [("Linear", max(features, 1), out, draw(st.booleans())), ("ReLU", draw(st.booleans()))]
        features = out
    if draw(st.integers(0, 3)) == 0:  # one size at an edge
        sizes = [(i, j) for i, spec in enumerate(specs) for j, a in enumerate(spec) if type(a) is int]
        if sizes:
            i, j = draw(st.sampled_from(sizes))
            specs[i] = specs[i][:j] + (draw(st.sampled_from(EDGE)),) + specs[i][j + 1:]
        else:
            shape[draw(st.integers(0, len(shape) - 1))] = draw(st.sampled_from(EDGE))
    return specs, shape


RANDOM_STACKS = st.tuples(
    st.lists(LAYER_SPECS, min_size=1, max_size=4),
    st.lists(st.one_of(st.integers(1, 12), st.integers(1, 12), st.sampled_from([0, -1, 2 ** 31, 2 ** 62])),
             max_size=5))


def param_count(spec):
    kind = spec[0]
    if kind == "Conv2d":
        _, cin, cout, k, _, bias = spec
        return cout * cin * k * k + (cout if bias else 0)
    if kind in ("Linear", "PointLinear"):
        _, fin, fout, bias = spec
        return fout * fin + (fout if bias else 0)
    return 0


MINIMUM = {"Conv2d": [1, 1, 1, 0], "Linear": [1, 1], "PointLinear": [1, 1], "MaxPool2d": [1]}


def is_legal(spec):
    """Whether the constructor must accept `spec`: every size in its range and the weight within int indexing."""
    sizes = [a for a in spec[1:] if type(a) is int]
    if any(a < m or a > INT_MAX for a, m in zip(sizes, MINIMUM.get(spec[0], []))):
        return False
    weight = param_count(spec[:-1] + (False,)) if spec[0] in MINIMUM and spec[0] != "MaxPool2d" else 0
    return weight <= INT_MAX


def build_layer(spec):
    """The layer, or None after checking that an impossible one is refused clearly (TypeError for a size beyond
    int64, else ValueError or OverflowError naming the layer). Legal layers too large to allocate on a shared
    machine are left out (hypothesis.reject)."""
    kind, args = spec[0], spec[1:]
    legal = is_legal(spec)
    if legal and param_count(spec) > MAX_PARAMS:
        reject()
    make = {"Conv2d": lambda a: nn.Conv2d(a[0], a[1], a[2], padding=a[3], bias=a[4]),
            "Linear": lambda a: nn.Linear(a[0], a[1], bias=a[2]),
            "PointLinear": lambda a: nn.PointLinear(a[0], a[1], bias=a[2]),
            "ReLU": lambda a: nn.ReLU(inplace=a[0]), "MaxPool2d": lambda a: nn.MaxPool2d(a[0]),
            "Flatten": lambda a: nn.Flatten(), "PointMaxPool": lambda a: nn.PointMaxPool()}[kind]
    if legal:
        layer = make(args)
        assert layer.num_params == param_count(spec)
        return layer
    with pytest.raises(CLEAR) as info:
        make(args)
    if all(-(2 ** 63) <= a < 2 ** 63 for a in args if type(a) is int):
        assert not isinstance(info.value, TypeError) and kind in str(info.value), f"unclear: {info.value!r}"
    return None


def scratch_elements(specs, shapes):
    """Largest zero-padded image a convolution allocates per sample (forward / backward data)."""
    largest = 0
    for spec, (n, c, h, w, *_) in ((s, sh + [1] * 4) for s, sh in zip(specs, shapes) if s[0] == "Conv2d"):
        _, cin, cout, k, pad, _ = spec
        largest = max(largest, cin * (h + 2 * pad) * (w + 2 * pad), cout * (h + k - 1) * (w + k - 1))
    return largest


def shape_or_error(layers, shape):
    """Output shapes module by module, or None if the chain refuses `shape` clearly."""
    shapes = [list(shape)]
    try:
        for layer in layers:
            shapes.append(layer.output_shape(shapes[-1]))
    except CLEAR:
        return None
    assert all(d > 0 for s in shapes[1:] for d in s)
    return shapes


def check_layer(layer, spec, x, y, rng):
    """The adjoint identities and the bias gradient for one layer's forward and backward at (x, y = f(x))."""
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward_data(x, y, dy)
    assert dx.shape == x.shape and dx.dtype == np.float32
    params = layer.parameters()
    grads = layer.backward_weight(x, dy)
    assert sorted(grads) == sorted(params)
    bias = params.get("bias")
    axis = 1 if layer.kind == "conv2d" else y.ndim - 1
    shift = 0.0 if bias is None else bias.reshape([-1 if i == axis else 1 for i in range(y.ndim)])
    # Both sides round within K u sum|dy|(|W||x| + |b|): the twin layer computes that from |W|, |b| and |x|. K bounds
    # every reduction length (forward, backward data and backward weight all sum fewer terms than W or y has).
    if params:
        twin = build_layer(spec)
        twin.set_parameter("weight", np.abs(params["weight"]))
        if bias is not None:  # the bias is added in float32 too, so its size enters the bound
            twin.set_parameter("bias", np.abs(bias))
        y_abs = twin.forward(np.abs(x))
        magnitude = float(np.sum(np.abs(dy).astype(np.float64) * y_abs))
        length = max(params["weight"].size, y.size)
    else:
        magnitude, length = float(np.sum(np.abs(dy.astype(np.float64) * y))), 1
    if not np.isfinite(magnitude) or magnitude > 1e30:
        return  # overflowed values: checked for shape and no crash only
    tol = 4 * length * U * magnitude + 1e-30
    lhs = float(np.sum(dy.astype(np.float64) * (y - shift)))
    assert abs(lhs - float(np.sum(dx.astype(np.float64) * x))) <= tol, "backward_data is not forward's adjoint"
    if params:
        w = params["weight"].astype(np.float64)
        assert abs(lhs - float(np.sum(grads["weight"] * w))) <= tol, "backward_weight is not forward's adjoint"
    if bias is not None:
        others = tuple(i for i in range(y.ndim) if i != axis)
        db, db_abs = dy.astype(np.float64).sum(axis=others), np.abs(dy.astype(np.float64)).sum(axis=others)
        assert np.all(np.abs(grads["bias"] - db) <= 4 * (y.size // db.size) * U * db_abs), "wrong bias gradient"


VALUES = st.sampled_from(["normal", "normal", "normal", "huge", "subnormal", "zeros"])
# At most one defect per input, none in most examples so that most reach the kernels.
DEFECTS = st.sampled_from([None] * 8 + ["nan", "inf", "fortran", "strided", "reversed", "unaligned", "list",
                                        np.float64, np.float16, np.int32, np.bool_] + ["readonly"] * 2)


def make_input(shape, values, defect, rng):
    """(array, the exception it must raise or None)."""
    x = rng.standard_normal(shape).astype(np.float32)
    if values == "huge":
        x *= np.float32(1e30)
    elif values == "subnormal":
        x *= np.float32(1e-42)
    elif values == "zeros":
        x[...] = 0
    if defect in ("nan", "inf"):
        x.flat[rng.integers(x.size)] = np.nan if defect == "nan" else -np.inf
    dtype, layout = (defect, None) if isinstance(defect, type) else (np.float32, defect)
    expected = None
    if dtype is not np.float32:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN, inf or 1e30 cast to an integer type
            x, expected = x.astype(dtype), TypeError
    elif defect in ("nan", "inf"):
        expected = ValueError
    if layout == "list":
        return x.tolist(), TypeError
    if layout == "readonly":
        x.flags.writeable = False
    elif layout == "fortran" and x.ndim >= 2 and sorted(x.shape)[-2] > 1:
        x = np.asfortranarray(x)
    elif layout == "strided" and x.ndim >= 1:
        x = np.repeat(x, 2, axis=-1)[..., ::2]
    elif layout == "reversed" and x.ndim >= 1 and x.shape[0] > 1:
        x = np.ascontiguousarray(x[::-1])[::-1]
    elif layout == "unaligned" and x.itemsize > 1:
        buf = np.zeros(x.nbytes + 1, dtype=np.uint8)
        x = np.frombuffer(buf.data, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    if expected is None and not (x.flags.c_contiguous and x.flags.aligned):
        expected = ValueError
    return x, expected


@fuzz_settings(40)
@given(stack=st.one_of(coherent_stacks(), coherent_stacks(), coherent_stacks(), RANDOM_STACKS),
       values=VALUES, defect=DEFECTS, data_seed=st.integers(0, 2 ** 32 - 1))
def fuzz_layer_stacks(stack, values, defect, data_seed):
    specs, shape = stack
    with Watchdog():
        layers = [build_layer(s) for s in specs]
        if any(layer is None for layer in layers):
            return
        rng = np.random.default_rng(data_seed)
        for layer in layers:
            for name, value in layer.parameters().items():
                layer.set_parameter(name, rng.uniform(-1, 1, value.shape).astype(np.float32))
        model = nn.Sequential([(f"m{i}", layer) for i, layer in enumerate(layers)])
        shapes = shape_or_error(layers, shape)
        try:
            assert model.output_shape(shape) == (shapes or [None])[-1]
        except CLEAR:
            assert shapes is None
        if shapes is None or max(int(np.prod(s)) for s in shapes) > MAX_ELEMENTS or \
                scratch_elements(specs, shapes) > MAX_ELEMENTS:
            return
        x, expected = make_input(shapes[0], values, defect, rng)
        if expected is not None:
            for call in (lambda: model.forward(x), lambda: layers[0].forward(x)):
                with pytest.raises(expected, match="x "):
                    call()
            return
        out = model.forward(x)
        assert list(out.shape) == shapes[-1] and out.dtype == np.float32
        h = x
        for layer, spec in zip(layers, specs):
            if not np.isfinite(h).all():
                return  # overflowed on the way (values near 1e30): a layer alone refuses such an input
            y = layer.forward(h)
            if np.isfinite(y).all():
                check_layer(layer, spec, h, y, rng)
            h = y
        np.testing.assert_array_equal(out, h, err_msg="Sequential.forward differs from the layers' forwards")


# ---- training ---------------------------------------------------------------------------------------------------

FLOATS = st.one_of(st.floats(1e-4, 1e-1), st.sampled_from([0.0, -1e-3, float("nan"), float("inf"), 1e30]))


@fuzz_settings(15)
@given(hidden=st.integers(1, 12), classes=st.integers(1, 6), batch=st.integers(1, 9), zo_layers=st.integers(-1, 3),
       eps=FLOATS, lr=FLOATS, grad_clip=st.one_of(st.just(0.0), FLOATS),
       optimizer=st.sampled_from(["sgd", "adam", "x"]),
       seed=st.one_of(st.integers(0, 2 ** 64 - 1), st.sampled_from([-1, 2 ** 64])), clean=st.booleans(),
       label_shift=st.sampled_from([0, 0, 0, 1, -1]), steps=st.integers(1, 4), data_seed=st.integers(0, 2 ** 32 - 1))
def fuzz_training(hidden, classes, batch, zo_layers, eps, lr, grad_clip, optimizer, seed, clean, label_shift, steps,
                  data_seed):
    with Watchdog():
        rng = np.random.default_rng(data_seed)
        model = nn.Sequential([("conv", nn.Conv2d(1, 2, 3, padding=1)), ("relu", nn.ReLU(inplace=True)),
                               ("pool", nn.MaxPool2d(2)), ("flat", nn.Flatten()), ("fc1", nn.Linear(2 * 4 * 4, hidden)),
                               ("relu1", nn.ReLU()), ("fc2", nn.Linear(hidden, classes))], seed=data_seed)
        try:
            trainer = _core.ElasticZO(model, zo_layers, eps=eps, lr_zo=lr, lr_bp=lr, grad_clip=grad_clip,
                                      clean_bp_pass=clean, optimizer=optimizer, seed=seed)
        except CLEAR:
            return
        x = rng.standard_normal((batch, 1, 8, 8)).astype(np.float32)
        labels = rng.integers(0, classes, batch).astype(np.int32)
        if label_shift:
            labels[rng.integers(batch)] = classes if label_shift > 0 else -1
        for _ in range(steps):
            try:
                stats = trainer.step(x, labels)
            except ValueError as exc:
                assert label_shift and "outside [0, " in str(exc)
                return
            except RuntimeError as exc:
                assert "not finite" in str(exc)
                break
            assert np.isfinite(stats["loss"])
        assert model.forward(x).shape == (batch, classes)
        assert sorted(model.state_dict()) == sorted(model.parameter_names())


# ---- parameters and checkpoints ---------------------------------------------------------------------------------

MUTATIONS = st.sampled_from(["same", "shape", "dtype", "nan", "inf", "strided", "missing", "extra", "scalar"])


@fuzz_settings(30)
@given(mutation=MUTATIONS, which=st.integers(0, 9), data_seed=st.integers(0, 2 ** 32 - 1))
def fuzz_parameter_mutations(mutation, which, data_seed):
    with Watchdog():
        rng = np.random.default_rng(data_seed)
        model = nn.Sequential([("conv", nn.Conv2d(1, 2, 3)), ("flat", nn.Flatten()), ("fc", nn.Linear(8, 3))], seed=1)
        state = model.state_dict()
        names = sorted(state)
        name = names[which % len(names)]
        value = rng.standard_normal(state[name].shape).astype(np.float32)
        expected = None
        if mutation == "shape":
            value, expected = np.zeros(value.size + 1, np.float32), ValueError
        elif mutation == "dtype":
            value, expected = value.astype(np.float64), TypeError
        elif mutation in ("nan", "inf"):
            value.flat[0], expected = (np.nan if mutation == "nan" else np.inf), ValueError
        elif mutation == "strided":
            value, expected = np.repeat(value, 2, axis=-1)[..., ::2], ValueError
        elif mutation == "scalar":
            value, expected = np.float32(1.0), (ValueError, TypeError)
        elif mutation == "missing":
            name, expected = name + "x", KeyError
        elif mutation == "extra":
            name, expected = "nope.weight", KeyError
        if expected is None:
            model.set_parameter(name, value)
            np.testing.assert_array_equal(model.parameter(name), value)
            return
        with pytest.raises(expected):
            model.set_parameter(name, value)
        for n in names:
            np.testing.assert_array_equal(model.parameter(n), state[n], err_msg=f"{n} changed by a refused call")


@fuzz_settings(10)
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=3),
       truncate=st.one_of(st.none(), st.floats(0, 1)))
def fuzz_checkpoint_bytes(flips, truncate):
    """A checkpoint with flipped bits or cut short is refused with CheckpointError, or restores exactly what was
    saved (a flip that leaves the content the same, e.g. in JSON padding)."""
    with Watchdog():
        def trainer():
            model = nn.Sequential([("fc1", nn.Linear(4, 3)), ("relu", nn.ReLU()), ("fc2", nn.Linear(3, 2))], seed=2)
            return ElasticZO(model, zo_layers=1, optimizer="adam", seed=3)

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ckpt.safetensors"
            saved = trainer()
            x, labels = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), np.array([0, 1, 1], dtype=np.int32)
            for _ in range(2):
                saved.core.step(x, labels)
            checkpoint.save_checkpoint(path, saved, {"model": "fuzz"})
            data = bytearray(path.read_bytes())
            for where, bit in flips:
                data[int(where * len(data))] ^= 1 << bit
            if truncate is not None:
                data = data[:int(truncate * len(data))]
            path.write_bytes(bytes(data))
            restored = trainer()
            try:
                tensors, state = checkpoint.read_checkpoint(path)
                checkpoint.restore_trainer(restored, tensors, state, path)
            except checkpoint.CheckpointError:
                return
            assert restored.core.steps_done == saved.core.steps_done
            for name, value in saved.model.state_dict().items():
                np.testing.assert_array_equal(restored.model.parameter(name), value, err_msg=name)


@pytest.mark.parametrize("target", [fuzz_layer_stacks, fuzz_training, fuzz_parameter_mutations,
                                    fuzz_checkpoint_bytes], ids=lambda t: t.__name__)
def test_fuzz(target):
    assert run_rounds(target) >= 1
