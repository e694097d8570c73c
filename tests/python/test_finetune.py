"""The fine-tuning workflow of Table 2 on the command line: `train --init-from FILE --angle A`, its "w/o FT" figure
(--epochs 0), eval of the rotated test subset, --resume keeping the run's angle, subsets and start weights, and the
subsets drawn at random by --subset-seed (SPEC §7), runs saved before that keeping their first N."""

import json

import numpy as np
import pytest

import elasticzo
from elasticzo import models
from elasticzo.checkpoint import save_checkpoint
from elasticzo.data import rotated_subset
from test_cli import cli

ANGLE = 45.0


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, mnist_train):
    """LeNet-5 after one epoch of Full BP with Adam on 2,000 MNIST images (the paper's pretraining, smaller)."""
    model = models.lenet5(seed=0)
    trainer = elasticzo.ElasticZO(model, method="full-bp", optimizer="adam", lr_bp=1e-3, seed=0)
    trainer.fit(mnist_train.subset(range(2000)), epochs=1, batch_size=32, progress=False)
    path = tmp_path_factory.mktemp("pre") / "lenet5.safetensors"
    elasticzo.save_safetensors(model, path)
    return path


def summary(proc):
    return json.loads(proc.stdout.strip().splitlines()[-1])


def finetune_args(weights, *extra):
    return ["train", "--init-from", str(weights), "--angle", str(ANGLE), "--train-samples", "512",
            "--test-samples", "256", "--no-progress", "--json", *extra]


@pytest.mark.training
def test_epochs_0_reports_the_pretrained_accuracy_on_the_random_rotated_test_subset(pretrained, mnist_test):
    model = elasticzo.from_torch(pretrained, models.lenet5(seed=1))
    # the default subset seed is 0, whatever --seed (which varies the training only)
    expected = {s: elasticzo.evaluate(model, rotated_subset(mnist_test, ANGLE, 256, seed=s))["accuracy"]
                for s in (0, 3)}
    assert expected[0] != expected[3]
    for extra, seed in (((), 0), (("--seed", "5"), 0), (("--subset-seed", "3"), 3)):
        without_ft = summary(cli(*finetune_args(pretrained, "--epochs", "0", *extra)))
        assert without_ft["test_accuracy"] == expected[seed] and without_ft["angle"] == ANGLE, extra
    upright = elasticzo.evaluate(model, mnist_test.sample(256, 0))["accuracy"]
    assert expected[0] < upright - 0.1  # the rotation is what the fine-tuning has to make up for
    # the same draw without --angle: a subset is random whether rotated or not
    unrotated = summary(cli("train", "--init-from", str(pretrained), "--test-samples", "256", "--epochs", "0",
                            "--no-progress", "--json"))
    assert unrotated["test_accuracy"] == upright


@pytest.mark.training
def test_finetuning_improves_and_eval_and_resume_keep_the_runs_rotation(pretrained, tmp_path):
    before = summary(cli(*finetune_args(pretrained, "--epochs", "0")))["test_accuracy"]
    run = tmp_path / "ft"
    after = summary(cli(*finetune_args(pretrained, "--method", "full-bp", "--lr", "0.02", "--epochs", "2", "--out",
                                       str(run))))
    assert after["test_accuracy"] > before + 0.05, (before, after)

    assert json.loads((run / "config.json").read_text())["info"]["subset_seed"] == 0
    evaluated = json.loads(cli("eval", "--checkpoint", str(run / "checkpoint.safetensors"), "--json").stdout)
    assert evaluated["accuracy"] == after["test_accuracy"]  # the run's angle and test subset by default
    other = json.loads(cli("eval", "--checkpoint", str(run / "checkpoint.safetensors"), "--subset-seed", "3",
                           "--json").stdout)
    assert other["loss"] != evaluated["loss"]  # other images (their accuracy may coincide)
    upright = json.loads(cli("eval", "--checkpoint", str(run / "checkpoint.safetensors"), "--angle", "0",
                             "--json").stdout)
    assert upright["accuracy"] != evaluated["accuracy"]

    for flag, value in (("--angle", "30"), ("--test-samples", "128"), ("--subset-seed", "3"),
                        ("--init-from", str(run / "x.pt"))):
        proc = cli("train", "--resume", "--out", str(run), "--epochs", "3", flag, value, check=False)
        assert proc.returncode == 2 and f"{flag} " in proc.stderr, proc.stderr
    resumed = summary(cli("train", "--resume", "--out", str(run), "--epochs", "3", "--json", "--no-progress"))
    assert resumed["angle"] == ANGLE and resumed["epochs"] == 3


