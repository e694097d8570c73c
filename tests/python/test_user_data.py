"""The user's own data: trainer.fit / evaluate on numpy arrays of every accepted dtype, `elasticzo train --data`,
a clear error for every kind of bad input, and the defaults (seedless initialization, epochs, on_step)."""

import json
import re

import numpy as np
import pytest

import elasticzo
from elasticzo import models, nn
from elasticzo.data import as_dataset, load_npz

from test_cli import cli

N = 192  # three batches of 64
TWO_CLASSES = np.array([0, 1, 0, 1])  # labels of 4 samples that make a classifier


def lenet_trainer(method="full-bp", seed=0):
    return elasticzo.ElasticZO(models.lenet5(seed=seed), method=method, lr_zo=5e-4, lr_bp=0.05, eps=1e-3,
                               grad_clip=3.0, seed=seed)


@pytest.fixture(scope="module")
def pixels(mnist_test):
    """uint8 images (N, 28, 28) as a user would have them, and their int64 labels."""
    return np.ascontiguousarray(mnist_test.x[:N, 0]), mnist_test.y[:N].astype(np.int64)


def trained_weights(x, y, **fit):
    tr = lenet_trainer()
    tr.fit(x, y, batch_size=64, progress=False, **fit)
    return tr.model.state_dict()


def assert_same(a, b):
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ---- every accepted dtype trains exactly as float32 holding the same values ------------------------------------

def test_every_input_dtype_trains_like_float32_of_the_same_values(pixels):
    images, labels = pixels
    as_f32 = (images / 255.0).astype(np.float32)  # what uint8 pixels mean: pixel / 255
    reference = trained_weights(as_f32, labels)
    assert_same(trained_weights(images, labels), reference)  # uint8, (N, 28, 28): channel axis added
    assert_same(trained_weights(images / 255.0, labels), reference)  # float64
    assert_same(trained_weights(as_f32[:, None], labels), reference)  # float32 with its channel axis
    halves = as_f32.astype(np.float16)
    assert_same(trained_weights(halves, labels), trained_weights(halves.astype(np.float32), labels))


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.uint64])
def test_every_integer_label_dtype_gives_the_same_run(pixels, dtype):
    images, labels = pixels
    assert_same(trained_weights(images, labels.astype(dtype)), trained_weights(images, labels))


def test_evaluate_on_arrays_equals_the_dataset(pixels, mnist_test):
    images, labels = pixels
    tr = lenet_trainer()
    tr.fit(images, labels, batch_size=64, progress=False, test=(images, labels))
    on_arrays = tr.evaluate(images, labels)
    assert tr.history[-1]["test_accuracy"] == on_arrays["accuracy"]
    held = mnist_test.subset(range(N))
    raw = elasticzo.data.Dataset("raw", "test", held.x, held.y, held.classes)  # mean 0, std 1: pixel / 255
    assert tr.evaluate(raw) == on_arrays


def test_arrays_are_held_not_copied(pixels):
    images, labels = pixels
    ds = as_dataset(images, labels)
    assert np.shares_memory(ds.x, images) and ds.y.dtype == np.int32


# ---- bad input: one clear error each ---------------------------------------------------------------------------

def _with(array, index, value):
    out = array.astype(np.float32)
    out.reshape(-1)[index] = value
    return out


@pytest.mark.parametrize("make,message", [
    (lambda x, y: (x[:, :27, :27], y), r"samples of shape \(27, 27\) do not fit the model"),
    (lambda x, y: (x.reshape(-1), y[:1]), r"x must have shape \(samples, \.\.\.features\)"),
    (lambda x, y: (x[:, :0], y), r"x must have shape \(samples, \.\.\.features\) with features"),
    (lambda x, y: (_with(x, 5 * 784 + 3, np.nan), y), "sample 5 holds NaN"),
    (lambda x, y: (_with(x, 7 * 784, np.inf), y), "sample 7 holds NaN, infinity"),
    (lambda x, y: (_with(x, 0, -np.inf), y), "sample 0 holds NaN, infinity"),
    (lambda x, y: (_with(x, 2 * 784 + 1, np.inf).astype(np.float16), y), "sample 2 holds NaN, infinity"),
    (lambda x, y: (np.where(np.arange(len(x))[:, None, None] == 9, 1e39, x / 255.0), y),
     "sample 9 holds .*beyond float32's range"),
    (lambda x, y: (x, np.where(np.arange(len(y)) == 4, 10, y)), r"label 10 at index 4 is outside 0..9: the model "
                                                                 r"has 10 outputs"),
    (lambda x, y: (x, np.where(np.arange(len(y)) == 6, -1, y)), "label -1 at index 6 is negative"),
    (lambda x, y: (x, y.astype(np.float32)), "labels must be integers"),
    (lambda x, y: (x, y > 4), "labels must be integers"),
    (lambda x, y: (x, y[:, None]), r"y must have shape \(samples,\)"),
    (lambda x, y: (x[:0], y[:0]), "holds no samples"),
    (lambda x, y: (x, y[:-1]), f"x holds {N} samples but y holds {N - 1} labels"),
    (lambda x, y: (x.astype(np.int64), y), "x has dtype int64; give uint8 pixels or float16/float32/float64"),
    (lambda x, y: (x, None), "y is missing"),
    (lambda x, y: (x, np.where(np.arange(len(y)) == 2, 10**9, y)), "label 1000000000 at index 2 would make"),
], ids=["shape", "1-d", "no-features", "nan", "inf", "-inf", "float16-inf", "float64-range", "label-too-big",
        "label-negative", "float-labels", "bool-labels", "2-d-labels", "empty", "lengths", "int64-x", "no-labels",
        "absurd-label"])
