"""PointNet on ModelNet40: the four presets learn on real shapes in FP32, INT8 and INT8*, augmentation is seeded and
resumable, and the weights do not depend on the thread count. Shapes are cut to a fixed subset of their points so
that each preset's few hundred steps take seconds (the per-point layers cost is proportional to the points)."""

from dataclasses import replace

import numpy as np
import pytest

import elasticzo
from elasticzo import _core, memory
from elasticzo.data import load_dataset
from elasticzo.data.augment import JITTER_CLIP, augment_points
from elasticzo.hparams import defaults
from elasticzo.methods import METHODS

POINTS = 16
CHANCE = 1 / 40
# Test accuracy the presets with a backprop part must beat after 256 steps on the class-balanced test cut, where
# always answering one class (or the training set's class prior, the first thing every method learns) scores
# exactly CHANCE: 2x chance is 5 standard errors above it on 800 shapes. Cls2 trains only the last layer by
# backprop, on features that ZO has barely moved yet (6.4% measured); Cls1 and Full BP reach 3x.
MIN_ACCURACY = {"zo-feat-cls2": 2 * CHANCE, "zo-feat-cls1": 3 * CHANCE, "full-bp": 3 * CHANCE}


def _cut(ds, picked, points=POINTS, seed=0):
    """The shapes at `picked`, each cut to the same random `points` of its 1,024 points."""
    keep = np.sort(np.random.default_rng(seed).choice(ds.x.shape[1], points, replace=False))
    cut = ds.subset(picked)
    return replace(cut, x=np.ascontiguousarray(cut.x[:, keep]))


@pytest.fixture(scope="module")
def modelnet(modelnet_dir):
    """4,096 training shapes across all classes (the file is sorted by class) and 20 test shapes of every class."""
    train = load_dataset("modelnet40", modelnet_dir.parent, "train")
    test = load_dataset("modelnet40", modelnet_dir.parent, "test")
    rng = np.random.default_rng(0)
    balanced = np.concatenate([rng.choice(np.flatnonzero(test.y == c), 20, replace=False) for c in range(40)])
    return _cut(train, rng.choice(len(train), 4096, replace=False)), _cut(test, balanced)


def _trainer(method, seed=0, **kw):
    hp = defaults("pointnet", "modelnet40", method)
    model = elasticzo.models.pointnet(seed=seed)
    tr = elasticzo.ElasticZO(model, method=method, lr_zo=hp.lr_zo, lr_bp=hp.lr_bp, eps=hp.eps,
                             grad_clip=hp.grad_clip, seed=seed, **kw)
    return tr, 32  # the batch these tests' step counts and bounds were set at (the ZO-Feat methods' tuned one is 16)


def _int8_trainer(method, precision, seed=0, **kw):
    model = elasticzo.models.pointnet(seed=seed, precision="int8")
    hp = defaults("pointnet", "modelnet40", method)
    return elasticzo.ElasticZO(model, method=method, precision=precision, gradient_bits=hp.gradient_bits,
                               zo_range=hp.zo_range, seed=seed, **kw)


PRECISIONS = ["fp32", "int8", "int8-intonly"]


def _trainer_in(method, precision, **kw):
    """A trainer with PointNet's defaults in `precision` (batch 32 for all)."""
    return _trainer(method, **kw)[0] if precision == "fp32" else _int8_trainer(method, precision, **kw)


@pytest.mark.training
@pytest.mark.parametrize("method", [m for m in METHODS if m != "full-zo"])
def test_presets_with_backprop_beat_chance_on_real_modelnet40(modelnet, method):
    train, test = modelnet
    tr, batch = _trainer(method)
    tr.fit(train, epochs=2, batch_size=batch, progress=False)  # 256 steps
    acc = tr.evaluate(test)["accuracy"]
    assert acc > MIN_ACCURACY[method], (method, acc, tr.history[-1]["train_loss"])


