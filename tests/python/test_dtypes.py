"""Parameters of every dtype through the bindings, state_dict and checkpoints: float32, and the int8 mantissas with
an exponent of an INT8 (NITI) model."""

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import elasticzo
from elasticzo.checkpoint import (CheckpointError, build_model, checksum, load_model_parameters, model_layers,
                                  read_checkpoint, save_checkpoint)
from elasticzo.models import lenet5


def mantissas(shape, seed):
    return np.random.default_rng(seed).integers(-127, 128, shape).astype(np.int8)


INT8_WEIGHTS = ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]


def with_int8_conv1(exponent, seed=0):
    """INT8 LeNet-5 whose conv1.weight is the mantissas of `seed` with `exponent`."""
    model = lenet5(seed=1, precision="int8")
    model.set_parameter("conv1.weight", mantissas((6, 1, 5, 5), seed), exponent)
    return model


def test_state_dict_gives_every_parameter_in_its_dtype_and_int8_with_its_exponent():
    model = with_int8_conv1(-7)
    sd = model.state_dict()
    assert sd["conv1.weight"].dtype == np.int8 and sd["conv1.weight"].shape == (6, 1, 5, 5)
    assert np.array_equal(sd["conv1.weight"], mantissas((6, 1, 5, 5), 0))
    assert sd["conv1.weight.exponent"].dtype == np.int32 and sd["conv1.weight.exponent"].shape == ()
    assert int(sd["conv1.weight.exponent"]) == -7
    assert [k for k in sd if not k.endswith(".exponent")] == INT8_WEIGHTS  # NITI: no biases
    assert [k for k in sd if k.endswith(".exponent")] == [k + ".exponent" for k in INT8_WEIGHTS]
    layer = model[0][1]
    assert layer.parameters()["weight"].dtype == np.int8 and int(layer.parameters()["weight.exponent"]) == -7
    assert model.parameter("conv1.weight").dtype == np.int8


def test_set_parameter_takes_the_parameters_dtype_and_an_exponent_exactly_for_int8():
    model = with_int8_conv1(-7)
    new = mantissas((6, 1, 5, 5), 5)
    model.set_parameter("conv1.weight", new, -3)
    assert np.array_equal(model.parameter("conv1.weight"), new)
    assert int(model.state_dict()["conv1.weight.exponent"]) == -3
    model.set_parameter("conv1.weight", new, np.int64(4))  # a numpy integer is an int
    assert int(model.state_dict()["conv1.weight.exponent"]) == 4
    with pytest.raises(ValueError, match="give its exponent"):
        model.set_parameter("conv1.weight", new)
    with pytest.raises(TypeError, match="must be an int8 array, got float32"):
        model.set_parameter("conv1.weight", new.astype(np.float32), 0)
    with pytest.raises(TypeError, match="exponent must be an int"):
        model.set_parameter("conv1.weight", new, 1.5)
    with pytest.raises(TypeError, match="exponent must be an int, got a bool"):
        model.set_parameter("conv1.weight", new, True)
    with pytest.raises(ValueError, match="does not fit in int32"):
        model.set_parameter("conv1.weight", new, 2**40)
    bad = new.copy()
    bad.flat[7] = -128
    with pytest.raises(ValueError, match="-128 at flat index 7"):
        model.set_parameter("conv1.weight", bad, 0)
    fp32 = lenet5(seed=1)
    with pytest.raises(ValueError, match="has no exponent"):
        fp32.set_parameter("conv1.bias", np.zeros(6, np.float32), 0)
    with pytest.raises(TypeError, match="must be a float32 array, got int8"):
        fp32.set_parameter("conv1.bias", np.zeros(6, np.int8))


def test_int8_model_gives_float32_logits_that_are_mantissas_times_a_power_of_two():
    out = with_int8_conv1(-7).forward(np.random.default_rng(0).random((3, 1, 28, 28), np.float32))
    assert out.dtype == np.float32 and out.shape == (3, 10)
    # One power-of-two exponent e for the whole tensor: out * 2^-e are integers in [-127, 127].
    k = next(k for k in range(-30, 31) if np.array_equal(out * 2.0**k, np.round(out * 2.0**k)))
    assert np.abs(out * 2.0**k).max() <= 127


@pytest.fixture
def int8_checkpoint(tmp_path):
    trainer = elasticzo.ElasticZO(with_int8_conv1(-9), method="full-bp", seed=2)
    path = tmp_path / "int8.safetensors"
    save_checkpoint(path, trainer, {"model": "lenet5"})
    return path, trainer.model.state_dict()


