"""Weights in and out of INT8 (NITI) models by name: float weights quantized on import, dequantized float32 on
export (PyTorch loads it), the int8-native file (mantissas + exponents) bit for bit, and every bad entry named."""

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

import elasticzo
from conftest import torch_lenet5
from elasticzo import _core, models
from elasticzo.weights import float_state_dict
from test_cli import cli

NAMES = ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight")


def _float_weights(seed=0, scale=0.1):
    """A bias-free float LeNet-5 state dict, as PyTorch would hold it."""
    rng = np.random.default_rng(seed)
    shapes = {n: models.lenet5(seed=0, precision="int8").parameter(n).shape for n in NAMES}
    return {n: (rng.standard_normal(s) * scale).astype(np.float32) for n, s in shapes.items()}


def _trained_int8(seed=0, steps=3):
    """An INT8 LeNet-5 after a few NITI steps, so its mantissas are not those of an initialization."""
    model = models.lenet5(seed=seed, precision="int8")
    trainer = elasticzo.ElasticZO(model, method="full-bp", precision="int8", seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps * 16, 1, 28, 28)).astype(np.float32)
    trainer.fit(x, rng.integers(0, 10, len(x)), epochs=1, batch_size=16, progress=False)
    return model


def _images(n=16, seed=1):
    return np.random.default_rng(seed).standard_normal((n, 1, 28, 28)).astype(np.float32)


def test_float_weights_are_quantized_on_import_and_exported_as_the_same_float32_values(tmp_path):
    weights = _float_weights()
    model = elasticzo.from_torch(weights, models.lenet5(seed=1, precision="int8"))
    state = model.state_dict()
    for name, w in weights.items():
        mantissas, exponent = _core.int8_quantize_input(w)  # NITI's per-tensor rule, value-preserving
        assert np.array_equal(state[name], mantissas) and int(state[name + ".exponent"]) == exponent, name
        assert 64 <= np.abs(mantissas).max() <= 127  # the power-of-two scale uses at least half the int8 range
        assert np.abs(mantissas * 2.0**exponent - w).max() <= 2.0**(exponent - 1)  # rounded to the nearest step

    path = tmp_path / "int8.safetensors"
    elasticzo.save_safetensors(model, path)
    with safe_open(str(path), framework="numpy") as f:
        exported = {k: f.get_tensor(k) for k in f.keys()}
    assert sorted(exported) == sorted(NAMES)  # PyTorch's names, no exponents
    for name in NAMES:
        assert exported[name].dtype == np.float32
        assert np.array_equal(exported[name], np.ldexp(state[name].astype(np.float32),
                                                       int(state[name + ".exponent"])))
    # ... and they come back as the same mantissas and exponents (every largest mantissa is >= 64 here).
    again = elasticzo.from_torch(path, models.lenet5(seed=2, precision="int8")).state_dict()
    assert all(np.array_equal(again[k], v) for k, v in state.items())