@pytest.mark.training
@pytest.mark.parametrize("precision", PRECISIONS)
def test_full_zo_learns_on_real_modelnet40(modelnet, precision):
    """Full ZO moves all 815,400 weights along one random direction per step: in a few hundred steps it learns the
    class prior (the loss falls from ln 40 towards the prior's entropy, 3.43) but not yet the shapes (2.5-3.1% on the
    balanced cut after 384-512 steps, measured); the paper's 32% takes many epochs (benchmarks/paper_table1.py). So
    this checks that the training loss falls clearly from epoch to epoch (the balanced test cut's loss cannot show
    it: the prior is wrong for it). INT8 and INT8* likewise."""
    train, _ = modelnet
    tr = _trainer_in("full-zo", precision)
    tr.fit(train, epochs=2, batch_size=32, progress=False)
    losses = [h["train_loss"] for h in tr.history]
    assert losses[1] < losses[0] - 0.03 and losses[0] < np.log(40) + 0.05, losses


@pytest.mark.parametrize("precision", PRECISIONS)
def test_one_and_two_threads_give_bit_identical_weights(modelnet, precision):
    train = modelnet[0].subset(range(96))
    weights = []
    threads = _core.num_threads()
    try:
        for n in (1, 2):
            _core.set_num_threads(n)
            tr = _trainer_in("zo-feat-cls1", precision, augment="pointcloud")
            tr.fit(train, epochs=1, batch_size=32, progress=False)
            weights.append(tr.model.state_dict())
    finally:
        _core.set_num_threads(threads)
    for name, value in weights[0].items():
        np.testing.assert_array_equal(value, weights[1][name], err_msg=name)


# ElasticZO-INT8 and INT8* (precision int8 / int8-intonly), each preset on the same cut, with PointNet's defaults
# (NITI's mu schedule from 3: hparams). Integer arithmetic gives the same bits on every ISA, thread count and
# machine, so each accuracy here is exactly what was measured: Full BP 17.25%, Cls1 10.38% (INT8*: 9.88%) after 2
# epochs, Cls2 9.50% (INT8*: 9.63%) after 3 (Cls2 needs the third: 4.88% after 2). With the paper's mu 5 Full BP
# reached 3.6% after 2 epochs.
# INT8* differs from INT8 only in the ZO part's sign: Cls1 here, Full ZO above (Cls2 INT8*: 9.63%, left out for time).
INT8_RUNS = [("int8", "full-bp", 2, 3 * CHANCE), ("int8", "zo-feat-cls1", 2, 3 * CHANCE),
             ("int8-intonly", "zo-feat-cls1", 2, 3 * CHANCE), ("int8", "zo-feat-cls2", 3, 2 * CHANCE)]


@pytest.mark.training
@pytest.mark.parametrize("precision,method,epochs,minimum", INT8_RUNS)
def test_int8_presets_beat_chance_on_real_modelnet40(modelnet, precision, method, epochs, minimum):
    train, test = modelnet
    tr = _int8_trainer(method, precision)
    tr.fit(train, epochs=epochs, batch_size=32, progress=False)
    acc = tr.evaluate(test, batch_size=32)["accuracy"]
    assert acc > minimum, (precision, method, acc, [h["train_loss"] for h in tr.history])
    if precision == "int8-intonly":  # the integer sign agrees with the float one on nearly every step
        assert tr.history[-1]["sign_agreement"] > 0.9, tr.history[-1]


def test_gradient_bits_starts_the_mu_schedule_where_asked():
    paper = elasticzo.ElasticZO(elasticzo.models.lenet5(seed=0, precision="int8"), method="full-bp")
    assert [paper.gradient_bits(e) for e in (0, 19, 20, 49, 50)] == [5, 5, 4, 4, 3]
    tr = _int8_trainer("full-bp", "int8")
    assert [tr.gradient_bits(e) for e in (0, 19, 20, 49, 50)] == [3, 3, 2, 2, 1] and tr.config["gradient_bits"] == 3
    low = elasticzo.ElasticZO(elasticzo.models.pointnet(seed=0, precision="int8"), method="full-bp", gradient_bits=1)
    assert low.gradient_bits(50) == 0
    for bad in (8, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match=r"gradient_bits .* must be an int in \[0, 7\]"):
            elasticzo.ElasticZO(elasticzo.models.lenet5(seed=0), method="full-bp", gradient_bits=bad)


