"""Weights in and out by name: PyTorch state dicts and .pt files, .safetensors files and elasticzo checkpoints in,
.safetensors out, with PyTorch as the oracle of the round trip."""

import importlib.util

import numpy as np
import pytest
from safetensors.numpy import save_file

import elasticzo
from conftest import torch_lenet5
from elasticzo import models


def _torch():
    return pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed")


def _images(n=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 1, 28, 28)).astype(np.float32)


def test_torch_lenet5_round_trip_through_safetensors_gives_identical_weights_and_outputs(tmp_path):
    torch = _torch()
    torch.manual_seed(0)
    net = torch_lenet5(torch)
    ours = elasticzo.from_torch(net.state_dict(), models.lenet5(seed=1))
    x = _images()
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.forward(x), expected, rtol=0, atol=1e-5)

    path = tmp_path / "lenet5.safetensors"
    elasticzo.save_safetensors(ours, path)
    from safetensors.torch import load_file
    back = torch_lenet5(torch)
    assert not back.load_state_dict(load_file(str(path))).missing_keys  # strict: every key, no extra one
    for name, value in net.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name
    with torch.no_grad():
        np.testing.assert_allclose(back(torch.from_numpy(x)).numpy(), expected, rtol=0, atol=1e-6)


def test_from_torch_reads_pt_files_modules_and_checkpoints(tmp_path):
    torch = _torch()
    torch.manual_seed(1)
    net = torch_lenet5(torch)
    want = {k: v.numpy() for k, v in net.state_dict().items()}
    torch.save(net.state_dict(), tmp_path / "w.pt")
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    for source in (tmp_path / "w.pt", str(tmp_path / "ckpt.pth"), net):
        got = elasticzo.from_torch(source, models.lenet5(seed=2)).state_dict()
        assert all(np.array_equal(got[k], want[k]) for k in want), source

    trainer = elasticzo.ElasticZO(elasticzo.from_torch(net, models.lenet5(seed=2)), method="zo-feat-cls1")
    trainer.save(tmp_path / "run.safetensors")  # an elasticzo checkpoint: its model's parameters are taken
    got = elasticzo.from_torch(tmp_path / "run.safetensors", models.lenet5(seed=3)).state_dict()
    assert all(np.array_equal(got[k], want[k]) for k in want)


def test_wrong_key_shape_or_dtype_is_named_and_nothing_is_copied(tmp_path):
    model = models.lenet5(seed=0)
    before = model.state_dict()
    good = models.lenet5(seed=1).state_dict()
    cases = {
        "missing key(s): fc3.bias": {k: v for k, v in good.items() if k != "fc3.bias"},
        "unexpected key(s): fc4.weight": dict(good, **{"fc4.weight": good["fc3.weight"]}),
        "size mismatch for fc3.weight: got (12, 84)": dict(good, **{"fc3.weight": np.zeros((12, 84), np.float32)}),
        "fc1.bias has dtype int64": dict(good, **{"fc1.bias": np.zeros(120, np.int64)}),
    }
    for expected, state in cases.items():
        with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            elasticzo.from_torch(state, model)
        path = tmp_path / "bad.safetensors"
        save_file(state, str(path))
        with pytest.raises(ValueError) as e:  # from a file, the message names the file too
            elasticzo.from_torch(path, model)
        assert str(path) in str(e.value) and expected in str(e.value)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_bfloat16_weights_load_exactly_from_tensors_pt_and_safetensors_files(tmp_path):
    """bfloat16, the dtype many PyTorch models are saved in, has no numpy dtype: bf16 tensors, a .pt file of them
    and a BF16 .safetensors file were refused ("data type 'bfloat16' not understood"); each widens exactly."""
    torch = _torch()
    from safetensors.torch import save_file as save_torch_file

    torch.manual_seed(2)
    state = {k: v.bfloat16() for k, v in torch_lenet5(torch).state_dict().items()}
    want = {k: v.float().numpy() for k, v in state.items()}
    torch.save(state, tmp_path / "w.pt")
    save_torch_file(state, str(tmp_path / "w.safetensors"))
    for source in (state, tmp_path / "w.pt", tmp_path / "w.safetensors"):
        got = elasticzo.from_torch(source, models.lenet5(seed=0)).state_dict()
        assert all(np.array_equal(got[k], want[k]) for k in want), source
    assert not np.array_equal(want["fc1.weight"], torch_lenet5(torch).state_dict()["fc1.weight"].numpy())


def test_a_value_that_is_not_an_array_is_named():
    good = models.lenet5(seed=1).state_dict()
    for bad in (None, "weights", [[1.0], [2.0, 3.0]]):
        with pytest.raises(TypeError, match=f"fc1.bias: a {type(bad).__name__} is not an array of numbers"):
            models.lenet5(seed=0).load_state_dict(dict(good, **{"fc1.bias": bad}))


def test_unreadable_sources_are_clear_errors(tmp_path):
    model = models.lenet5(seed=0)
    with pytest.raises(ValueError, match="no weights file"):
        elasticzo.from_torch(tmp_path / "absent.safetensors", model)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        elasticzo.from_torch(tmp_path / "junk.safetensors", model)
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    # Without torch (a Pi), a .pt file is refused for that reason; with it, for its content.
    has_torch = importlib.util.find_spec("torch") is not None
    with pytest.raises(ValueError, match="not a readable PyTorch state dict" if has_torch else "needs torch"):
        elasticzo.from_torch(tmp_path / "junk.pt", model)
    with pytest.raises(TypeError, match="state dict, a torch.nn.Module or a file path"):
        elasticzo.from_torch(42, model)


def test_a_saved_module_is_refused_with_the_fix(tmp_path):
    torch = _torch()
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a state dict"):
        elasticzo.from_torch(tmp_path / "list.pt", models.lenet5(seed=0))


def test_save_safetensors_writes_float32_by_name_atomically(tmp_path):
    from safetensors import safe_open
    model = models.lenet5(seed=4)
    path = tmp_path / "m.safetensors"
    elasticzo.save_safetensors(model, path, metadata={"note": "x"})
    with safe_open(str(path), framework="numpy") as f:
        assert f.metadata()["note"] == "x" and f.metadata()["producer"].startswith("elasticzo")
        assert sorted(f.keys()) == sorted(model.parameter_names())
        assert all(np.array_equal(f.get_tensor(k), model.parameter(k)) for k in f.keys())
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    with pytest.raises(TypeError, match="str to str"):
        elasticzo.save_safetensors(model, path, metadata={"n": 1})


@pytest.mark.training
def test_readme_finetuning_example_runs(tmp_path, monkeypatch):
    torch = _torch()
    import re
    from conftest import REPO_ROOT
    section = (REPO_ROOT / "README.md").read_text().split("## Fine-tuning: weights in and out by name")[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    torch.manual_seed(0)
    torch_model = torch_lenet5(torch)
    before = {k: v.clone() for k, v in torch_model.state_dict().items()}
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"torch_model": torch_model})
    assert (tmp_path / "finetuned.safetensors").is_file()
    assert not all(torch.equal(before[k], v) for k, v in torch_model.state_dict().items())  # fine-tuned weights
