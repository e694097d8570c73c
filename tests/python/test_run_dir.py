"""`elasticzo train --out`: the run directory is locked, unusable ones are clear errors, --resume refuses or applies
and records conflicting flags, metrics.jsonl never continues a failed run, and eval reads Python-saved checkpoints."""

import errno
import json
import signal
import subprocess
import sys
import time

import pytest

import elasticzo
from conftest import REPO_ROOT
from elasticzo import cli as cli_module
from elasticzo import nn


# Tests that train (a few steps, then a 10,000-image evaluation) are marked `training`: they run natively in CI and
# the emulated arm64 run leaves them out, as in test_cli.py; the checks before training run everywhere.


def cli(*args, cwd=REPO_ROOT, check=True):
    proc = subprocess.run([sys.executable, "-m", "elasticzo", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def quick(out, *extra):
    return ["train", "--train-samples", "320", "--no-progress", "--out", str(out), *extra]


def assert_clear_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("elasticzo: error:") and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "run"
    cli(*quick(run, "--method", "full-zo", "--seed", "4"))
    return run


@pytest.mark.training
def test_second_run_in_the_same_directory_is_refused_while_the_first_runs(tmp_path):
    run = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "elasticzo", "train", "--no-progress", "--out", str(run)],
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and first.poll() is None:
            if (run / ".lock").is_file() and (run / ".lock").read_text().strip() == str(first.pid):
                break
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        second = cli(*quick(run), check=False)
        assert_clear_error(second, "in use by another run", f"pid {first.pid}")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=300)


def test_out_that_is_a_file_or_inside_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("precious")
    assert_clear_error(cli(*quick(f), check=False), "is a file")
    assert_clear_error(cli(*quick(f / "run"), check=False), "cannot be used as a run directory", "Not a directory")
    assert f.read_text() == "precious"


def test_read_only_out_is_a_clear_error(tmp_path, monkeypatch, capsys):
    # Tests run as root in CI, where chmod does not stop writes: the refusal is simulated where it would happen.
    import elasticzo.run as run_module

    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(run_module.os, "open", refuse)
    assert cli_module.main(quick(tmp_path / "ro")) == 2
    err = capsys.readouterr().err
    assert err.startswith("elasticzo: error: --out") and "Permission denied" in err


@pytest.mark.training
def test_full_disk_is_a_clear_error_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    import elasticzo.checkpoint as ckpt

    def full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", filename)

    monkeypatch.setattr(ckpt, "save_file", full)
    run = tmp_path / "run"
    assert cli_module.main(quick(run, "--checkpoint-every", "2")) == 2
    err = capsys.readouterr().err
    assert err.startswith("elasticzo: error:") and "No space left on device" in err and "Traceback" not in err
    assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "metrics.jsonl"]


@pytest.mark.training
def test_new_run_does_not_append_to_a_failed_runs_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "train_loss": 99.0}) + "\n")
    (run / ".checkpoint.safetensors.tmp-999999999").write_bytes(b"left by a SIGKILL during a save")
    cli(*quick(run))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["train_loss"] != 99.0
    assert not (run / ".checkpoint.safetensors.tmp-999999999").exists()


@pytest.mark.training
@pytest.mark.parametrize("flag,value", [("--method", "zo-feat-cls1"), ("--zo-layers", "2"), ("--seed", "0"),
                                        ("--optimizer", "adam"), ("--batch-size", "32"),
                                        ("--train-samples", "640"), ("--model", "pointnet"),
                                        ("--dataset", "fashion-mnist"), ("--clean-bp-pass", None),
                                        ("--augment", "pointcloud")])
def test_resume_refuses_a_flag_that_changes_what_the_run_is(finished_run, flag, value):
    before = (finished_run / "checkpoint.safetensors").read_bytes()
    args = [flag] if value is None else [flag, value]
    proc = cli("train", "--resume", "--out", str(finished_run), "--epochs", "2", "--no-progress", *args, check=False)
    assert_clear_error(proc, flag, "the run has", "--resume")
    assert (finished_run / "checkpoint.safetensors").read_bytes() == before