def test_cli_takes_pointnets_int8_mu_and_keeps_it_on_resume(modelnet_dir, tmp_path):
    import json

    from test_cli import cli

    args = ["train", "--dataset", "modelnet40", "--data-dir", str(modelnet_dir.parent), "--precision", "int8",
            "--method", "zo-feat-cls1", "--train-samples", "32", "--test-samples", "32", "--no-progress"]
    cli(*args, "--epochs", "0", "--out", str(tmp_path / "default"))
    cli(*args, "--epochs", "1", "--gradient-bits", "4", "--out", str(tmp_path / "four"))
    for run, mu in (("default", 3), ("four", 4)):
        assert json.loads((tmp_path / run / "config.json").read_text())["config"]["gradient_bits"] == mu
    refused = cli(*args, "--epochs", "2", "--gradient-bits", "5", "--out", str(tmp_path / "four"), "--resume",
                  check=False)
    assert refused.returncode != 0 and "--gradient-bits 5 (the run has 4)" in refused.stderr


@pytest.mark.parametrize("points", [1, 50, 1024])
def test_fused_last_per_point_layer_gives_the_bits_of_the_layers_one_by_one(points):
    """A forward pass that no backward follows runs mlp5, its ReLU and the max-pool as one kernel (the
    (points x 1,024) output is never written); each layer called on its own runs them apart: the same bits."""
    model = elasticzo.models.pointnet(seed=3)
    x = np.random.default_rng(points).standard_normal((3, points, 3)).astype(np.float32)
    h = x
    for i in range(len(model)):
        h = model[i][1].forward(h)
    np.testing.assert_array_equal(model.forward(x), h)


def _zo_steps(method, fuse, threads, batch, steps=2):
    """Losses of `steps` ZO steps on random shapes and the weights after them, with the fusion on or off."""
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((steps, batch, POINTS, 3)).astype(np.float32)
    y = rng.integers(0, 40, (steps, batch)).astype(np.int32)
    saved = _core.num_threads()
    try:
        _core.set_num_threads(threads)
        tr, _ = _trainer(method, seed=4)
        tr.model.fuse_point_pool = fuse
        losses = [tr.core.step(x[i], y[i]) for i in range(steps)]
    finally:
        _core.set_num_threads(saved)
    return [(s["loss"], s["loss_plus"], s["loss_minus"]) for s in losses], tr.model.state_dict()


@pytest.mark.parametrize("method,batch", [("full-zo", 8), ("zo-feat-cls1", 8), ("zo-feat-cls1", 1)])
@pytest.mark.parametrize("threads", [1, 2])
def test_zo_steps_through_the_fused_kernel_give_the_bits_of_the_layers_apart(method, batch, threads):
    """A ZO pass computes each ZO layer with theta +- eps z built aside (the stored weights never move), so the fused
    mlp5 + ReLU + max-pool kernel must take mlp5's weights through the same perturbed operand as the layer's own
    forward: a kernel reading the stored weights would run mlp5 unperturbed in both passes and the losses would
    differ. Batch 1 makes the ZO pass build mlp5's weights by blocks, where the layers run apart."""
    fused_losses, fused = _zo_steps(method, True, threads, batch)
    apart_losses, apart = _zo_steps(method, False, threads, batch)
    assert fused_losses == apart_losses
    start = elasticzo.models.pointnet(seed=4).state_dict()
    assert not np.array_equal(fused["mlp5.weight"], start["mlp5.weight"])  # mlp5 is a ZO layer in both presets
    for name, value in fused.items():
        np.testing.assert_array_equal(value, apart[name], err_msg=name)


