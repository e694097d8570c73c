"""The newcomer's path: the README's commands and Python examples from a folder outside the clone (the installed
package finds the MNIST copy it carries), LICENSE, and load_state_dict by PyTorch names."""

import os
import re
import subprocess
import sys
import sysconfig
from importlib import metadata

import numpy as np
import pytest

from conftest import REPO_ROOT, torch_lenet5
from elasticzo import models, nn
from elasticzo.data.locate import installed_dir
from elasticzo.data.registry import MNIST


def readme_section(title):
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else len(text)]


def code_blocks(section, language):
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def outside_the_clone(tmp_path):
    """A folder and environment with no way to the clone: not the working directory, no ELASTICZO_DATA, a HOME
    without a dataset cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("ELASTICZO_DATA", "PYTHONPATH")}
    env["HOME"] = str(tmp_path / "home")
    work = tmp_path / "elsewhere"
    work.mkdir()
    return work, env


def test_the_package_carries_mnist():
    for f in MNIST.all_files():
        assert (installed_dir("mnist") / f.name).stat().st_size == f.size, f.name


@pytest.mark.training
def test_readme_commands_work_from_any_folder(tmp_path):
    commands = [line.split("#")[0].split() for block in code_blocks(readme_section("Install and train"), "bash")
                for line in block.splitlines() if line.startswith("elasticzo ")]
    assert commands == [["elasticzo", "train", "--method", "zo-feat-cls1", "--epochs", "1"]]
    work, env = outside_the_clone(tmp_path)
    script = os.path.join(sysconfig.get_path("scripts"), "elasticzo")
    for argv in commands:
        proc = subprocess.run([script, *argv[1:], "--no-progress"], cwd=work, env=env, capture_output=True,
                              text=True, timeout=1200)
        assert proc.returncode == 0, proc.stderr
        assert "test accuracy" in proc.stdout


@pytest.mark.training
def test_readme_python_examples_work_from_any_folder(tmp_path):
    blocks = code_blocks(readme_section("Python"), "python")
    assert len(blocks) == 2 and "nn.Sequential" in blocks[1]
    work, env = outside_the_clone(tmp_path)
    script = "\n".join(blocks)
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr
    accuracy = float(proc.stdout.strip().splitlines()[-1])
    assert accuracy > 0.5, proc.stdout  # the custom model learns (about 80% after one epoch)
    assert (work / "mnist.safetensors").is_file()


def test_license_is_mit_as_the_metadata_says():
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License\n")
    assert metadata.metadata("elasticzo")["License"] == "MIT"


def small_model(seed=0):
    return nn.Sequential([("flatten", nn.Flatten()), ("fc1", nn.Linear(12, 5)), ("relu", nn.ReLU()),
                          ("fc2", nn.Linear(5, 3))], seed=seed)


def test_load_state_dict_from_numpy_arrays():
    source, target = small_model(1), small_model(2)
    result = target.load_state_dict({k: v.astype(np.float64) for k, v in source.state_dict().items()})
    assert result == ([], []) and result.missing_keys == []
    for k, v in source.state_dict().items():
        assert np.array_equal(target.parameter(k), v)


def test_load_state_dict_lists_every_problem_and_copies_nothing():
    model = small_model()
    before = model.state_dict()
    good = dict(before)
    bad = dict(good, extra=np.zeros(2, np.float32))
    del bad["fc2.bias"]
    bad["fc1.weight"] = np.zeros((12, 5), np.float32)
    bad["fc2.weight"] = np.full((3, 5), np.nan, np.float32)
    bad["fc1.bias"] = np.zeros(5, np.int64)
    with pytest.raises(ValueError) as e:
        model.load_state_dict(bad)
    message = str(e.value)
    for part in ("missing key(s): fc2.bias", "unexpected key(s): extra", "size mismatch for fc1.weight: got (12, 5), "
                 "the model's is (5, 12)", "fc2.weight holds non-finite values", "fc1.bias has dtype int64",
                 "nothing was copied"):
        assert part in message, message
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k]), k
    with pytest.raises(TypeError, match="mapping"):
        model.load_state_dict([("fc1.weight", before["fc1.weight"])])


def test_load_state_dict_not_strict_reports_missing_and_unexpected():
    model = small_model()
    partial = {"fc1.weight": np.ones((5, 12), np.float32), "other": np.zeros(1, np.float32)}
    assert model.load_state_dict(partial, strict=False) == (["fc1.bias", "fc2.weight", "fc2.bias"], ["other"])
    assert (model.parameter("fc1.weight") == 1).all()


def test_load_state_dict_from_a_pytorch_lenet5():
    torch = pytest.importorskip("torch", reason="PyTorch (the test oracle) is not installed")
    net = torch_lenet5(torch)
    ours = models.lenet5(seed=0)
    assert ours.load_state_dict(net.state_dict()) == ([], [])
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.forward(x), expected, rtol=1e-4, atol=1e-5)