@pytest.mark.training
def test_a_run_saved_before_random_subsets_keeps_its_first_n_on_eval_and_resume(pretrained, mnist_test, tmp_path):
    model = elasticzo.from_torch(pretrained, models.lenet5(seed=1))
    trainer = elasticzo.ElasticZO(model, method="full-bp", lr_bp=0.02, seed=0)
    run = tmp_path / "old"
    run.mkdir()
    # what `train --train-samples 128 --test-samples 128 --angle 45` recorded before the subset seed existed
    save_checkpoint(run / "checkpoint.safetensors", trainer, {
        "model": "lenet5", "dataset": "mnist", "data": None, "num_classes": 10, "train_samples": 128,
        "test_samples": 128, "angle": ANGLE, "init_from": None, "batch_size": 64})
    first = elasticzo.evaluate(model, rotated_subset(mnist_test.subset(range(128)), ANGLE))["accuracy"]
    drawn = elasticzo.evaluate(model, rotated_subset(mnist_test, ANGLE, 128, seed=0))["accuracy"]
    assert first != drawn
    evaluated = json.loads(cli("eval", "--checkpoint", str(run / "checkpoint.safetensors"), "--batch-size", "64",
                               "--json").stdout)
    assert evaluated["accuracy"] == first
    proc = cli("train", "--resume", "--out", str(run), "--epochs", "1", "--subset-seed", "0", check=False)
    assert proc.returncode == 2 and "it takes the first N samples" in proc.stderr, proc.stderr
    resumed = cli("train", "--resume", "--out", str(run), "--epochs", "1", "--json", "--no-progress")
    assert summary(resumed)["epochs"] == 1
    assert json.loads((run / "config.json").read_text())["info"]["subset_seed"] is None


def test_bad_subset_seeds_are_refused_with_the_flag_named(tmp_path):
    for args, message in ((("train", "--train-samples", "64", "--subset-seed", "-1"), "--subset-seed must be >= 0"),
                          (("train", "--subset-seed", "2"), "--subset-seed draws the subsets of --train-samples"),
                          (("eval", "--checkpoint", str(tmp_path / "c.safetensors"), "--subset-seed", "-2"),
                           "--subset-seed must be >= 0"),
                          (("train", "--subset-seed", "x"), "invalid int value")):
        proc = cli(*args, "--epochs", "0", check=False) if args[0] == "train" else cli(*args, check=False)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)


@pytest.mark.training
def test_angle_needs_images_and_init_from_must_fit_the_model(pretrained, tmp_path):
    rng = np.random.default_rng(0)
    flat = tmp_path / "flat.npz"
    np.savez(flat, x_train=rng.standard_normal((20, 5)).astype(np.float32), y_train=rng.integers(0, 3, 20))
    proc = cli("train", "--data", str(flat), "--angle", "30", "--epochs", "0", check=False)
    assert proc.returncode == 2 and "--angle rotates images" in proc.stderr, proc.stderr

    three = tmp_path / "three.npz"
    np.savez(three, x_train=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8), y_train=rng.integers(0, 3, 20))
    proc = cli("train", "--data", str(three), "--init-from", str(pretrained), "--epochs", "0", check=False)
    assert proc.returncode == 2 and "size mismatch for fc3.weight" in proc.stderr, proc.stderr
    proc = cli("train", "--init-from", str(tmp_path / "absent.safetensors"), "--epochs", "0", check=False)
    assert proc.returncode == 2 and "no weights file" in proc.stderr, proc.stderr