@pytest.mark.parametrize("method", ["full-zo", "zo-feat-cls1"])
def test_diverged_step_through_the_fused_kernel_leaves_every_weight_bit_identical(method):
    x = np.random.default_rng(2).standard_normal((8, POINTS, 3)).astype(np.float32)
    y = np.arange(8, dtype=np.int32)
    tr, _ = _trainer(method, seed=4)
    tr.core.step(x, y)
    tr.model.set_parameter("fc3.weight", np.full((40, 256), 3e38, np.float32))  # the logits overflow
    before = tr.model.state_dict()
    with pytest.raises(RuntimeError, match="loss is not finite at step 1"):
        tr.core.step(x, y)
    for name, value in tr.model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


@pytest.mark.parametrize("plan", ["static", "lifetime"])
@pytest.mark.parametrize("method", ["full-zo", "zo-feat-cls1"])
def test_fused_kernel_takes_its_perturbed_weights_and_scratch_from_the_plan(plan, method):
    """The fused pass builds mlp5's perturbed weights and runs its kernel in the workspace the plan lists for mlp5:
    a step allocates nothing beyond the plan (a ScratchBuffer the arena cannot hold would be counted apart)."""
    r = memory.memory_report("pointnet", 4, method, memory_plan=plan)
    assert r["measured"] == r["planned"]


def test_augmentation_is_seeded_rotates_about_z_and_jitters_a_little():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-1, 1, (5, 7, 3)).astype(np.float32)
    a = augment_points(pts, seed=1, epoch=2, batch=3)
    np.testing.assert_array_equal(a, augment_points(pts, seed=1, epoch=2, batch=3))
    for other in ((2, 2, 3), (1, 3, 3), (1, 2, 4)):
        assert not np.array_equal(a, augment_points(pts, *other))
    assert a.dtype == np.float32 and a.shape == pts.shape
    # z moves only by the jitter; the distance from the z axis by at most the jitter of x and y
    assert np.abs(a[..., 2] - pts[..., 2]).max() <= JITTER_CLIP + 1e-6
    r0, r1 = np.hypot(pts[..., 0], pts[..., 1]), np.hypot(a[..., 0], a[..., 1])
    assert np.abs(r1 - r0).max() <= np.sqrt(2) * JITTER_CLIP + 1e-6
    # one angle per cloud: with the jitter removed, each cloud is a rigid rotation of its points
    angles = np.arctan2(a[..., 1], a[..., 0]) - np.arctan2(pts[..., 1], pts[..., 0])
    spread = np.abs(np.angle(np.exp(1j * (angles - angles[:, :1]))))
    assert spread.max() < 0.5 and np.abs(np.angle(np.exp(1j * angles[:, 0]))).std() > 0.1
    with pytest.raises(ValueError, match=r"float32 point clouds \(B, P, 3\)"):
        augment_points(pts[..., :2], 0, 0, 0)


def test_augmented_run_resumes_bit_identically(modelnet, tmp_path):
    train = modelnet[0].subset(range(80))
    whole, _ = _trainer("zo-feat-cls2", augment="pointcloud")
    whole.fit(train, epochs=2, batch_size=32, progress=False)
    half, _ = _trainer("zo-feat-cls2", augment="pointcloud")

    def stop(tr, loss):
        if tr.core.steps_done == 4:  # mid second epoch (3 batches per epoch)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        half.fit(train, epochs=2, batch_size=32, progress=False, on_step=stop)
    half.save(tmp_path / "ckpt.safetensors")
    resumed = elasticzo.ElasticZO.load(tmp_path / "ckpt.safetensors")
    assert resumed.augment == "pointcloud"
    resumed.fit(train, until_epoch=2, batch_size=32, progress=False)
    for name, value in whole.model.state_dict().items():
        np.testing.assert_array_equal(value, resumed.model.state_dict()[name], err_msg=name)
    plain, _ = _trainer("zo-feat-cls2")
    plain.fit(train, epochs=2, batch_size=32, progress=False)
    assert not np.array_equal(plain.model.state_dict()["fc3.weight"], whole.model.state_dict()["fc3.weight"])


