"""INT8 (NITI) models and Full BP training: layer outputs against the NumPy transcription of NITI.md
(test_int8_rules.py), the model's rules (one precision, an integer first layer, no biases), results independent
of threads and ISA, checkpoints that resume bit for bit, and LeNet-5 on MNIST after one epoch."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file
from test_int8_rules import np_quantize_input, np_requantize

import elasticzo
from elasticzo import _core, nn
from elasticzo.checkpoint import build_model, model_layers
from elasticzo.data import load_dataset
from elasticzo.models import lenet5, mlp

PSEUDO = "pseudo_stochastic"  # NITI's first commit rounds activations and errors this way


def dequantized(v, e):
    return v.astype(np.float64) * 2.0**e


def test_linear_relu_linear_forward_matches_the_transcription():
    rng = np.random.default_rng(0)
    model = nn.Sequential([("fc1", nn.Linear(20, 16, precision="int8")), ("relu", nn.ReLU(precision="int8")),
                           ("fc2", nn.Linear(16, 5, precision="int8"))], seed=3)
    x = rng.standard_normal((7, 20)).astype(np.float32)
    sd = model.state_dict()
    v, e = np_quantize_input(x)
    for name in ("fc1", "fc2"):
        w, ew = sd[f"{name}.weight"], int(sd[f"{name}.weight.exponent"])
        v, s = np_requantize(v.astype(np.int64) @ w.T.astype(np.int64), PSEUDO)
        e = e + ew + s
        if name == "fc1":
            v = np.maximum(v, 0)
    assert np.array_equal(model.forward(x), dequantized(v, e).astype(np.float32))


def test_conv_pool_forward_matches_the_transcription():
    rng = np.random.default_rng(1)
    model = nn.Sequential([("conv", nn.Conv2d(2, 3, 3, padding=1, precision="int8")),
                           ("pool", nn.MaxPool2d(2, precision="int8")), ("flat", nn.Flatten(precision="int8")),
                           ("fc", nn.Linear(3 * 3 * 3, 4, precision="int8"))], seed=5)
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    sd = model.state_dict()
    v, e = np_quantize_input(x)
    w = sd["conv.weight"].astype(np.int64)
    xp = np.pad(v.astype(np.int64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    acc = np.zeros((2, 3, 7, 6), np.int64)
    for ky in range(3):
        for kx in range(3):
            acc += np.einsum("nchw,oc->nohw", xp[:, :, ky:ky + 7, kx:kx + 6], w[:, :, ky, kx])
    v, s = np_requantize(acc, PSEUDO)
    e += int(sd["conv.weight.exponent"]) + s
    v = v[:, :, :6, :6].reshape(2, 3, 3, 2, 3, 2).max(axis=(3, 5)).reshape(2, -1)  # 7 rows: the last dropped
    v, s = np_requantize(v.astype(np.int64) @ sd["fc.weight"].T.astype(np.int64), PSEUDO)
    e += int(sd["fc.weight.exponent"]) + s
    assert np.array_equal(model.forward(x), dequantized(v, e).astype(np.float32))


def test_pointnet_int8_layers_run_and_global_max_pool_keeps_the_exponent():
    model = elasticzo.models.pointnet(num_classes=4, seed=0, precision="int8")
    x = np.random.default_rng(2).standard_normal((2, 32, 3)).astype(np.float32)
    trainer = elasticzo.ElasticZO(model, method="full-bp", seed=1)
    before = model.state_dict()
    trainer.core.step(x, np.array([0, 3], np.int32))
    after = model.state_dict()
    assert any(not np.array_equal(before[k], after[k]) for k in before)
    assert all(after[k].dtype == np.int8 for k in after if not k.endswith(".exponent"))
    assert all(int(after[k]) == int(before[k]) for k in after if k.endswith(".exponent"))  # NITI: fixed exponents


def test_a_model_has_one_precision_and_an_int8_model_starts_with_a_quantizing_layer():
    with pytest.raises(ValueError, match="a model has one precision"):
        nn.Sequential([("fc", nn.Linear(4, 3, precision="int8")), ("relu", nn.ReLU())])
    with pytest.raises(ValueError, match="must start with an int8 Conv2d or Linear"):
        nn.Sequential([("flat", nn.Flatten(precision="int8")), ("fc", nn.Linear(4, 3, precision="int8"))])
    with pytest.raises(ValueError, match="no bias"):
        nn.Linear(4, 3, bias=True, precision="int8")
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        nn.ReLU(precision="int4")
    with pytest.raises(ValueError, match="runs inside a Sequential"):
        nn.ReLU(precision="int8").forward(np.zeros((2, 3), np.float32))
    model = lenet5(seed=0, precision="int8")
    assert model.precision == "int8" and model.num_params == 107_550  # SPEC §1: no biases
    with pytest.raises(ValueError, match="optimizer must be 'sgd'"):
        elasticzo.ElasticZO(model, method="full-bp", optimizer="adam")
    with pytest.raises(ValueError, match="precision 'fp32' but the model computes in 'int8'"):
        elasticzo.ElasticZO(model, method="full-bp", precision="fp32")


def test_layers_rebuild_from_their_repr_with_their_precision():
    model = lenet5(seed=0, precision="int8")
    layers = model_layers(model)
    assert layers[0] == ["conv1", "Conv2d(1, 6, kernel_size=5, padding=2, precision='int8')"]
    assert layers[1] == ["relu1", "ReLU(precision='int8')"]
    rebuilt = build_model(layers)
    assert rebuilt.precision == "int8" and model_layers(rebuilt) == layers


def test_mu_follows_the_papers_schedule_per_epoch():
    trainer = elasticzo.ElasticZO(lenet5(seed=0, precision="int8"), method="full-bp")
    assert [trainer.gradient_bits(e) for e in (0, 19, 20, 49, 50, 99)] == [5, 5, 4, 4, 3, 3]
    trainer.start_epoch(20)
    assert trainer.core.gradient_bits == 4
    with pytest.raises(ValueError, match=r"mu must be in \[0, 7\]"):
        trainer.core.gradient_bits = 8


def _train_steps(model_fn, steps, x, y, batch):
    trainer = elasticzo.ElasticZO(model_fn(), method="full-bp", seed=4)
    for i in range(steps):
        trainer.core.step(x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch])
    return trainer.model.state_dict()


@pytest.fixture(scope="module")
def mnist_batch():
    train = load_dataset("mnist", None, "train").subset(range(96))
    return train.x.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0, train.y.astype(np.int32)


def test_training_is_the_same_for_every_thread_count_and_isa(mnist_batch):
    x, y = mnist_batch
    isa, threads = _core.active_isa(), _core.num_threads()
    runs = {}
    try:
        for level in _core.available_isas():
            for n in (1, 2, 3):
                _core.set_isa(level)
                _core.set_num_threads(n)
                runs[(level, n)] = _train_steps(lambda: lenet5(seed=2, precision="int8"), 3, x, y, 32)
    finally:
        _core.set_isa(isa)
        _core.set_num_threads(threads)
    first = next(iter(runs.values()))
    for key, sd in runs.items():
        for name, value in sd.items():
            assert np.array_equal(value, first[name]), (key, name)


def test_checkpoint_resume_is_bit_identical(tmp_path, mnist_batch):
    x, y = mnist_batch
    make = lambda: mlp(784, 10, seed=1, precision="int8")  # noqa: E731
    whole = elasticzo.ElasticZO(make(), method="full-bp", seed=4)
    whole.fit(x.reshape(len(x), -1), y, epochs=2, batch_size=32, progress=False)
    half = elasticzo.ElasticZO(make(), method="full-bp", seed=4)
    half.fit(x.reshape(len(x), -1), y, epochs=1, batch_size=32, progress=False)
    half.save(tmp_path / "run.safetensors")
    resumed = elasticzo.ElasticZO.load(tmp_path / "run.safetensors")
    assert resumed.precision == "int8"
    resumed.fit(x.reshape(len(x), -1), y, until_epoch=2, batch_size=32, progress=False)
    for name, value in whole.model.state_dict().items():
        assert np.array_equal(resumed.model.state_dict()[name], value), name
    assert resumed.history[-1]["train_loss"] == whole.history[-1]["train_loss"]


@pytest.mark.training  # a whole epoch: natively in CI, not under emulation (test_cross_platform trains briefly)
def test_lenet5_int8_full_bp_reaches_95_percent_on_mnist_after_one_epoch():
    train, test = load_dataset("mnist", None, "train"), load_dataset("mnist", None, "test")
    trainer = elasticzo.ElasticZO(lenet5(seed=0, precision="int8"), method="full-bp", seed=0)
    history = trainer.fit(train, epochs=1, batch_size=64, test=test, progress=False)
    assert history[-1]["gradient_bits"] == 5
    assert history[-1]["test_accuracy"] >= 0.95, history[-1]


def test_cli_trains_int8_resumes_bit_identically_and_evaluates(tmp_path):
    from test_cli import cli

    args = ["train", "--precision", "int8", "--method", "full-bp", "--train-samples", "384", "--batch-size", "64",
            "--no-progress"]
    cli(*args, "--epochs", "2", "--out", str(tmp_path / "whole"))
    cli(*args, "--epochs", "1", "--out", str(tmp_path / "half"))
    refused = cli(*args, "--epochs", "2", "--out", str(tmp_path / "half"), "--resume", "--precision", "fp32",
                  check=False)
    assert refused.returncode != 0 and "--precision fp32 (the run has int8)" in refused.stderr
    cli(*args, "--epochs", "2", "--out", str(tmp_path / "half"), "--resume")
    whole = load_file(str(tmp_path / "whole" / "checkpoint.safetensors"))
    half = load_file(str(tmp_path / "half" / "checkpoint.safetensors"))
    assert whole.keys() == half.keys() and all(np.array_equal(whole[k], half[k]) for k in whole)
    assert whole["model.conv1.weight"].dtype == np.int8
    config = json.loads((tmp_path / "whole" / "config.json").read_text())["config"]
    assert config["precision"] == "int8" and config["method"] == "full-bp"
    # NITI scales each batch by its own exponents (input, every activation), so an int8 model's outputs depend on
    # the batch: evaluated in the batches training evaluated in, the checkpoint gives the same accuracy.
    result = json.loads(cli("eval", "--checkpoint", str(tmp_path / "whole" / "checkpoint.safetensors"),
                            "--batch-size", "64", "--json").stdout)
    last = json.loads((tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()[-1])
    assert result["accuracy"] == last["test_accuracy"]
