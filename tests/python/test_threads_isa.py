"""Thread count and ISA through the Python API: every layer method and a LeNet-5 forward give the same bits for
1, 2 and 3 threads on every ISA, and every optimized ISA agrees with the reference kernels on awkward sizes.

Optimized vs reference: ReLU, pooling and flatten do no arithmetic and must match bit for bit. Convolution and
linear layers sum K products in another order; the classic bound |error| <= K u sum|terms| (u = 2^-24) holds for
both, so each element may differ by 2 K u times the same computation on absolute values (K: reduction length).
"""

import numpy as np
import pytest

import elasticzo
from elasticzo import _core, nn
from elasticzo.models import lenet5

U = 2.0 ** -24


def _bits(a):
    return np.ascontiguousarray(a).view(np.uint32)


def _unaligned(a):
    """A C-contiguous copy of `a` starting one float past an allocation, so SIMD loads are not 16/32/64-aligned."""
    buf = np.empty(a.size + 1, dtype=np.float32)
    out = buf[1:].reshape(a.shape)
    out[...] = a
    return out


def _run_all(layer, x, dy):
    y = layer.forward(x)
    return {"forward": y, "backward_data": layer.backward_data(x, y, dy),
            **{f"backward_weight[{k}]": v for k, v in layer.backward_weight(x, dy).items()}}


def _randomized(layer, rng):
    for name, value in layer.parameters().items():
        layer.set_parameter(name, rng.uniform(-1, 1, value.shape).astype(np.float32))
    return layer


# Big enough that every kernel opens a parallel region and conv backward-weight splits the batch into several
# uneven chunks of samples.
THREAD_CASES = [
    ("Conv2d(8, 8, 3, padding=1)", lambda: nn.Conv2d(8, 8, 3, padding=1), (5, 8, 64, 61)),
    ("Conv2d(1, 6, 5, padding=2)", lambda: nn.Conv2d(1, 6, 5, padding=2), (17, 1, 28, 28)),
    ("Linear(784, 120)", lambda: nn.Linear(784, 120), (33, 784)),
    ("PointLinear(64, 65)", lambda: nn.PointLinear(64, 65), (3, 1024, 64)),
    ("ReLU()", lambda: nn.ReLU(), (17, 6, 28, 28)),
    ("ReLU(inplace=True)", lambda: nn.ReLU(inplace=True), (3, 1024, 64)),
    ("MaxPool2d(2)", lambda: nn.MaxPool2d(2), (17, 6, 28, 29)),
    ("PointMaxPool()", lambda: nn.PointMaxPool(), (3, 1024, 129)),
    ("Flatten()", lambda: nn.Flatten(), (17, 16, 7, 7)),
]


@pytest.mark.parametrize("name,make,shape", THREAD_CASES, ids=[c[0] for c in THREAD_CASES])
def test_layer_bits_independent_of_threads(name, make, shape, isa, restore_threads):
    rng = np.random.default_rng(len(name))
    layer = _randomized(make(), rng)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(layer.output_shape(list(shape))).astype(np.float32)
    _core.set_num_threads(1)
    base = _run_all(layer, x, dy)
    for threads in (2, 3):
        _core.set_num_threads(threads)
        for method, out in _run_all(layer, x, dy).items():
            diff = np.flatnonzero(_bits(out) != _bits(base[method]))
            assert diff.size == 0, (f"{name} x{shape} isa={isa} {method}: {threads} threads differ from 1 thread "
                                    f"at flat index {diff[0]} ({out.ravel()[diff[0]]!r} vs "
                                    f"{base[method].ravel()[diff[0]]!r}), {diff.size} elements in all")


def test_lenet5_forward_bits_independent_of_threads(isa, restore_threads):
    model = lenet5(seed=5)
    x = np.random.default_rng(5).random((32, 1, 28, 28), dtype=np.float32)
    _core.set_num_threads(1)
    base = model.forward(x)
    for threads in (2, 3):
        _core.set_num_threads(threads)
        out = model.forward(x)
        assert np.array_equal(_bits(out), _bits(base)), f"LeNet-5 batch 32 isa={isa}: {threads} threads differ"


def _abs_layer(make, layer):
    twin = make()
    for name, value in layer.parameters().items():
        twin.set_parameter(name, np.abs(value))
    return twin


