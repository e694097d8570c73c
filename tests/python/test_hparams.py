"""The tuned defaults: a dataset's own entry wins over the model's general one, and lookups fail clearly."""

from dataclasses import replace
import numpy as np
import pytest

from elasticzo import hparams
from elasticzo.hparams import defaults


def test_fashion_mnist_has_its_own_full_zo_and_full_bp_rates():
    # The paper tuned the learning rate per dataset; these two Fashion-MNIST cells needed their own (hparams.py).
    assert defaults("lenet5", "fashion-mnist", "full-zo") != defaults("lenet5", "mnist", "full-zo")
    assert defaults("lenet5", "fashion-mnist", "full-zo").eps == 1e-2
    assert defaults("lenet5", "fashion-mnist", "full-bp").lr_bp == 0.05
    assert defaults("lenet5", "mnist", "full-bp").lr_bp == 0.2
    # INT8 Full BP on Fashion-MNIST starts NITI's mu schedule at 4 (validated over 100 epochs; hparams.py)
    assert defaults("lenet5", "fashion-mnist", "full-bp").gradient_bits == 4
    assert defaults("lenet5", "mnist", "full-bp").gradient_bits is None


@pytest.mark.parametrize("method", ["zo-feat-cls2", "zo-feat-cls1"])
def test_datasets_without_their_own_entry_share_the_model_defaults(method):
    # the FP32 values; an INT8 cell may have its own validated weight init and ZO step (below)
    int8_own = dict(int8_init=None, zo_range=None, zo_update_bits=None)
    assert replace(defaults("lenet5", "fashion-mnist", method), **int8_own) == \
        replace(defaults("lenet5", "mnist", method), **int8_own)


def test_other_partition_points_use_cls1_defaults():
    assert defaults("lenet5", "mnist", "zo-c2") == defaults("lenet5", "mnist", "zo-feat-cls1")


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no default hyperparameters for a model named 'resnet'"):
        defaults("resnet", "mnist", "full-zo")


def test_a_model_of_your_own_gets_lenet5s_values():
    from elasticzo import nn
    mine = nn.Sequential([("flatten", nn.Flatten()), ("fc", nn.Linear(784, 10))], seed=0)
    for method in ("full-zo", "zo-feat-cls1", "zo-c2", "full-bp"):
        assert defaults(mine, "fashion-mnist", method) == defaults("lenet5", "fashion-mnist", method)


def _config(*argv):
    from elasticzo.cli import _parser
    from elasticzo.run import _trainer_config
    return _trainer_config(_parser().parse_args(["train", *argv]), 5)  # LeNet-5 has 5 parameter layers


def test_cli_uses_the_dataset_defaults_and_flags_override_them():
    cfg, batch = _config("--dataset", "fashion-mnist", "--method", "full-zo")
    assert (cfg["lr_zo"], cfg["eps"], cfg["grad_clip"], batch) == (1e-3, 1e-2, 1.0, 64)
    cfg, batch = _config("--dataset", "fashion-mnist", "--method", "full-zo", "--lr", "2e-4", "--batch-size", "32")
    assert (cfg["lr_zo"], cfg["eps"], batch) == (2e-4, 1e-2, 32)


@pytest.mark.parametrize("key,tuned,flag,value", [("zo_p_zero", (0.5, 0.9, 0.9), "--zo-p-zero", 0.7),
                                                   ("zo_update_bits", 2, "--zo-update-bits", 3)])
def test_a_preset_p_zero_or_b_zo_reaches_int8_runs_from_scratch_only(tmp_path, monkeypatch, key, tuned, flag, value):
    from elasticzo import hparams
    assert key not in _config("--precision", "int8", "--method", "full-zo", "--dataset", "fashion-mnist")[0]
    swept = dict(hparams._TABLE)
    swept["lenet5", "mnist", "full-zo"] = replace(swept["lenet5", "mnist", "full-zo"], **{key: tuned})
    monkeypatch.setattr(hparams, "_TABLE", swept)
    expected = list(tuned) if isinstance(tuned, tuple) else tuned
    for precision in ("int8", "int8-intonly"):
        assert _config("--precision", precision, "--method", "full-zo")[0][key] == expected
    assert key not in _config("--method", "full-zo")[0]  # FP32 has neither
    for argv in (("--dataset", "fashion-mnist"), ("--init-from", str(tmp_path / "w.safetensors")),
                 (flag, str(value))):
        cfg, _ = _config("--precision", "int8", "--method", "full-zo", *argv)
        assert cfg.get(key) == (value if flag in argv else None), argv


def test_int8_full_bp_on_fashion_mnist_starts_mu_at_4_from_the_cli():
    assert _config("--precision", "int8", "--method", "full-bp", "--dataset", "fashion-mnist")[0]["gradient_bits"] == 4
    assert _config("--precision", "int8", "--method", "full-bp")[0]["gradient_bits"] is None  # MNIST: the paper's 5
    cfg, _ = _config("--precision", "int8", "--method", "full-bp", "--dataset", "fashion-mnist", "--gradient-bits", "5")
    assert cfg["gradient_bits"] == 5