@pytest.mark.training
def test_resume_accepts_the_runs_own_values(finished_run, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    for f in ("checkpoint.safetensors", "metrics.jsonl", "config.json"):
        (run / f).write_bytes((finished_run / f).read_bytes())
    cli(*quick(run, "--resume", "--epochs", "2", "--method", "full-zo", "--seed", "4", "--batch-size", "64"))
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.training
def test_resume_applies_and_records_a_new_learning_rate(finished_run, tmp_path):
    run = tmp_path / "copy"
    run.mkdir()
    for f in ("checkpoint.safetensors", "metrics.jsonl", "config.json"):
        (run / f).write_bytes((finished_run / f).read_bytes())
    proc = cli("train", "--resume", "--out", str(run), "--epochs", "2", "--no-progress", "--lr", "1e-4",
               "--clip", "0.5")
    assert "lr_zo 0.0001 (was 0.0005)" in proc.stderr and "grad_clip 0.5 (was 1.0)" in proc.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["lr_zo"] == 1e-4 and config["config"]["grad_clip"] == 0.5
    assert config["info"]["resumes"] == [{"steps_done": 5, "epoch": 1, "batch_in_epoch": 0,
                                          "changed": {"lr_zo": [5e-4, 1e-4], "grad_clip": [1.0, 0.5]}}]
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["lr_zo"] for m in metrics] == [5e-4, 1e-4]
    _, state = elasticzo.checkpoint.read_checkpoint(run / "checkpoint.safetensors")
    assert state["info"]["resumes"] == config["info"]["resumes"] and state["config"]["lr_zo"] == 1e-4


def test_point_cloud_augmentation_of_images_is_a_clear_error(tmp_path):
    proc = cli(*quick(tmp_path / "run", "--augment", "pointcloud"), check=False)
    assert_clear_error(proc, "augment 'pointcloud' needs point clouds (points, 3)", "(1, 28, 28)")


def test_help_states_the_resume_policy_and_every_default():
    text = cli("train", "--help").stdout
    assert "--resume continues the run" in text and "recorded in config.json" in text
    parser = cli_module._parser()
    for sub in parser._subparsers._group_actions[0].choices.values():
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{sub.prog} {action.option_strings} has no help"
                assert "default" in action.help or action.required, f"{sub.prog} {action.option_strings}"


def test_eval_of_a_checkpoint_saved_from_python(tmp_path, mnist_test):
    model = nn.Sequential([("flatten", nn.Flatten()), ("fc1", nn.Linear(784, 32)), ("relu", nn.ReLU()),
                           ("fc2", nn.Linear(32, 10))], seed=0)
    trainer = elasticzo.ElasticZO(model, zo_layers=1)
    expected = trainer.evaluate(mnist_test)["accuracy"]
    trainer.save(tmp_path / "plain.safetensors")
    trainer.save(tmp_path / "named.safetensors", dataset="mnist")
    assert_clear_error(cli("eval", "--checkpoint", str(tmp_path / "plain.safetensors"), check=False),
                       "does not name its dataset", "--dataset")
    for args in (["--checkpoint", str(tmp_path / "plain.safetensors"), "--dataset", "mnist"],
                 ["--checkpoint", str(tmp_path / "named.safetensors")]):
        result = json.loads(cli("eval", "--json", *args).stdout)
        assert result["accuracy"] == pytest.approx(expected, abs=1e-12)
    (tmp_path / "run").mkdir()
    trainer.save(tmp_path / "run" / "checkpoint.safetensors")
    proc = cli("train", "--resume", "--out", str(tmp_path / "run"), "--no-progress", check=False)
    assert_clear_error(proc, "was not written by `elasticzo train`", "ElasticZO.load")


@pytest.mark.training
def test_plot_draws_the_runs_curves(finished_run, tmp_path):
    out = tmp_path / "run.png"
    proc = cli("plot", str(finished_run), "--output", str(out))
    assert proc.stdout.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10000
    assert_clear_error(cli("plot", str(tmp_path), check=False), "holds no metrics.jsonl")


@pytest.mark.training
def test_plot_without_matplotlib_says_how_to_get_it(finished_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert cli_module.main(["plot", str(finished_run)]) == 2
    assert "pip install 'elasticzo[plot]'" in capsys.readouterr().err