def test_checkpoint_round_trips_int8_mantissas_and_exponent(int8_checkpoint):
    path, saved = int8_checkpoint
    with safe_open(str(path), framework="numpy") as f:
        exponents = json.loads(f.metadata()["exponents"])  # explicit, in the header
        assert sorted(exponents) == sorted("model." + k for k in INT8_WEIGHTS) and exponents["model.conv1.weight"] == -9
        assert f.get_tensor("model.conv1.weight").dtype == np.int8
        assert "model.conv1.weight.exponent" not in f.keys()
    tensors, _ = read_checkpoint(path)
    # What `elasticzo eval` and resume do: a model with an int8 conv1.weight (another exponent) takes it back.
    model = with_int8_conv1(0, seed=3)
    load_model_parameters(model, tensors, path)
    for k, v in saved.items():
        assert np.array_equal(model.state_dict()[k], v) and model.state_dict()[k].dtype == v.dtype, k


def test_a_float32_model_refuses_an_int8_checkpoint(int8_checkpoint):
    path, _ = int8_checkpoint
    tensors, _ = read_checkpoint(path)
    with pytest.raises(CheckpointError, match="holds parameters .* the model has .*conv1.bias"):
        load_model_parameters(lenet5(seed=1), tensors, path)
    # The same layers in FP32 without biases: the names match, the dtypes do not.
    fp32 = build_model([[name, _fp32_twin(text)] for name, text in model_layers(lenet5(seed=1, precision="int8"))])
    with pytest.raises(CheckpointError, match="conv1.weight is int8 .* the model's is float32"):
        load_model_parameters(fp32, tensors, path)


def _fp32_twin(text):
    text = text.replace(", precision='int8'", "").replace("precision='int8'", "")
    return text[:-1] + ", bias=False)" if text.startswith(("Conv2d", "Linear")) else text


def _rewrite(path, exponents):
    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if isinstance(exponents, dict):  # changes to the file's own exponents
        exponents = json.dumps({**json.loads(metadata["exponents"]), **exponents})
    metadata["exponents"] = exponents
    metadata["sha256"] = checksum(tensors, metadata)  # a consistent file whose exponents are wrong
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize("exponents,match", [
    ("{}", "do not pair up"),
    ({"model.conv1.bias": 0}, "do not pair up"),
    ({"model.conv1.weight": 1.5}, "must be an int32"),
    ({"model.conv1.weight": True}, "must be an int32"),
    ({"model.conv1.weight": 2**40}, "must be an int32"),
    ("[-9]", "must be a mapping"),
    ("{not json", "damaged exponents"),
])
def test_checkpoint_exponents_are_checked(int8_checkpoint, exponents, match):
    path, _ = int8_checkpoint
    _rewrite(path, exponents)
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(path)


def test_a_changed_exponent_fails_the_checksum(int8_checkpoint):
    path, _ = int8_checkpoint
    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    metadata["exponents"] = json.dumps({**json.loads(metadata["exponents"]), "model.conv1.weight": -8})
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(CheckpointError, match="checksum"):
        read_checkpoint(path)


def test_float32_buffers_and_outputs_keep_float32():
    tr = elasticzo.ElasticZO(lenet5(seed=0), method="full-bp", optimizer="adam")
    x = np.zeros((2, 1, 28, 28), np.float32)
    tr.core.step(x, np.zeros(2, np.int32))
    assert all(m.dtype == np.float32 for m in tr.core.optimizer_state()["m"])
    assert tr.model.forward(x).dtype == np.float32
    assert all(v.dtype == np.float32 for v in tr.model.state_dict().values())


def test_load_state_dict_round_trips_int8_with_its_exponent():
    source, target = with_int8_conv1(-4, seed=7), with_int8_conv1(2, seed=8)
    assert target.load_state_dict(source.state_dict()) == ([], [])
    for k, v in source.state_dict().items():
        assert np.array_equal(target.state_dict()[k], v), k
    sd = source.state_dict()
    del sd["conv1.weight.exponent"]
    with pytest.raises(ValueError, match="conv1.weight.exponent is missing"):
        target.load_state_dict(sd)
    sd = source.state_dict()
    sd["conv1.weight"] = sd["conv1.weight"].astype(np.float32)
    with pytest.raises(ValueError, match="conv1.weight is an int8 parameter, got dtype float32"):
        target.load_state_dict(sd)