def test_bad_arrays_are_clear_errors_in_fit_and_evaluate(pixels, make, message):
    x, y = make(*pixels)
    tr = lenet_trainer()
    before = tr.model.state_dict()
    with pytest.raises(ValueError, match=message):
        tr.fit(x, y, progress=False)
    with pytest.raises(ValueError, match=message):
        tr.evaluate(x, y)
    with pytest.raises(ValueError, match=message):
        tr.fit(*pixels, progress=False, test=(x, y))  # the test set is checked before training starts
    assert tr.epoch == 0
    assert_same(tr.model.state_dict(), before)


def test_dataset_with_labels_or_positional_epochs_is_a_type_error(mnist_test):
    tr = lenet_trainer()
    with pytest.raises(TypeError, match="give epochs= by keyword"):
        tr.fit(mnist_test, 2)
    with pytest.raises(TypeError, match="a Dataset carries its own labels"):
        tr.evaluate(mnist_test, mnist_test.y)


def test_model_for_names_the_shape_it_cannot_take():
    assert [models.model_for(s) for s in [(28, 28), (1, 28, 28), (1024, 3), (20,)]] == [
        "lenet5", "lenet5", "pointnet", "mlp"]
    with pytest.raises(ValueError, match=r"no built-in model reads samples of shape \(3, 32, 32\)"):
        models.model_for((3, 32, 32))


# ---- elasticzo train --data ------------------------------------------------------------------------------------

def _save(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.training
def test_cli_trains_lenet5_on_user_images(tmp_path, mnist_test):
    data = _save(tmp_path / "digits.npz", x_train=mnist_test.x[:2000, 0], y_train=mnist_test.y[:2000].astype(np.uint8),
                 x_test=mnist_test.x[2000:2500, 0], y_test=mnist_test.y[2000:2500])
    run = tmp_path / "run"
    proc = cli("train", "--data", data, "--method", "full-bp", "--epochs", "3", "--no-progress", "--json",
               "--out", str(run))
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["model"] == "lenet5" and summary["dataset"] == "digits.npz" and summary["epochs"] == 3
    assert summary["test_accuracy"] > 0.5  # 2,000 images, 3 epochs of backprop (measured 0.66); chance is 0.1
    evaluated = json.loads(cli("eval", "--checkpoint", str(run / "checkpoint.safetensors"), "--json").stdout)
    assert evaluated["accuracy"] == pytest.approx(summary["test_accuracy"], abs=1e-12)


@pytest.mark.training
def test_cli_trains_an_mlp_on_flat_features_without_a_test_split(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20)) * 3
    y = rng.integers(0, 3, size=600)
    x = centres[y] + rng.normal(size=(600, 20))  # float64, three well separated clusters
    data, run = _save(tmp_path / "blobs.npz", x_train=x, y_train=y), str(tmp_path / "run")
    cli("train", "--data", data, "--method", "full-bp", "--epochs", "2", "--no-progress", "--out", run)
    # the run records its file: --resume needs no --data, from any folder
    proc = cli("train", "--resume", "--out", run, "--epochs", "3", "--no-progress", "--json", cwd=tmp_path)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["model"] == "mlp" and summary["test_accuracy"] is None and summary["epochs"] == 3
    assert summary["train_loss"] < 0.5