@pytest.mark.training  # runs the reproduction script, which the emulated arm64 copy does not ship
def test_paper_table2_int8_fine_tunes_from_a_finished_pretraining_run_and_names_it(tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT, benchmark_module
    pre = tmp_path / "pre"
    cli("train", "--precision", "int8", "--method", "full-bp", "--train-samples", "256", "--epochs", "1",
        "--no-progress", "--out", str(pre))

    def table2(*extra):
        return subprocess.run([sys.executable, "benchmarks/paper_table2.py", "--precision", "int8", "--datasets",
                               "mnist", "--methods", "zo-feat-cls1", "full-bp", "--epochs", "1", "--train-samples", "128",
                               "--test-samples", "64", "--pretrained-mnist", str(pre),
                               "--out", str(tmp_path / "runs"), "--table", str(tmp_path / "t.md"), *extra],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)

    refused = table2("--pretrain-epochs", "2")  # the run has 1 epoch: not the pretraining asked for
    assert refused.returncode != 0 and "finished epochs (1, 0) (needed (2, 0))" in refused.stderr
    proc = table2("--pretrain-epochs", "1")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "t.md").read_text()
    assert "LeNet-5 (INT8)" in text and "NITI's Full BP" in text and f"the checkpoint of `{pre}` after 1 epochs" in text
    assert "| w/o FT |" in text and "| 84.08 |" in text and "| 93.46 |" in text  # the paper's INT8 figures
    # INT8's own angles (MNIST 31 and 44, not FP32's 33 and 47), fine-tuning settings and random subsets reach the
    # runs
    assert "Rotated MNIST 31° ours" in text and "Rotated MNIST 44° ours" in text
    assert "ours put this precision's pretrained model's w/o FT" in text and "drawn at random, subset seed 0" in text
    run = tmp_path / "runs" / "int8" / "mnist" / "angle31" / "zo-feat-cls1"
    run_config = json.loads((run / "config.json").read_text())
    config = run_config["config"]
    assert (config["precision"], config["zo_range"], config["zo_update_bits"]) == ("int8", 64, 2)
    assert (run_config["info"]["train_samples"], run_config["info"]["subset_seed"]) == (128, 0)
    bp = json.loads((run.parent / "full-bp" / "config.json").read_text())["config"]
    assert bp["gradient_bits"] == 5  # the paper's mu for fine-tuning, whatever the dataset's from-scratch default
    copied = tmp_path / "runs" / "int8" / "mnist" / "pretrain" / "checkpoint.safetensors"
    assert copied.read_bytes() == (pre / "checkpoint.safetensors").read_bytes()
    # w/o FT is measured at the fine-tuning batch size, so it is the imported weights' accuracy in those runs too
    without = json.loads((tmp_path / "runs" / "int8" / "mnist" / "angle31" / "without-ft.json").read_text())
    epoch0 = summary(cli("train", "--init-from", str(copied), "--precision", "int8", "--angle", "31",
                         "--test-samples", "64", "--epochs", "0", "--no-progress", "--json"))
    assert without["accuracy"] == epoch0["test_accuracy"]