def test_int8_full_bp_on_fashion_mnist_trains_as_nitis_final_version(tmp_path):
    from elasticzo.rounding import rounding_policy
    hp = defaults("lenet5", "fashion-mnist", "full-bp")
    assert (hp.int8_init, hp.rounding, hp.gradient_bits) == ("xavier_uniform", "final-version", 4)
    cell = ("--precision", "int8", "--method", "full-bp", "--dataset", "fashion-mnist")
    assert _config(*cell)[0]["rounding"] == rounding_policy("final-version") != rounding_policy(None)
    assert _init_of(*cell) == "xavier_uniform"
    assert _config(*cell, "--rounding", "first-commit")[0]["rounding"] == rounding_policy(None)  # a flag wins
    assert "rounding" not in _config(*cell, "--init-from", str(tmp_path / "w.safetensors"))[0]  # fine-tuning
    assert "rounding" not in _config("--precision", "int8", "--method", "full-bp")[0]  # MNIST: the first commit's
    assert _init_of("--precision", "int8", "--method", "full-bp") == "xavier_normal"
    assert "rounding" not in _config("--method", "full-bp", "--dataset", "fashion-mnist")[0]  # FP32


# The LeNet-5 INT8 cells whose 100-epoch validation pair chose NITI's uniform init (hparams.py), and the others.
UNIFORM_INIT = [("mnist", "full-zo"), ("mnist", "zo-feat-cls2"), ("mnist", "zo-feat-cls1"),
                ("fashion-mnist", "full-zo"), ("fashion-mnist", "zo-feat-cls2")]
LAYERS_INIT = [("fashion-mnist", "zo-feat-cls1")]


def _init_of(*argv):
    from elasticzo.run import _int8_init
    from elasticzo.cli import _parser
    return _int8_init(_parser().parse_args(["train", *argv]), 5)  # LeNet-5 has 5 parameter layers


@pytest.mark.parametrize("dataset,method", UNIFORM_INIT + LAYERS_INIT)
def test_int8_cells_draw_the_init_their_validation_chose(dataset, method):
    tuned = "xavier_uniform" if (dataset, method) in UNIFORM_INIT else None
    assert defaults("lenet5", dataset, method).int8_init == tuned
    cell = ("--dataset", dataset, "--method", method)
    for precision in ("int8", "int8-intonly"):  # INT8* trains the same layers from the same draw
        assert _init_of("--precision", precision, *cell) == (tuned or "xavier_normal")
    assert _init_of("--precision", "int8", *cell, "--int8-init", "xavier_normal") == "xavier_normal"
    assert _init_of(*cell) is None  # FP32
    # the INT8 settings changed nothing else: the FP32 values are the model's shared ones, or Fashion-MNIST Full ZO's
    fp32 = replace(defaults("lenet5", dataset, method), int8_init=None, zo_range=None, zo_update_bits=None)
    if (dataset, method) == ("fashion-mnist", "full-zo"):
        assert (fp32.lr_zo, fp32.eps, fp32.grad_clip) == (1e-3, 1e-2, 1.0)
    else:
        assert fp32 == hparams._TABLE["lenet5", "*", method]


# The LeNet-5 INT8 cells whose 100-epoch validation chose another ZO step, (r, b_zo) (hparams.py); the others take
# the library's r 16 and the paper's b_zo 1.
TUNED_STEP = {("mnist", "full-zo"): (64, 2), ("mnist", "zo-feat-cls2"): (64, 2)}


@pytest.mark.parametrize("dataset,method", UNIFORM_INIT + LAYERS_INIT)
def test_int8_cells_step_as_their_validation_chose(dataset, method, tmp_path):
    from elasticzo import _core
    library = _core.default_config()
    assert (library["zo_range"], library["zo_update_bits"]) == (16, 1)
    r, bits = TUNED_STEP.get((dataset, method), (16, 1))
    cell = ("--dataset", dataset, "--method", method)
    for precision in ("int8", "int8-intonly"):
        cfg, _ = _config("--precision", precision, *cell)
        assert (cfg.get("zo_range", 16), cfg.get("zo_update_bits", 1)) == (r, bits), precision
    cfg, _ = _config("--precision", "int8", *cell, "--zo-range", "8", "--zo-update-bits", "1")
    assert (cfg["zo_range"], cfg["zo_update_bits"]) == (8, 1)
    cfg, _ = _config("--precision", "int8", *cell, "--init-from", str(tmp_path / "w.safetensors"))
    assert (cfg.get("zo_range", 16), cfg.get("zo_update_bits", 1)) == (16, 1)  # fine-tuning keeps the library's step
    assert not {"zo_range", "zo_update_bits"} & set(_config(*cell)[0])  # FP32