@pytest.mark.parametrize("arrays,extra,message", [
    ({"x_train": np.zeros((4, 28, 28), np.uint8)}, (), "no array named y_train"),
    ({"x_train": np.zeros((4, 28, 28), np.uint8), "y_train": TWO_CLASSES,
      "x_test": np.zeros((4, 28, 28), np.uint8)}, (), "no array named y_test"),
    ({"x_train": np.zeros((4, 3, 32, 32), np.uint8), "y_train": TWO_CLASSES}, (),
     r"no built-in model reads samples of shape \(3, 32, 32\)"),
    ({"x_train": np.zeros((4, 20), np.float32), "y_train": TWO_CLASSES}, ("--model", "lenet5"),
     r"samples of shape \(20,\) do not fit the model"),
    ({"x_train": np.zeros((4, 28, 28), np.uint8), "y_train": TWO_CLASSES,
      "x_test": np.zeros((4, 20, 20), np.uint8), "y_test": np.zeros(4, np.int64)}, (),
     r"x_test has samples of shape \(20, 20\), x_train \(28, 28\)"),
    ({"x_train": np.full((4, 5), np.nan), "y_train": TWO_CLASSES}, (), "sample 0 holds NaN"),
    ({"x_train": np.ones((4, 5), np.float32), "y_train": np.zeros(4, np.int64)}, (),
     r"the labels hold a single class \(0\); a classifier needs at least 2"),
    ({"x_train": np.ones((4, 5), np.float32), "y_train": np.zeros(4, np.int64), "class_names": np.array(["cat"])},
     (), r"a single class \(cat\)"),
], ids=["no-y", "half-test", "unknown-shape", "model-mismatch", "split-shapes", "nan", "one-class", "one-name"])
def test_cli_bad_data_files_are_clear_errors(tmp_path, arrays, extra, message):
    proc = cli("train", "--data", _save(tmp_path / "bad.npz", **arrays), *extra, "--no-progress", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert re.search(message, proc.stderr), proc.stderr


def test_a_run_resumes_and_evaluates_only_on_the_data_file_it_started_from(tmp_path):
    """The run records its --data file's SHA-256: a file rewritten in place (same shapes, other arrays) was taken
    silently by --resume and by eval, breaking the bit-identical resume without a word."""
    rng = np.random.default_rng(0)

    def arrays():
        return dict(x_train=rng.normal(size=(40, 6)).astype(np.float32), y_train=np.arange(40) % 3,
                    x_test=rng.normal(size=(8, 6)).astype(np.float32), y_test=np.arange(8) % 3)

    data, run = _save(tmp_path / "mine.npz", **arrays()), tmp_path / "run"
    cli("train", "--data", data, "--epochs", "1", "--no-progress", "--out", str(run))
    cli("train", "--resume", "--out", str(run), "--epochs", "2", "--no-progress")  # the same file: fine
    _save(tmp_path / "mine.npz", **arrays())
    proc = cli("train", "--resume", "--out", str(run), "--epochs", "3", "--no-progress", check=False)
    assert proc.returncode == 2 and "is not the file this run started from" in proc.stderr, proc.stderr
    proc = cli("eval", "--checkpoint", str(run / "checkpoint.safetensors"), check=False)
    assert proc.returncode == 2 and "name the one to evaluate on with --data" in proc.stderr, proc.stderr
    assert "accuracy" in cli("eval", "--checkpoint", str(run / "checkpoint.safetensors"), "--data", data).stdout


def test_cli_data_file_that_is_not_an_npz(tmp_path):
    bad = tmp_path / "notes.npz"
    bad.write_text("not a zip")
    proc = cli("train", "--data", str(bad), "--no-progress", check=False)
    assert proc.returncode == 2 and "not a readable .npz archive" in proc.stderr
    proc = cli("train", "--data", str(tmp_path / "absent.npz"), "--no-progress", check=False)
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = cli("train", "--data", str(bad), "--dataset", "mnist", "--no-progress", check=False)
    assert proc.returncode == 2 and "not both" in proc.stderr


def test_load_npz_unifies_the_classes_of_both_splits_and_warns_of_those_training_lacks(tmp_path):
    path = _save(tmp_path / "d.npz", x_train=np.zeros((3, 4), np.float32), y_train=np.array([0, 1, 1]),
                 x_test=np.zeros((2, 4), np.float32), y_test=np.array([4, 0]))
    with pytest.warns(UserWarning, match=r"y_test holds classes that y_train never does \(4\)"):
        train, test = load_npz(path)
    assert train.classes == test.classes == ("0", "1", "2", "3", "4")
    # One class in training: refused even when the test split names a second (it could only be guessed).
    path = _save(tmp_path / "e.npz", x_train=np.zeros((3, 4), np.float32), y_train=np.zeros(3, np.int64),
                 x_test=np.zeros((2, 4), np.float32), y_test=np.array([1, 0]))
    with pytest.warns(UserWarning, match=r"never does \(1\)"):
        assert load_npz(path)[0].num_classes == 2


def test_a_model_with_one_output_is_refused_before_training(pixels):
    """Softmax cross-entropy over a single logit is 0 whatever the weights: training it would silently do nothing."""
    x, y = pixels
    tr = elasticzo.ElasticZO(models.lenet5(num_classes=1, seed=0), method="zo-feat-cls1", seed=0)
    for call in (lambda: tr.fit(x, np.zeros(len(y), np.int64), progress=False),
                 lambda: tr.evaluate(x, np.zeros(len(y), np.int64))):
        with pytest.raises(ValueError, match="the model has 1 output; a classifier needs at least 2 classes"):
            call()
    assert tr.epoch == 0


# ---- defaults that do not surprise -----------------------------------------------------------------------------

def test_a_layer_built_without_a_seed_is_randomly_initialized_and_keeps_its_seed():
    a, b = nn.Linear(50, 20), nn.Linear(50, 20)
    wa = a.parameters()["weight"]
    assert np.abs(wa).max() > 0 and np.abs(wa).max() <= 1 / np.sqrt(50)  # PyTorch's U(-1/sqrt(fan_in), ...)
    assert not np.array_equal(wa, b.parameters()["weight"])
    assert isinstance(a.seed, int) and a.seed != b.seed
    again = nn.Linear(50, 20, seed=a.seed)
    assert np.array_equal(again.parameters()["weight"], wa) and again.seed == a.seed
    conv = nn.Conv2d(1, 4, 3)
    assert np.abs(conv.parameters()["weight"]).max() > 0 and nn.ReLU().seed is None


def test_a_model_built_without_a_seed_records_the_one_it_drew():
    model = models.lenet5()
    assert isinstance(model.seed, int) and 0 <= model.seed < 2**63
    assert_same(models.lenet5(seed=model.seed).state_dict(), model.state_dict())
    assert models.lenet5().seed != model.seed
    hand_made = nn.Sequential([("fc", nn.Linear(4, 2, seed=7))])
    assert hand_made.seed is None and hand_made[0][1].seed == 7  # the layers keep their own initialization


def test_an_unseeded_model_learns(pixels):
    images, labels = pixels
    model = nn.Sequential([("flat", nn.Flatten()), ("fc1", nn.Linear(784, 32)), ("act", nn.ReLU()),
                           ("fc2", nn.Linear(32, 10))])
    tr = elasticzo.ElasticZO(model, method="full-bp", lr_bp=0.2)
    before = tr.evaluate(images, labels)["loss"]
    tr.fit(images, labels, epochs=5, batch_size=32, progress=False)
    assert tr.evaluate(images, labels)["loss"] < 0.6 * before  # all-zero weights stayed near log(10) = 2.30


def test_epochs_is_an_increment_and_until_epoch_a_total(pixels):
    images, labels = pixels
    tr = lenet_trainer()
    tr.fit(images, labels, progress=False)  # one epoch by default
    tr.fit(images, labels, epochs=2, progress=False)
    assert tr.epoch == 3 and [m["epoch"] for m in tr.history] == [1, 2, 3]
    tr.fit(images, labels, until_epoch=4, progress=False)
    tr.fit(images, labels, until_epoch=4, progress=False)  # already there: nothing to do
    assert tr.epoch == 4 and len(tr.history) == 4
    with pytest.raises(ValueError, match="not both"):
        tr.fit(images, labels, epochs=1, until_epoch=5)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="must be an int >= 1"):
            tr.fit(images, labels, epochs=bad)