@pytest.mark.training  # runs the sweep script, which the emulated arm64 copy does not ship
def test_table2_int8_sweep_validates_on_held_out_training_images_and_skips_finished_settings(tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT, benchmark_module
    pre = tmp_path / "pre"
    cli("train", "--precision", "int8", "--method", "full-bp", "--train-samples", "256", "--epochs", "1",
        "--no-progress", "--out", str(pre))

    def sweep(grid="r=8,16 p=0.9"):
        return subprocess.run([sys.executable, "benchmarks/sweep_table2_int8.py", "--pretrained", str(pre),
                               "--dataset", "mnist", "--angle", "30", "--methods", "zo-feat-cls2", "--grid",
                               grid, "--epochs", "2", "--train-samples", "192", "--val", "64",
                               "--threads", "1", "--out", str(tmp_path / "sweep"), "--table", str(tmp_path / "s.md")],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)

    proc = sweep()
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (tmp_path / "sweep" / "runs.jsonl").read_text().splitlines()]
    assert [r["key"] for r in records] == [f"mnist/30/zo-feat-cls2/r{r}/p0.9/mu5/b64" for r in (8, 16)]
    for r in records:
        assert len(r["curve"]) == 2 and set(r["curve"][0]["changed"]) == {"conv1", "conv2", "fc1", "fc2", "fc3"}
        # 64 validation images: accuracies are multiples of 1/64
        assert all(abs(e["val_accuracy"] * 64 - round(e["val_accuracy"] * 64)) < 1e-9 for e in r["curve"])
        assert [(e["mu"], e["p_zero"]) for e in r["curve"]] == [(5, 0.9), (5, 0.9)]
    text = (tmp_path / "s.md").read_text()
    assert "128 of the first 192 rotated training images" in text and text.count("| mnist | 30 | ZO-Feat-Cls2 |") == 2
    again = sweep()  # every setting is done: nothing runs again, the table is rewritten from the log
    assert again.returncode == 0 and again.stdout == ""
    assert len((tmp_path / "sweep" / "runs.jsonl").read_text().splitlines()) == 2
    # The schedules stepping at epoch 1 instead of 20 (ph), p_zero per phase, b_zo 2 and two seeds
    proc = sweep("r=8 p=0.33/0.5/0.9 bz=2 ph=1/2 s=0,1")
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (tmp_path / "sweep" / "runs.jsonl").read_text().splitlines()][2:]
    assert [r["key"] for r in records] == [f"mnist/30/zo-feat-cls2/r8/p0.33/0.5/0.9/mu5/b64/bz2{s}/ph1-2"
                                           for s in ("", "/s1")]
    for r in records:
        assert [(e["mu"], e["p_zero"]) for e in r["curve"]] == [(5, 0.33), (4, 0.5)]
    assert records[0]["curve"] != records[1]["curve"]  # the seed draws other perturbations and batches
    text = (tmp_path / "s.md").read_text()
    assert text.count("| mnist | 30 | ZO-Feat-Cls2 | 8 | 0.33/0.5/0.9 | 5 | 64 | 2 | 1/2 |") == 3  # 2 runs, 1 mean