def test_pytorch_loads_the_dequantized_export_of_an_int8_model(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed")
    from safetensors.torch import load_file
    model = _trained_int8()
    path = tmp_path / "int8.safetensors"
    elasticzo.save_safetensors(model, path)
    net = torch_lenet5(torch)
    result = net.load_state_dict(load_file(str(path)), strict=False)
    assert sorted(result.missing_keys) == sorted(n.replace("weight", "bias") for n in NAMES) and \
        not result.unexpected_keys  # INT8 layers have no bias: everything else loads
    for name, value in float_state_dict(model).items():
        assert torch.equal(net.state_dict()[name], torch.from_numpy(value)), name


def test_int8_native_file_round_trips_bit_for_bit(tmp_path):
    model = _trained_int8()
    # A layer whose largest mantissa is below 64: a float export could only bring its values back (rescaled
    # mantissas); the native file keeps the representation itself, which NITI's updates depend on.
    model.set_parameter("fc3.weight", (model.parameter("fc3.weight") // 4).astype(np.int8),
                        int(model.state_dict()["fc3.weight.exponent"]))
    path = tmp_path / "native.safetensors"
    elasticzo.save_safetensors(model, path, dequantize=False)
    with safe_open(str(path), framework="numpy") as f:
        assert f.get_tensor("fc1.weight").dtype == np.int8 and f.get_tensor("fc1.weight.exponent").dtype == np.int32
    back = elasticzo.from_torch(path, models.lenet5(seed=5, precision="int8"))
    want, got = model.state_dict(), back.state_dict()
    assert sorted(got) == sorted(want) and all(np.array_equal(got[k], want[k]) for k in want)
    x = _images()
    assert np.array_equal(back.forward(x), model.forward(x))

    floats = tmp_path / "float.safetensors"
    elasticzo.save_safetensors(model, floats)
    rescaled = elasticzo.from_torch(floats, models.lenet5(seed=5, precision="int8"))
    assert not np.array_equal(rescaled.parameter("fc3.weight"), model.parameter("fc3.weight"))
    assert all(np.array_equal(a, b) for a, b in zip(float_state_dict(rescaled).values(),
                                                    float_state_dict(model).values()))

    # An FP32 model takes the int8 file's values (mantissa * 2^exponent); it has biases the file lacks.
    fp32 = elasticzo.from_torch(path, models.lenet5(seed=6), strict=False)
    assert all(np.array_equal(fp32.parameter(k), v) for k, v in float_state_dict(model).items())


def test_bad_int8_entries_are_named_and_nothing_is_copied(tmp_path):
    model = models.lenet5(seed=0, precision="int8")
    before = model.state_dict()
    native = models.lenet5(seed=1, precision="int8").state_dict()
    floats = _float_weights()
    m128 = native["fc2.weight"].copy()
    m128[3, 4] = -128
    cases = {
        "no bias for conv1.bias, fc3.bias (INT8 layers have none)": dict(
            floats, **{"conv1.bias": np.zeros(6, np.float32), "fc3.bias": np.zeros(10, np.float32)}),
        "fc2.weight holds -128": dict(native, **{"fc2.weight": m128}),
        "fc1.weight.exponent must be an integer scalar, got dtype float64": dict(
            native, **{"fc1.weight.exponent": np.float64(-7.5)}),
        "conv1.weight.exponent must be an integer scalar, got dtype int32 shape (2,)": dict(
            native, **{"conv1.weight.exponent": np.array([-7, -7], np.int32)}),
        "fc3.weight.exponent is 200, outside [-149, 121]": dict(native, **{"fc3.weight.exponent": np.int32(200)}),
        "fc3.weight is an int8 parameter, got dtype float32 with fc3.weight.exponent": dict(
            native, **{"fc3.weight": floats["fc3.weight"]}),
        "fc1.weight is an int8 parameter and fc1.weight.exponent is missing": {
            k: v for k, v in native.items() if k != "fc1.weight.exponent"},
        "fc2.weight is an int8 parameter, got dtype int32": dict(
            floats, **{"fc2.weight": np.zeros((84, 120), np.int32)}),
        "size mismatch for conv2.weight: got (16, 6, 3, 3)": dict(
            floats, **{"conv2.weight": np.zeros((16, 6, 3, 3), np.float32)}),
        "fc2.weight holds non-finite values": dict(floats, **{"fc2.weight": np.full((84, 120), np.nan, np.float32)}),
        "missing key(s): fc3.weight": {k: v for k, v in floats.items() if k != "fc3.weight"},
        "unexpected key(s): fc4.weight": dict(floats, **{"fc4.weight": floats["fc3.weight"]}),
    }
    for expected, state in cases.items():
        with pytest.raises(ValueError) as e:
            elasticzo.from_torch(state, model)
        assert expected in str(e.value) and "nothing was copied" in str(e.value)
        path = tmp_path / "bad.safetensors"
        save_file({k: np.asarray(v) for k, v in state.items()}, str(path))
        with pytest.raises(ValueError) as e:  # from a file, the message names the file too
            elasticzo.from_torch(path, model)
        assert str(path) in str(e.value) and expected in str(e.value)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k]), k
    # Dropping biases is refused even when not strict (it changes the model), and done only when asked for.
    biased = dict(floats, **{"fc3.bias": np.ones(10, np.float32)})
    with pytest.raises(ValueError, match="drop_biases=True"):
        model.load_state_dict(biased, strict=False)
    with pytest.warns(UserWarning, match="dropped fc3.bias"):
        elasticzo.from_torch(biased, model, drop_biases=True)
    assert np.array_equal(model.parameter("fc3.weight"), _core.int8_quantize_input(floats["fc3.weight"])[0])


@pytest.mark.training
def test_init_from_starts_an_int8_run_from_imported_weights(tmp_path, mnist_test):
    pretrained = _trained_int8(seed=3)
    native, torch_like = tmp_path / "native.safetensors", tmp_path / "biased.safetensors"
    elasticzo.save_safetensors(pretrained, native, dequantize=False)
    save_file(dict(float_state_dict(pretrained), **{"fc3.bias": np.zeros(10, np.float32)}), str(torch_like))
    test = mnist_test.sample(256, 0)  # the run's --test-samples 256: drawn by the default subset seed
    expected = elasticzo.evaluate(pretrained, test, batch_size=64)["accuracy"]  # the run's batch size

    run = ["train", "--precision", "int8", "--method", "full-bp", "--test-samples", "256", "--epochs", "0",
           "--no-progress", "--json"]
    summary = json.loads(cli(*run, "--init-from", str(native)).stdout.strip().splitlines()[-1])
    assert summary["test_accuracy"] == expected  # --epochs 0: the imported weights' own accuracy
    refused = cli(*run, "--init-from", str(torch_like), check=False)
    assert refused.returncode != 0
    assert "no bias for fc3.bias" in refused.stderr and "--init-drop-biases" in refused.stderr
    dropped = cli(*run, "--init-from", str(torch_like), "--init-drop-biases")
    assert "dropped fc3.bias" in dropped.stderr
    assert json.loads(dropped.stdout.strip().splitlines()[-1])["test_accuracy"] == expected
    assert "goes with --init-from" in cli(*run, "--init-drop-biases", check=False).stderr


def test_readme_int8_weights_example_runs(tmp_path, monkeypatch):
    import re
    from conftest import REPO_ROOT
    section = (REPO_ROOT / "README.md").read_text().split("## Fine-tuning: weights in and out by name")[1]
    code = next(block for block in re.findall(r"```python\n(.*?)```", section, re.S) if "precision=\"int8\"" in block)
    model = _trained_int8()
    trainer = elasticzo.ElasticZO(model, method="full-bp", precision="int8")
    (tmp_path / "pre8").mkdir()
    trainer.save(tmp_path / "pre8" / "checkpoint.safetensors")  # what `elasticzo train ... --out pre8` leaves
    monkeypatch.chdir(tmp_path)
    scope = {"elasticzo": elasticzo}
    exec(compile(code, "README.md", "exec"), scope)
    native = elasticzo.from_torch(tmp_path / "lenet5_int8.safetensors", models.lenet5(seed=9, precision="int8"))
    assert all(np.array_equal(native.state_dict()[k], v) for k, v in model.state_dict().items())
    with safe_open(str(tmp_path / "lenet5_float.safetensors"), framework="numpy") as f:
        assert sorted(f.keys()) == sorted(NAMES) and all(f.get_tensor(k).dtype == np.float32 for k in f.keys())