def test_a_callback_that_cannot_be_called_is_refused_before_the_first_step(pixels):
    """Before: on_step=5 failed after the first step, whose update had already moved the weights."""
    images, labels = pixels
    tr = lenet_trainer()
    before = tr.model.state_dict()
    for kwargs in ({"on_step": 5}, {"on_epoch_end": "print"}):
        name, value = next(iter(kwargs.items()))
        with pytest.raises(TypeError, match=f"{name} must be callable \\(or None\\), got {type(value).__name__}"):
            tr.fit(images, labels, progress=False, **kwargs)
    with pytest.raises(TypeError, match="on_step must be callable"):
        tr.train_epoch(as_dataset(images, labels), 64, on_step=[])
    assert (tr.epoch, tr.batch_in_epoch) == (0, 0)
    assert_same(tr.model.state_dict(), before)


def test_on_step_receives_each_steps_loss(pixels):
    images, labels = pixels
    tr = lenet_trainer()
    seen = []
    tr.fit(images, labels, batch_size=64, progress=False, on_step=lambda trainer, loss: seen.append(loss))
    assert len(seen) == 3 and all(isinstance(v, float) and np.isfinite(v) for v in seen)
    assert tr.history[-1]["train_loss"] == pytest.approx(sum(seen) / 3, rel=1e-12)