@pytest.mark.training  # runs the sweep script, which the emulated arm64 copy does not ship
def test_table2_int8_sweep_with_a_subset_seed_fine_tunes_on_the_tables_draw_and_applies_the_decision_rule(
        tmp_path, mnist_train):
    import subprocess
    import sys
    from argparse import Namespace

    from conftest import REPO_ROOT, benchmark_module
    pre = tmp_path / "pre"
    cli("train", "--precision", "int8", "--method", "full-bp", "--train-samples", "256", "--epochs", "1",
        "--no-progress", "--out", str(pre))
    proc = subprocess.run([sys.executable, "benchmarks/sweep_table2_int8.py", "--pretrained", str(pre), "--dataset",
                           "mnist", "--angle", "30", "--grid", "r=8,16 bz=2", "--epochs", "1", "--train-samples",
                           "192", "--val", "64", "--subset-seed", "3", "--incumbent", "r=16 bz=2", "--threads", "1",
                           "--out", str(tmp_path / "sweep"), "--table", str(tmp_path / "s.md")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in (tmp_path / "sweep" / "runs.jsonl").read_text().splitlines()]
    assert [r["key"] for r in records] == [f"mnist/30/zo-feat-cls2/r{r}/psched/mu5/b64/bz2/ss3" for r in (8, 16)]
    # the fine-tuning is the table's: `elasticzo train` on the same draw ends the epoch with the same loss
    table_run = summary(cli("train", "--init-from", str(pre / "checkpoint.safetensors"), "--precision", "int8",
                            "--method", "zo-feat-cls2", "--angle", "30", "--train-samples", "192", "--test-samples",
                            "64", "--subset-seed", "3", "--zo-range", "8", "--zo-update-bits", "2", "--epochs", "1",
                            "--no-progress", "--json"))
    assert table_run["train_loss"] == pytest.approx(records[0]["curve"][0]["train_loss"], rel=1e-6)
    text = (tmp_path / "s.md").read_text()
    assert "the 192 rotated training images paper_table2.py's fine-tuning run draws (subset seed 3)" in text
    last = {r["setting"]["r"]: r["curve"][-1]["val_accuracy"] * 100 for r in records}
    keep = "**keep r=16 p=sched mu=5 b=64 bz=2 ph=20/50**"
    assert "| r=16 p=sched mu=5 b=64 bz=2 ph=20/50 (incumbent) |" in text
    assert (keep in text) == (last[8] <= last[16]) and ("**change to r=8" in text) == (last[8] > last[16])

    # the validation images are other training images than the fine-tuning ones; without a subset seed the sweep
    # splits the first N as before
    sweep = benchmark_module("sweep_table2_int8")
    rows = lambda d: {bytes(x) for x in d.x}  # noqa: E731
    train, val = sweep.split(mnist_train, Namespace(subset_seed=3, angle=30.0, train_samples=192, val=64))
    assert np.array_equal(train.x, rotated_subset(mnist_train, 30.0, 192, seed=3).x)
    assert len(val) == 64 and not rows(train) & rows(val)
    train, val = sweep.split(mnist_train, Namespace(subset_seed=None, angle=30.0, train_samples=192, val=64))
    assert (len(train), len(val)) == (128, 64)
    assert rows(train) | rows(val) == rows(rotated_subset(mnist_train.subset(range(192)), 30.0))


@pytest.mark.training  # runs the angle script, which the emulated arm64 copy does not ship
def test_table2_angles_marks_the_angle_whose_w_o_ft_is_nearest_the_papers(tmp_path):
    import subprocess
    import sys

    from conftest import REPO_ROOT, benchmark_module
    pre = tmp_path / "pre"
    cli("train", "--method", "full-bp", "--train-samples", "512", "--epochs", "1", "--no-progress", "--out", str(pre))
    proc = subprocess.run([sys.executable, "benchmarks/table2_angles.py", "--pretrained-mnist", str(pre), "--angles",
                           "0", "30", "60", "90", "--test-samples", "128", "--subset-seed", "2"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1].rstrip(" |") for line in proc.stdout.splitlines()
            if line.startswith("| ") and "°" in line.split(" | ")[0]}
    assert list(rows) == ["0°", "30°", "60°", "90°"]
    acc = {float(a[:-1]): float(v.rstrip("*")) for a, v in rows.items()}
    marked = {float(a[:-1]) for a, v in rows.items() if v.endswith("*")}
    assert marked == {min(acc, key=lambda a: abs(acc[a] - paper)) for paper in (74.41, 46.58)}  # FP32 MNIST w/o FT
    # the same figure as paper_table2.py's w/o FT row: `elasticzo eval` on the same random subset
    evaluated = json.loads(cli("eval", "--checkpoint", str(pre / "checkpoint.safetensors"), "--angle", "30",
                               "--test-samples", "128", "--subset-seed", "2", "--json").stdout)
    assert acc[30.0] == round(100 * evaluated["accuracy"], 2)


@pytest.mark.training  # runs the benchmark scripts, which the emulated arm64 copy does not ship
@pytest.mark.parametrize("argv,message", [
    (["paper_table2.py", "--subset-seed", "-1"], "the subset seed must be an integer >= 0, got -1"),
    (["sweep_table2_int8.py", "--subset-seed", "-2"], "the subset seed must be an integer >= 0, got -2"),
    (["table2_angles.py", "--angles", "30", "--subset-seed", "-3"], "the subset seed must be an integer >= 0"),
    (["table2_angles.py", "--angles", "30"], "give the pretraining run to measure"),
])
def test_table2_scripts_refuse_bad_arguments_before_any_run(argv, message):
    import subprocess
    import sys

    from conftest import REPO_ROOT
    proc = subprocess.run([sys.executable, f"benchmarks/{argv[0]}", *argv[1:]], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr  # argparse's exit, before any run