@pytest.mark.parametrize("method", ["full-zo", "zo-feat-cls1"])
def test_pointnets_range_tuned_alone_applies_to_fine_tuning_too(method, tmp_path):
    cell = ("--model", "pointnet", "--dataset", "modelnet40", "--precision", "int8", "--method", method)
    for extra in ((), ("--init-from", str(tmp_path / "w.safetensors"))):
        cfg, _ = _config(*cell, *extra)
        assert (cfg["zo_range"], cfg.get("zo_update_bits", 1)) == (3, 1), extra


@pytest.mark.parametrize("method", ["zo-feat-cls2", "zo-feat-cls1"])
def test_pointnet_zo_feat_takes_batch_16_in_fp32_and_keeps_32_in_int8(method):
    """The batch sweep (sweep_pointnet_s10.md) ran FP32 only: INT8 keeps the batch its settings were tuned at."""
    assert defaults("pointnet", "modelnet40", method).batch_size == 16
    for precision in ("int8", "int8-intonly"):
        assert defaults("pointnet", "modelnet40", method, precision).batch_size == 32
    for other in ("full-zo", "full-bp"):
        assert defaults("pointnet", "modelnet40", other, "int8") == defaults("pointnet", "modelnet40", other)
    cell = ("--model", "pointnet", "--dataset", "modelnet40", "--method", method)
    assert [_config(*cell, "--precision", p)[1] for p in ("fp32", "int8", "int8-intonly")] == [16, 32, 32]
    assert _config(*cell, "--batch-size", "8")[1] == 8
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        defaults("pointnet", "modelnet40", method, "int4")


def test_cli_lr_of_full_bp_is_its_backprop_rate():
    cfg, _ = _config("--method", "full-bp", "--lr", "0.05")
    assert (cfg["lr_bp"], cfg["lr_zo"]) == (0.05, 0.0)
    cfg, _ = _config("--method", "full-bp", "--lr", "0.05", "--lr-bp", "0.1")
    assert (cfg["lr_bp"], cfg["lr_zo"]) == (0.1, 0.05)
    cfg, _ = _config("--zo-layers", "0", "--lr", "0.05")  # C = 0 is Full BP whatever --method says
    assert cfg["lr_bp"] == 0.05 and cfg["zo_layers"] == 0
    cfg, _ = _config("--zo-layers", "2", "--lr", "0.002")
    assert cfg["lr_zo"] == 0.002


def test_cli_zo_layers_take_the_defaults_of_the_method_they_name():
    # --zo-layers overrides --method (zo-feat-cls1 by default), and so does its choice of defaults.
    for c, method in ((5, "full-zo"), (4, "zo-feat-cls2"), (0, "full-bp")):
        cfg, _ = _config("--dataset", "fashion-mnist", "--zo-layers", str(c))
        hp = defaults("lenet5", "fashion-mnist", method)
        assert (cfg["lr_zo"], cfg["lr_bp"], cfg["eps"], cfg["grad_clip"]) == (hp.lr_zo, hp.lr_bp, hp.eps,
                                                                             hp.grad_clip), c


def test_defaults_are_reachable_from_the_package():
    import elasticzo
    assert elasticzo.hparams.defaults("lenet5", "mnist", "full-zo").grad_clip == 1.0


def test_trainer_defaults_are_written_once():
    """The Python trainer's defaults are the C++ ElasticZOConfig's, and the decay is schedule.StepDecay's, also for
    the tuned table: no second copy that could disagree."""
    import inspect

    from elasticzo import ElasticZO, _core
    from elasticzo.hparams import HParams
    from elasticzo.rounding import rounding_policy
    from elasticzo.schedule import StepDecay

    params = inspect.signature(ElasticZO).parameters
    config = _core.default_config()
    # INT8's zo_p_zero defaults to None in Python: the paper's schedule, whose first epoch is the C++ default.
    assert params["zo_p_zero"].default is None
    assert np.float32(config.pop("zo_p_zero")) == np.float32(_core.int8_zo_p_zero_for_epoch(0))
    # INT8's rounding defaults to None in Python: NITI's first commit, the C++ RoundingPolicy's default
    assert params["rounding"].default is None and config.pop("rounding") == rounding_policy(None)
    for name, value in config.items():
        assert np.float32(params[name].default) == np.float32(value) if isinstance(value, float) else \
            params[name].default == value, name
    assert (params["lr_decay"].default, params["lr_decay_every"].default) == (StepDecay.factor, StepDecay.every)
    fields = HParams.__dataclass_fields__
    assert (fields["lr_decay"].default, fields["lr_decay_every"].default) == (StepDecay.factor, StepDecay.every)


def test_step_decay_schedule():
    from elasticzo.schedule import StepDecay

    s = StepDecay(0.5, 3)
    assert [s(8.0, e) for e in range(7)] == [8.0, 8.0, 8.0, 4.0, 4.0, 4.0, 2.0]
    for bad in (dict(factor=0.0), dict(factor=float("nan")), dict(factor=True), dict(every=0), dict(every=1.5)):
        with pytest.raises(ValueError):
            StepDecay(**bad)