def _check_against_ref(make, x, dy, reductions, what):
    """Runs `make()` with random parameters under the active ISA and under 'ref' on (unaligned) x and dy."""
    isa = _core.active_isa()
    layer = _randomized(make(), np.random.default_rng(x.size))
    ours = _run_all(layer, _unaligned(x), _unaligned(dy))
    _core.set_isa("ref")
    try:
        ref = _run_all(layer, x, dy)
        bound = _run_all(_abs_layer(make, layer), np.abs(x), np.abs(dy)) if reductions else None
    finally:
        _core.set_isa(isa)
    for method, out in ours.items():
        if reductions is None:
            diff = np.flatnonzero(_bits(out) != _bits(ref[method]))
            assert diff.size == 0, (f"{what} {method} isa={isa}: differs from ref at flat index {diff[0]} "
                                    f"({out.ravel()[diff[0]]!r} vs {ref[method].ravel()[diff[0]]!r})")
            continue
        k = reductions[method.split("[")[0]]
        tol = 2.0 * k * U * bound[method].astype(np.float64)
        err = np.abs(out.astype(np.float64) - ref[method])
        bad = np.flatnonzero(err > tol)
        assert bad.size == 0, (f"{what} {method} isa={isa} (reduction length {k}): flat index {bad[0]} is "
                               f"{out.ravel()[bad[0]]!r}, ref {ref[method].ravel()[bad[0]]!r}, "
                               f"allowed error {tol.ravel()[bad[0]]:.3g}")


AWKWARD = [1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33]


@pytest.fixture
def one_thread(restore_threads):
    """The ISA comparisons run on one thread: the thread count changes no bits (tested above), and these many small
    calls would mostly time thread wake-ups."""
    _core.set_num_threads(1)


@pytest.mark.parametrize("i", range(len(AWKWARD)))
def test_conv2d_matches_ref(i, optimized_isa, one_thread):
    a, b, c = AWKWARD[i], AWKWARD[(i + 4) % len(AWKWARD)], AWKWARD[(i + 7) % len(AWKWARD)]
    cases = [(1 + i % 3, a % 9 + 1, b, c, a, 3, 1), (2, b % 7 + 1, a, a % 9 + 4, c % 9 + 4, 5, i % 3),
             (1, c, c % 5 + 1, b, 1, 1, 0)]
    for n, cin, cout, h, w, k, p in cases:
        rng = np.random.default_rng(i)
        x = rng.standard_normal((n, cin, h, w)).astype(np.float32)
        oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
        dy = rng.standard_normal((n, cout, oh, ow)).astype(np.float32)
        for bias in (True, False):
            _check_against_ref(lambda: nn.Conv2d(cin, cout, k, padding=p, bias=bias), x, dy,
                               {"forward": cin * k * k + 1, "backward_data": cout * k * k,
                                "backward_weight": n * oh * ow},
                               f"Conv2d({cin}, {cout}, {k}, padding={p}, bias={bias}) x{x.shape} seed={i}")


@pytest.mark.parametrize("i", range(len(AWKWARD)))
def test_linear_matches_ref(i, optimized_isa, one_thread):
    rows, fin, fout = AWKWARD[i], AWKWARD[(i + 3) % len(AWKWARD)], AWKWARD[(i + 6) % len(AWKWARD)]
    rng = np.random.default_rng(i)
    for lead, make in [((rows,), nn.Linear), ((2, rows + 16), nn.PointLinear)]:
        x = rng.standard_normal(lead + (fin * 3,)).astype(np.float32)
        dy = rng.standard_normal(lead + (fout,)).astype(np.float32)
        for bias in (True, False):
            _check_against_ref(lambda: make(fin * 3, fout, bias=bias), x, dy,
                               {"forward": fin * 3 + 1, "backward_data": fout,
                                "backward_weight": int(np.prod(lead))},
                               f"{make.__name__}({fin * 3}, {fout}, bias={bias}) x{x.shape} seed={i}")