def test_augmentation_refuses_what_is_not_a_point_cloud():
    tr = elasticzo.ElasticZO(elasticzo.models.lenet5(seed=0), method="full-bp", augment="pointcloud")
    x = np.zeros((4, 1, 28, 28), np.float32)
    with pytest.raises(ValueError, match=r"needs point clouds \(points, 3\)"):
        tr.fit(x, np.zeros(4, np.int64), progress=False)
    with pytest.raises(ValueError, match="unknown augmentation 'flip'"):
        elasticzo.ElasticZO(elasticzo.models.lenet5(seed=0), method="full-bp", augment="flip")


@pytest.mark.training  # runs the reproduction script, which the emulated arm64 copy does not ship
def test_paper_table1_reports_the_modelnet40_column_as_far_as_the_runs_got(tmp_path):
    """benchmarks/paper_table1.py --report-only: each run at the epoch it reached, beside the paper's number."""
    import json
    import subprocess
    import sys

    from conftest import REPO_ROOT

    for method, epochs in (("full-zo", 3), ("zo-feat-cls2", 3), ("zo-feat-cls1", 3), ("full-bp", 2)):
        run = tmp_path / "runs" / "modelnet40" / method
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text("".join(
            json.dumps({"epoch": e + 1, "train_loss": 3.0 - e / 10, "test_accuracy": (e + 1) / 10, "seconds": 9.0})
            + "\n" for e in range(epochs)))
        (run / "config.json").write_text(json.dumps({"info": {"batch_size": 32}, "config": {
            "lr_zo": 3e-3, "lr_bp": 0.03, "eps": 1e-3, "grad_clip": 1.0, "augment": "none"}}))
    table = tmp_path / "table.md"
    proc = subprocess.run([sys.executable, "benchmarks/paper_table1.py", "--datasets", "modelnet40", "--epochs", "3",
                           "--report-only", "--out", str(tmp_path / "runs"), "--table", str(table), "--plot",
                           str(tmp_path / "loss.png")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = table.read_text()
    assert "of PointNet, FP32, after **3 epochs**" in text
    assert "| Full ZO | 30.00 | 32.05 | -2.05 |" in text and "| Full BP | 20.00 (2) | 71.60 | -51.60 |" in text
    assert "- ModelNet40 Full BP: 1: 10.00, 2: 20.00" in text
    assert "Seed" not in text  # runs at the library's default seed
    cfg = tmp_path / "runs" / "modelnet40" / "full-zo" / "config.json"
    saved = json.loads(cfg.read_text())
    saved["config"]["seed"] = 1
    cfg.write_text(json.dumps(saved))
    proc = subprocess.run(proc.args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "A run stopped short shows its last epoch in brackets. Seeds: 0, 1." in table.read_text()
    bad = subprocess.run(proc.args + ["--seed", "-1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--seed must lie in [0, 2^64), got -1" in bad.stderr


@pytest.mark.training  # reads the benchmark script, which the emulated arm64 copy does not ship
def test_paper_table1_names_its_default_outputs_by_every_setting_that_makes_other_runs():
    """A run of another seed wrote its table over the recorded seed-0 table (session 11): the seed is in the name."""
    from conftest import benchmark_module

    names = benchmark_module("paper_table1").default_outputs
    assert [p.name for p in names("fp32", ["modelnet40"])] == ["table1_fp32_modelnet40.md",
                                                               "table1_loss_modelnet40.png"]
    assert [p.name for p in names("fp32", ["modelnet40"], 0)] == [p.name for p in names("fp32", ["modelnet40"])]
    assert [p.name for p in names("fp32", ["modelnet40"], 1)] == ["table1_fp32_modelnet40_seed1.md",
                                                                  "table1_loss_modelnet40_seed1.png"]
    assert [p.name for p in names("int8", ["mnist", "fashion-mnist"], 2)] == ["table1_int8_seed2.md",
                                                                              "table1_int8_loss_seed2.png"]
