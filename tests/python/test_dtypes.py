"""Parameters of every dtype through the bindings, state_dict and checkpoints. No layer computes in int8 yet, so
the int8 round trips use a parameter whose storage a test helper turned into int8 mantissas with an exponent
(_core._testing.make_int8_parameter): the lowest level that can hold one. Such a model cannot run forward."""

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import elasticzo
from elasticzo import _core
from elasticzo.checkpoint import CheckpointError, checksum, load_model_parameters, read_checkpoint, save_checkpoint
from elasticzo.models import lenet5


def mantissas(shape, seed):
    return np.random.default_rng(seed).integers(-127, 128, shape).astype(np.int8)


def with_int8_conv1(exponent, seed=0):
    """LeNet-5 whose conv1.weight is int8 mantissas with `exponent`."""
    model = lenet5(seed=1)
    _core._testing.make_int8_parameter(model[0][1], "weight", mantissas((6, 1, 5, 5), seed), exponent)
    return model


def test_state_dict_gives_every_parameter_in_its_dtype_and_int8_with_its_exponent():
    model = with_int8_conv1(-7)
    sd = model.state_dict()
    assert sd["conv1.weight"].dtype == np.int8 and sd["conv1.weight"].shape == (6, 1, 5, 5)
    assert np.array_equal(sd["conv1.weight"], mantissas((6, 1, 5, 5), 0))
    assert sd["conv1.weight.exponent"].dtype == np.int32 and sd["conv1.weight.exponent"].shape == ()
    assert int(sd["conv1.weight.exponent"]) == -7
    assert sd["conv1.bias"].dtype == np.float32 and "conv1.bias.exponent" not in sd
    assert [k for k in sd if k.endswith(".exponent")] == ["conv1.weight.exponent"]
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
    with pytest.raises(ValueError, match="has no exponent"):
        model.set_parameter("conv1.bias", np.zeros(6, np.float32), 0)
    with pytest.raises(TypeError, match="must be a float32 array, got int8"):
        model.set_parameter("conv1.bias", np.zeros(6, np.int8))


def test_int8_model_refuses_to_run_forward_clearly():
    with pytest.raises(ValueError, match="int8, expected float32"):
        with_int8_conv1(-7).forward(np.zeros((1, 1, 28, 28), np.float32))


@pytest.fixture
def int8_checkpoint(tmp_path):
    trainer = elasticzo.ElasticZO(with_int8_conv1(-9), method="full-bp", seed=2)
    path = tmp_path / "int8.safetensors"
    save_checkpoint(path, trainer, {"model": "lenet5"})
    return path, trainer.model.state_dict()


def test_checkpoint_round_trips_int8_mantissas_and_exponent(int8_checkpoint):
    path, saved = int8_checkpoint
    with safe_open(str(path), framework="numpy") as f:
        assert json.loads(f.metadata()["exponents"]) == {"model.conv1.weight": -9}  # explicit, in the header
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
    with pytest.raises(CheckpointError, match="conv1.weight is int8 .* the model's is float32"):
        load_model_parameters(lenet5(seed=1), tensors, path)


def _rewrite(path, exponents):
    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    metadata["exponents"] = exponents
    metadata["sha256"] = checksum(tensors, metadata)  # a consistent file whose exponents are wrong
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize("exponents,match", [
    ("{}", "do not pair up"),
    (json.dumps({"model.conv1.weight": -9, "model.conv1.bias": 0}), "do not pair up"),
    (json.dumps({"model.conv1.weight": 1.5}), "must be an int32"),
    (json.dumps({"model.conv1.weight": True}), "must be an int32"),
    (json.dumps({"model.conv1.weight": 2**40}), "must be an int32"),
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
    metadata["exponents"] = json.dumps({"model.conv1.weight": -8})
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