@pytest.mark.parametrize("i", range(len(AWKWARD)))
def test_exact_layers_match_ref(i, optimized_isa, one_thread):
    a, b = AWKWARD[i], AWKWARD[(i + 5) % len(AWKWARD)]
    rng = np.random.default_rng(i)
    cases = [(nn.ReLU, (a, b)), (lambda: nn.ReLU(inplace=True), (2, a, b)), (nn.Flatten, (a, b, 2)),
             (lambda: nn.MaxPool2d(2), (2, a, b + 1, a + 1)), (lambda: nn.MaxPool2d(3), (1, b, a + 2, b + 2)),
             (nn.PointMaxPool, (2, a, b))]
    for make, shape in cases:
        # Halves repeat often, so every ISA must route a pool's error to the same (first) maximum, and rounding
        # makes -0.0 and +0.0, which ReLU must treat alike.
        x = (np.round(2 * rng.standard_normal(shape)) / 2).astype(np.float32)
        dy = rng.standard_normal(make().output_shape(list(shape))).astype(np.float32)
        _check_against_ref(make, x, dy, None, f"{make()!r} x{shape} seed={i}")


def test_python_threads_sharing_a_layer_get_serial_results():
    """Standalone layer calls from several Python threads at once give the serial results (forward and
    backward_data run without the GIL; backward_weight keeps it, as it lends the layer its output arrays)."""
    from concurrent.futures import ThreadPoolExecutor

    layer = _randomized(nn.Conv2d(3, 8, 3, padding=1), np.random.default_rng(0))
    xs = [np.random.default_rng(i).standard_normal((2, 3, 16, 16)).astype(np.float32) for i in range(8)]
    dys = [np.random.default_rng(100 + i).standard_normal((2, 8, 16, 16)).astype(np.float32) for i in range(8)]
    serial = [_run_all(layer, x, dy) for x, dy in zip(xs, dys)]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            for want, got in zip(serial, pool.map(lambda a: _run_all(layer, *a), zip(xs, dys))):
                for method in want:
                    assert np.array_equal(_bits(got[method]), _bits(want[method])), method
    serial_after = _run_all(layer, xs[0], dys[0])
    assert all(np.array_equal(serial_after[m], serial[0][m]) for m in serial_after)


def test_set_isa_while_another_thread_trains():
    """A step releases the GIL, so set_isa runs while kernels are being called; tables live for the process, so the
    running step never calls through a freed one (checked under AddressSanitizer in CI)."""
    import threading

    from elasticzo import ElasticZO

    tr = ElasticZO(lenet5(seed=1), method="zo-feat-cls1", lr_zo=1e-4, lr_bp=0.01, eps=1e-3, grad_clip=1.0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 16).astype(np.int32)
    losses = []
    worker = threading.Thread(target=lambda: losses.extend(tr.core.step(x, y)["loss"] for _ in range(40)))
    worker.start()
    isas = _core.available_isas()
    switches = 0
    while worker.is_alive():
        _core.set_isa(isas[switches % len(isas)])
        switches += 1
    worker.join()
    _core.set_isa("auto")
    assert len(losses) == 40 and np.all(np.isfinite(losses))
    assert switches > 40


@pytest.mark.parametrize("method", ["full-zo", "zo-feat-cls1"])
def test_lenet5_zo_steps_same_bits_with_relu_folded_into_pooling(method, isa, restore_threads):
    """A ZO pass and a forward with no backward through relu1/pool1 and relu2/pool2 pool the ReLU's input (the ReLU's
    output is never written): losses, weights and the forward's output keep their bits with the fusion off, for 1
    and 2 threads. A backward prepared after a fused forward still finds the ReLU outputs (tests/cpp/test_layers)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 16, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, (2, 16)).astype(np.int32)
    runs = []
    for threads, fuse in ((1, True), (1, False), (2, True), (2, False)):
        _core.set_num_threads(threads)
        tr = elasticzo.ElasticZO(lenet5(seed=8), method=method, lr_zo=1e-3, lr_bp=0.05, eps=1e-3, seed=9)
        tr.model.fuse_relu_pool = fuse
        losses = [(s["loss_plus"], s["loss_minus"]) for s in (tr.core.step(x[i], y[i]) for i in range(2))]
        runs.append((losses, tr.model.state_dict(), tr.model.forward(x[0])))
    for losses, state, out in runs[1:]:
        assert losses == runs[0][0]
        assert np.array_equal(_bits(out), _bits(runs[0][2]))
        for name, value in state.items():
            assert np.array_equal(_bits(value), _bits(runs[0][1][name])), name
