"""Shared pytest fixtures for tests/python."""

import os
from pathlib import Path

import pytest

from skip_policy import pytest_addoption, pytest_sessionfinish  # noqa: F401 (hooks: --no-skips)

REPO_ROOT = Path(__file__).resolve().parents[2]


def benchmark_module(name: str):
    """benchmarks/<name>.py imported as a module (with benchmarks/ on the path for its own imports)."""
    import importlib.util
    import sys
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))
    return module


def torch_lenet5(torch):
    """The paper's LeNet-5 in PyTorch, with the module names elasticzo.models.lenet5 uses (the test oracle)."""
    from collections import OrderedDict
    t = torch.nn
    return t.Sequential(OrderedDict([
        ("conv1", t.Conv2d(1, 6, 5, padding=2)), ("relu1", t.ReLU()), ("pool1", t.MaxPool2d(2)),
        ("conv2", t.Conv2d(6, 16, 5, padding=2)), ("relu2", t.ReLU()), ("pool2", t.MaxPool2d(2)),
        ("flatten", t.Flatten()), ("fc1", t.Linear(784, 120)), ("relu3", t.ReLU()), ("fc2", t.Linear(120, 84)),
        ("relu4", t.ReLU()), ("fc3", t.Linear(84, 10))]))


# ---- datasets (elasticzo.data) --------------------------------------------------------------------------------
# MNIST ships in the repository; Fashion-MNIST and ModelNet40 come from a shared data folder: the roots in
# $ELASTICZO_DATA, then ../shared/data beside the clone, then /work/shared/data. A test that needs a dataset
# fails (never skips) when it is nowhere, naming every place it looked.

def _shared_dataset_dir(name: str, required_file: str) -> Path:
    roots = [Path(p) for p in os.environ.get("ELASTICZO_DATA", "").split(os.pathsep) if p]
    roots = list(dict.fromkeys(roots + [REPO_ROOT.parent / "shared" / "data", Path("/work/shared/data")]))
    for root in roots:
        if (root / name / required_file).is_file():
            return root / name
    pytest.fail(f"{name} not found: no {name}/{required_file} under any of "
                f"{', '.join(str(r) for r in roots)}. Set ELASTICZO_DATA to the folder holding {name}/.")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    path = REPO_ROOT / "data" / "mnist"
    if not (path / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"{path} lacks the MNIST files the repository carries")
    return path


@pytest.fixture(scope="session")
def fashion_dir() -> Path:
    return _shared_dataset_dir("fashion-mnist", "train-images-idx3-ubyte.gz")


@pytest.fixture(scope="session")
def modelnet_dir() -> Path:
    return _shared_dataset_dir("modelnet40", "modelnet40_1024.npz")


def _dataset_fixture(name: str, split: str, folder_fixture: str):
    """A session fixture loading one split once; read-only since tests share it, so a stray write fails loudly."""
    @pytest.fixture(scope="session")
    def dataset(request):
        from elasticzo.data import load_dataset
        loaded = load_dataset(name, request.getfixturevalue(folder_fixture), split)
        loaded.x.flags.writeable = False
        loaded.y.flags.writeable = False
        return loaded
    return dataset


mnist_train = _dataset_fixture("mnist", "train", "mnist_dir")
mnist_test = _dataset_fixture("mnist", "test", "mnist_dir")
fashion_train = _dataset_fixture("fashion-mnist", "train", "fashion_dir")
fashion_test = _dataset_fixture("fashion-mnist", "test", "fashion_dir")


# ---- kernels and numerics (elasticzo._core) --------------------------------------------------------------------
# A test that takes `isa` runs once per ISA this CPU offers with that ISA's kernels active, `optimized_isa` once per
# ISA but 'ref'; both restore the default afterwards, as `restore_threads` does for the thread count, so no test
# leaks its choice into another.

def pytest_generate_tests(metafunc):
    for name, first in (("isa", 0), ("optimized_isa", 1)):
        if name in metafunc.fixturenames:
            from elasticzo import _core
            metafunc.parametrize(name, _core.available_isas()[first:], indirect=True)


def _use_isa(request):
    from elasticzo import _core
    _core.set_isa(request.param)
    yield request.param
    _core.set_isa("auto")


isa = pytest.fixture(_use_isa, name="isa")
optimized_isa = pytest.fixture(_use_isa, name="optimized_isa")


@pytest.fixture
def restore_threads():
    from elasticzo import _core
    before = _core.num_threads()
    yield
    _core.set_num_threads(before)


@pytest.fixture(scope="session")
def assert_close():
    """assert_close(ours, ref, tol, what): max |ours - ref| <= tol * max |ref| (exact when ref is all zeros).

    The failure message names `what` (the case: shapes and seed), the worst element and its two values.
    """
    import numpy as np

    def check(ours, ref, tol, what):
        ours = np.asarray(ours, dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        assert ours.shape == ref.shape, f"{what}: shape {ours.shape} != reference {ref.shape}"
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        err = np.abs(ours - ref)
        worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
        assert err.size == 0 or err[worst] <= tol * scale, (
            f"{what}: max error {err[worst]:.3g} > {tol:g} x {scale:.3g} at index {tuple(int(i) for i in worst)}: "
            f"got {ours[worst]!r}, expected {ref[worst]!r}")

    return check
