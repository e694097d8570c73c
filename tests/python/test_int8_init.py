"""NITI's two weight initializations for int8 models: Xavier normal (the layers' own, NITI's first commit) and Xavier
uniform (its final version), from the API, the tuned defaults and the CLI."""

import json
from dataclasses import replace

import numpy as np
import pytest
from safetensors.numpy import load_file

import elasticzo
from elasticzo import _core, hparams
from elasticzo.models import INT8_INITS, init_int8_weights, lenet5, mlp, pointnet


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_uniform_mantissas_spread_over_the_int8_range_and_follow_the_seed():
    normal = lenet5(seed=3, precision="int8")
    uniform = lenet5(seed=3, precision="int8", int8_init="xavier_uniform")
    for name in normal.parameter_names():
        u, n = uniform.state_dict()[name].astype(np.int32), normal.state_dict()[name].astype(np.int32)
        assert np.abs(u).max() == 127 and np.abs(n).max() == 127  # both scaled so the largest is 127
        # uniform on [-127, 127]: mean |w| ~63.5 (conv1 has only 150 weights); the normal draw sits near 0
        assert 55 < np.abs(u).mean() < 70 and np.abs(n).mean() < 35, name
        # e = range(max|w|) - 7 (max|w| in [2^(e+6), 2^(e+7))) for a uniform draw just inside its bound
        # sqrt(6 / (fan_in + fan_out)) (NITI.md; fans as the layers count them)
        e = int(uniform.state_dict()[name + ".exponent"])
        bound = np.sqrt(6 / ((u.shape[0] + u.shape[1]) * int(np.prod(u.shape[2:]))))
        assert 2.0 ** (e + 6) <= bound < 1.05 * 2.0 ** (e + 7), name
    assert _same(_weights(uniform), _weights(lenet5(seed=3, precision="int8", int8_init="xavier_uniform")))
    assert not _same(_weights(uniform), _weights(lenet5(seed=4, precision="int8", int8_init="xavier_uniform")))
    assert _same(_weights(normal), _weights(lenet5(seed=3, precision="int8", int8_init="xavier_normal")))
    # init_int8_weights redraws from the model's seed, either way
    init_int8_weights(uniform, "xavier_normal")
    assert _same(_weights(uniform), _weights(normal))
    init_int8_weights(normal, "xavier_uniform")
    assert _same(_weights(normal), _weights(lenet5(seed=3, precision="int8", int8_init="xavier_uniform")))


@pytest.mark.parametrize("build", [lambda **k: pointnet(seed=1, **k), lambda **k: mlp(12, 3, seed=1, **k)])
def test_every_int8_model_takes_the_uniform_init(build):
    model = build(precision="int8", int8_init="xavier_uniform")
    assert all(np.abs(model.state_dict()[n].astype(np.int32)).mean() > 50 for n in model.parameter_names())


def test_bad_inits_are_refused():
    with pytest.raises(ValueError, match="unknown int8_init 'he'; choose one of xavier_normal, xavier_uniform"):
        lenet5(seed=0, precision="int8", int8_init="he")
    with pytest.raises(ValueError, match="int8_init applies to precision='int8' models"):
        lenet5(seed=0, int8_init="xavier_uniform")
    with pytest.raises(ValueError, match="precision='int8' model"):
        init_int8_weights(lenet5(seed=0), "xavier_uniform")
    with pytest.raises(ValueError, match="unknown int8 init"):
        init_int8_weights(lenet5(seed=0, precision="int8"), "kaiming")
    assert INT8_INITS[0] == "xavier_normal"  # the layers' own: golden values and old runs depend on it


def _init_of(*argv):
    from elasticzo.cli import _parser
    from elasticzo.run import _int8_init
    return _int8_init(_parser().parse_args(["train", *argv]), 5)  # LeNet-5 has 5 parameter layers


def test_the_cli_takes_the_flag_else_the_tuned_init(tmp_path, monkeypatch):
    assert _init_of("--method", "full-zo") is None  # FP32
    swept = dict(hparams._TABLE)
    swept["lenet5", "fashion-mnist", "zo-feat-cls1"] = replace(swept["lenet5", "*", "zo-feat-cls1"],
                                                               int8_init="xavier_uniform")
    swept["lenet5", "mnist", "zo-feat-cls1"] = replace(swept["lenet5", "*", "zo-feat-cls1"], int8_init=None)
    monkeypatch.setattr(hparams, "_TABLE", swept)
    cell = ("--dataset", "fashion-mnist", "--method", "zo-feat-cls1")
    assert _init_of("--precision", "int8", *cell) == "xavier_uniform"
    assert _init_of("--precision", "int8-intonly", "--dataset", "fashion-mnist", "--zo-layers", "3") == \
        "xavier_uniform"  # Cls1's partition by its number of ZO layers
    assert _init_of("--precision", "int8", "--method", "zo-feat-cls1") == "xavier_normal"  # MNIST's, not Fashion's
    assert _init_of("--precision", "int8", *cell, "--int8-init", "xavier_normal") == "xavier_normal"
    assert _init_of("--precision", "int8", *cell, "--init-from", str(tmp_path / "w.safetensors")) is None  # given
    with pytest.raises(ValueError, match="does not go with --init-from"):
        _init_of("--precision", "int8", "--int8-init", "xavier_uniform", "--init-from", str(tmp_path / "w"))
    with pytest.raises(ValueError, match="does not go with --precision fp32"):
        _init_of("--int8-init", "xavier_uniform")


def test_a_cli_run_records_its_init_and_resume_keeps_it(tmp_path):
    from test_cli import cli

    run = tmp_path / "run"
    # p_zero 1 zeroes every zeta: a Full ZO step leaves the weights as drawn
    args = ["train", "--precision", "int8", "--method", "full-zo", "--train-samples", "64", "--test-samples", "64",
            "--no-progress", "--seed", "7", "--zo-p-zero", "1", "--epochs", "1"]
    cli(*args, "--int8-init", "xavier_uniform", "--out", str(run))
    assert json.loads((run / "config.json").read_text())["info"]["int8_init"] == "xavier_uniform"
    saved = load_file(str(run / "checkpoint.safetensors"))
    drawn = lenet5(seed=7, precision="int8", int8_init="xavier_uniform").state_dict()
    assert all(np.array_equal(saved["model." + n], drawn[n]) for n in drawn if not n.endswith(".exponent"))
    refused = cli(*args[:-1], "2", "--resume", "--out", str(run), "--int8-init", "xavier_normal", check=False)
    assert refused.returncode != 0 and "--int8-init xavier_normal (the run has xavier_uniform)" in refused.stderr
    cli(*args[:-1], "2", "--resume", "--out", str(run))
    assert json.loads((run / "config.json").read_text())["info"]["int8_init"] == "xavier_uniform"
    bad = cli(*args, "--int8-init", "he", "--out", str(tmp_path / "bad"), check=False)
    assert bad.returncode != 0 and "invalid choice: 'he'" in bad.stderr
