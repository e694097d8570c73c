"""ElasticZO-INT8 training (Algorithm 2): a step leaves exactly clip(w - g R(zeta)) even with every ZO weight at the
clip bounds (the passes never write the weights), results independent of threads and ISA, bit-identical resume,
the CLI's int8 / int8-intonly runs with sign_agreement, and ZO-Feat-Cls1 on MNIST against FP32."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import elasticzo
from elasticzo import _core
from elasticzo.data import load_dataset
from elasticzo.models import lenet5, mlp


@pytest.fixture(scope="module")
def mnist_batches():
    train = load_dataset("mnist", None, "train").subset(range(128))
    return train.x.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0, train.y.astype(np.int32)


@pytest.mark.parametrize("precision", ["int8", "int8-intonly"])
def test_a_step_at_the_clip_bounds_leaves_exactly_the_update(precision, mnist_batches):
    x, y = mnist_batches
    model = lenet5(seed=1, precision="int8")
    sd = model.state_dict()
    # Every ZO weight (conv1, conv2, fc1) at +-127 or one inside: most moves of the passes clip.
    for name in ("conv1.weight", "conv2.weight", "fc1.weight"):
        w = np.resize(np.array([127, -127, 126, -127, 127], np.int8), sd[name].size).reshape(sd[name].shape)
        model.set_parameter(name, w, int(sd[f"{name}.exponent"]))
    before = model.state_dict()
    trainer = elasticzo.ElasticZO(model, method="zo-feat-cls1", seed=5, precision=precision, zo_range=3)
    trainer.start_epoch(0)
    g = trainer.core.step(x[:32], y[:32])["projected_grad"]
    assert g in (-1.0, 0.0, 1.0)
    shift = _core.int8_zo_update_shift(3, 1)
    after = model.state_dict()
    for layer, name in enumerate(("conv1.weight", "conv2.weight", "fc1.weight")):
        want = before[name] if g == 0 else _core.int8_zo_perturb(
            before[name], _core.step_key(5, 0), layer, 0, 3, 0.33, sign=-int(g), shift=shift)
        np.testing.assert_array_equal(after[name], want, err_msg=name)
    assert trainer.core.steps_done == 1


def _train(precision, steps, x, y, threads=None, isa=None, method="zo-feat-cls1"):
    trainer = elasticzo.ElasticZO(lenet5(seed=2, precision="int8"), method=method, seed=4, precision=precision,
                                  log2_frac_bits=4 if precision == "int8-intonly" else 0)
    trainer.start_epoch(0)
    grads = [trainer.core.step(x[i * 32:(i + 1) * 32], y[i * 32:(i + 1) * 32])["projected_grad"]
             for i in range(steps)]
    return trainer.model.state_dict(), grads


@pytest.mark.parametrize("precision", ["int8", "int8-intonly"])
def test_training_is_the_same_for_every_thread_count_and_isa(precision, mnist_batches):
    x, y = mnist_batches
    isa, threads = _core.active_isa(), _core.num_threads()
    runs = {}
    try:
        for level in _core.available_isas():
            for n in (1, 3):
                _core.set_isa(level)
                _core.set_num_threads(n)
                runs[(level, n)] = _train(precision, 4, x, y)
    finally:
        _core.set_isa(isa)
        _core.set_num_threads(threads)
    first_sd, first_g = next(iter(runs.values()))
    assert any(g != 0 for g in first_g)
    for key, (sd, grads) in runs.items():
        assert grads == first_g, key
        for name, value in sd.items():
            assert np.array_equal(value, first_sd[name]), (key, name)


def test_resume_is_bit_identical_and_keeps_the_sign_count(tmp_path, mnist_batches):
    x, y = mnist_batches
    flat = x.reshape(len(x), -1)
    make = lambda: mlp(784, 10, seed=1, precision="int8")  # noqa: E731
    kw = dict(method="zo-feat-cls1", seed=4, precision="int8-intonly", log2_frac_bits=8)
    whole = elasticzo.ElasticZO(make(), **kw)
    whole.fit(flat, y, epochs=2, batch_size=32, progress=False)
    half = elasticzo.ElasticZO(make(), **kw)
    half.fit(flat, y, epochs=1, batch_size=32, progress=False)
    half.save(tmp_path / "run.safetensors")
    resumed = elasticzo.ElasticZO.load(tmp_path / "run.safetensors")
    assert resumed.precision == "int8-intonly" and resumed.config["log2_frac_bits"] == 8
    resumed.fit(flat, y, until_epoch=2, batch_size=32, progress=False)
    for name, value in whole.model.state_dict().items():
        assert np.array_equal(resumed.model.state_dict()[name], value), name
    keys = ("train_loss", "gradient_bits", "zo_p_zero", "sign_agreement", "sign_steps", "sign_ties",
            "sign_agreement_decided", "sign_tie_steps", "sign_undecided_steps")  # not the timings
    assert [{k: m[k] for k in keys} for m in resumed.history] == [{k: m[k] for k in keys} for m in whole.history]
    assert whole.history[-1]["sign_steps"] == 4 and 0 <= whole.history[-1]["sign_agreement"] <= 1


def test_ties_are_counted_apart_from_wrong_signs(mnist_batches):
    # F = 0 on batches of 8: the integer losses often tie (g = 0, no update) where the floating-point ones differ
    x, y = mnist_batches
    trainer = elasticzo.ElasticZO(lenet5(seed=2, precision="int8"), method="zo-feat-cls1", seed=4,
                                  precision="int8-intonly", log2_frac_bits=0)
    trainer.start_epoch(0)
    steps = [trainer.core.step(x[i:i + 8], y[i:i + 8]) for i in range(0, 128, 8)]
    integer = [s["projected_grad"] for s in steps]  # the step's own sign, and the floating-point one beside it
    fp = [float(np.sign(s["loss_plus"] - s["loss_minus"])) for s in steps]
    agree = sum(a == b for a, b in zip(integer, fp))
    ties = sum(a == 0 and b != 0 for a, b in zip(integer, fp))
    undecided = integer.count(0)
    assert trainer.core.sign_agreement == (agree, 16) and trainer.core.sign_ties == (ties, undecided)
    assert ties > 0 and agree < 16
    stats = elasticzo.trainer.sign_statistics(agree, 16, ties, undecided)
    assert stats["sign_ties"] == ties / 16 and stats["sign_agreement"] == agree / 16
    assert stats["sign_agreement_decided"] == (agree - (undecided - ties)) / (16 - undecided) > agree / 16
    with pytest.raises(ValueError, match="cannot exceed the undecided steps"):
        trainer.core.sign_ties = (3, 2)


def test_p_zero_per_phase_follows_the_schedule_epochs(tmp_path):
    from test_cli import cli

    trainer = elasticzo.ElasticZO(lenet5(seed=0, precision="int8"), method="full-zo", zo_p_zero=(0.5, 0.9, 0.95))
    assert [trainer.zo_sparsity(e) for e in (0, 19, 20, 49, 50, 99)] == [0.5, 0.5, 0.9, 0.9, 0.95, 0.95]
    assert trainer.config["zo_p_zero"] == [0.5, 0.9, 0.95]
    trainer.start_epoch(20)
    assert trainer.core.zo_p_zero == 0.9
    with pytest.raises(ValueError, match="three fractions"):
        elasticzo.ElasticZO(lenet5(seed=0, precision="int8"), method="full-zo", zo_p_zero=(0.5, 0.9))
    with pytest.raises(ValueError, match="p_zero"):
        elasticzo.ElasticZO(lenet5(seed=0, precision="int8"), method="full-zo", zo_p_zero=[0.5, 1.5, 0.9])
    run = tmp_path / "run"
    args = ["train", "--precision", "int8", "--method", "full-zo", "--train-samples", "64", "--test-samples", "64",
            "--no-progress", "--zo-p-zero", "0.6/0.9/0.9", "--out", str(run)]
    cli(*args)
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["zo_p_zero"] == 0.6
    refused = cli(*args[:-2], "--epochs", "2", "--resume", "--out", str(run), "--zo-p-zero", "0.5", check=False)
    assert refused.returncode != 0 and "--zo-p-zero 0.5 (the run has [0.6, 0.9, 0.9])" in refused.stderr
    bad = cli(*args[:-2], "--zo-p-zero", "0.5/x", check=False)
    assert bad.returncode != 0 and "is not a fraction or A/B/C" in bad.stderr


def test_bad_int8_settings_are_refused():
    model = lenet5(seed=0, precision="int8")
    with pytest.raises(ValueError, match="range r must lie"):
        elasticzo.ElasticZO(model, method="zo-feat-cls1", zo_range=0)
    with pytest.raises(ValueError, match="p_zero"):
        elasticzo.ElasticZO(model, method="zo-feat-cls1", zo_p_zero=1.5)
    with pytest.raises(ValueError, match="b_zo"):
        elasticzo.ElasticZO(model, method="zo-feat-cls1", zo_update_bits=0)
    with pytest.raises(ValueError, match="log2_frac_bits"):
        elasticzo.ElasticZO(model, method="zo-feat-cls1", precision="int8-intonly", log2_frac_bits=9)
    with pytest.raises(ValueError, match="precision 'int8-intonly' but the model computes in 'fp32'"):
        elasticzo.ElasticZO(lenet5(seed=0), method="zo-feat-cls1", precision="int8-intonly")


def test_cli_int8_intonly_reports_sign_agreement_and_resumes(tmp_path):
    from test_cli import cli

    args = ["train", "--precision", "int8-intonly", "--train-samples", "256", "--test-samples", "256",
            "--batch-size", "64", "--no-progress", "--log2-frac-bits", "8"]
    cli(*args, "--epochs", "2", "--out", str(tmp_path / "whole"))
    cli(*args, "--epochs", "1", "--out", str(tmp_path / "half"))
    refused = cli(*args, "--epochs", "2", "--out", str(tmp_path / "half"), "--resume", "--zo-range", "5",
                  check=False)
    default_range = _core.default_config()["zo_range"]
    assert refused.returncode != 0 and f"--zo-range 5 (the run has {default_range})" in refused.stderr
    summary = json.loads(cli(*args, "--epochs", "2", "--out", str(tmp_path / "half"), "--resume",
                             "--json").stdout.splitlines()[-1])
    assert summary["precision"] == "int8-intonly" and summary["method"] == "zo-feat-cls1"
    assert summary["sign_steps"] == 8 and 0.5 <= summary["sign_agreement"] <= 1
    assert summary["sign_tie_steps"] <= summary["sign_undecided_steps"] <= 8 and 0 <= summary["sign_ties"] <= 1
    whole = load_file(str(tmp_path / "whole" / "checkpoint.safetensors"))
    half = load_file(str(tmp_path / "half" / "checkpoint.safetensors"))
    assert all(np.array_equal(whole[k], half[k]) for k in whole)
    fp32 = cli("train", "--zo-range", "3", "--train-samples", "64", "--no-progress", check=False)
    assert fp32.returncode != 0 and "--zo-range applies to --precision int8" in fp32.stderr


@pytest.mark.training  # three epochs of MNIST: natively in CI, not under emulation
def test_zo_feat_cls1_int8_and_int8_intonly_within_10_points_of_fp32_after_one_epoch():
    train, test = load_dataset("mnist", None, "train"), load_dataset("mnist", None, "test")
    acc = {}
    for precision in ("fp32", "int8", "int8-intonly"):
        model = lenet5(seed=0, precision=elasticzo.models.arithmetic(precision))
        trainer = elasticzo.ElasticZO(model, method="zo-feat-cls1", seed=0, precision=precision)
        acc[precision] = trainer.fit(train, epochs=1, batch_size=32, test=test, progress=False)[-1]["test_accuracy"]
    assert acc["int8"] >= acc["fp32"] - 0.10, acc
    assert acc["int8-intonly"] >= acc["fp32"] - 0.10, acc
