"""Memory of a training step (SPEC §4): the analytic model against the paper's checked figures, the planned and
measured bytes under both allocation policies, bit-identical training across them, the partition chosen for a
memory budget, and the `elasticzo memory` command."""

import json
import math
import re

import numpy as np
import pytest

import elasticzo
from elasticzo import _core
from elasticzo import memory
from elasticzo.methods import METHODS
from elasticzo.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from test_cli import cli

MIB, KIB = 2**20, 2**10
# SPEC §4, checked: LeNet-5 FP32 Full ZO and Full BP in MiB; what Cls2 and Cls1 add to Full ZO in KiB.
SPEC_LENET = {32: (2.61, 5.23, 4.57, 65.3), 256: (18.05, 36.1, 13.3, 221.0)}


def shows_as(value, paper):
    """Whether `value` prints as the paper's figure with as many decimals: the paper rounds (18.05 MiB for
    18.046) and sometimes truncates (2.61 MiB for 2.6155)."""
    decimals = len(str(paper).split(".")[1])
    scaled = value * 10**decimals
    return paper * 10**decimals in (pytest.approx(round(scaled)), pytest.approx(math.floor(scaled)))


@pytest.fixture(scope="module")
def lenet_reports():
    return {(b, m, p): memory.memory_report("lenet5", b, m, memory_plan=p)
            for b in SPEC_LENET for m in METHODS for p in memory.MEMORY_PLANS}


@pytest.mark.parametrize("batch", sorted(SPEC_LENET))
def test_analytic_model_reproduces_every_checked_lenet5_figure(lenet_reports, batch):
    zo, bp, cls2_kib, cls1_kib = SPEC_LENET[batch]
    total = {m: lenet_reports[batch, m, "static"]["model"]["total"] for m in METHODS}
    assert shows_as(total["full-zo"] / MIB, zo)
    assert shows_as(total["full-bp"] / MIB, bp)
    assert shows_as((total["zo-feat-cls2"] - total["full-zo"]) / KIB, cls2_kib)
    assert shows_as((total["zo-feat-cls1"] - total["full-zo"]) / KIB, cls1_kib)


@pytest.mark.parametrize("batch", sorted(SPEC_LENET))
@pytest.mark.parametrize("method", METHODS)
def test_static_plan_and_measurement_are_the_model_plus_workspace(lenet_reports, batch, method):
    r = lenet_reports[batch, method, "static"]
    for source in ("planned", "measured"):
        for cat in memory.CATEGORIES:
            if cat != "workspace":
                assert r[source][cat] == r["model"][cat], (source, cat)
        assert r[source]["total"] == r["model"]["total"] + r[source]["workspace"], source
    assert r["model"]["workspace"] == 0
    # Every kernel's temporary space comes from the plan: the step allocates nothing beyond it.
    assert r["measured"] == r["planned"]


def test_lifetime_plan_shrinks_full_zo_2x_and_cls1_1_7x(lenet_reports):
    static = {m: lenet_reports[32, m, "static"]["model"]["total"] for m in METHODS}
    peak = {m: lenet_reports[32, m, "lifetime"]["measured"]["total"] for m in METHODS}
    assert static["full-zo"] / peak["full-zo"] >= 2.0
    assert static["zo-feat-cls1"] / peak["zo-feat-cls1"] >= 1.7
    for m in METHODS:
        assert lenet_reports[32, m, "lifetime"]["measured"] == lenet_reports[32, m, "lifetime"]["planned"], m


def test_pointnet_at_batch_128_follows_the_papers_convention():
    # In-place per-point ReLUs: Cls2 adds 0.0087% and Cls1 0.12% to Full ZO (SPEC §4, the paper's Fig. 6).
    net = elasticzo.models.pointnet()
    shape = (128, 1024, 3)
    total = {c: memory.analytic_model(net, shape, c)["total"] for c in (6, 7, 8)}
    assert shows_as(100 * (total[7] - total[8]) / total[8], 0.0087)
    assert shows_as(100 * (total[6] - total[8]) / total[8], 0.12)
    plan = net.plan(list(shape), 7, "static")["bytes"]
    model = memory.analytic_model(net, shape, 7)
    for cat in ("activations", "gradients", "errors"):
        assert plan[cat] == model[cat], cat


@pytest.mark.parametrize("zo_layers", [8, 7, 6])
def test_pointnet_lifetime_plan_holds_no_buffer_for_what_the_fused_pass_never_writes(zo_layers):
    """mlp5's (points x 1,024) output, 512 MiB at batch 128, is never written when mlp5, its ReLU and the max-pool run
    as one kernel (every ZO preset: no backward goes through them); the lifetime plan leaves it out, the static plan
    (the paper's model) keeps it."""
    net = elasticzo.models.pointnet()
    shape = [16, 1024, 3]
    mlp5_output = 16 * 1024 * 1024 * 4
    mlp5 = [name for name, _ in net].index("mlp5")
    lifetime = net.plan(shape, zo_layers, "lifetime")
    static = net.plan(shape, zo_layers, "static")
    assert lifetime["fused_from_module"] == static["fused_from_module"] == [mlp5]
    assert not {"mlp5.output", "mlp_relu5.output"} & {b["name"] for b in lifetime["buffers"]}
    assert {"mlp5.output", "mlp_relu5.output"} <= {b["name"] for b in static["buffers"]}
    assert lifetime["bytes"]["activations"] < mlp5_output / 4 < static["bytes"]["activations"]
    assert net.plan(shape, 0, "lifetime")["fused_from_module"] == []  # Full BP reads mlp5's output


def test_plan_lists_every_forward_fusion_by_kind():
    """The plan records each fusion at its start module with its kind: LeNet-5's ReLU + max-pool pairs wherever no
    backward goes through them (their ReLU outputs get no buffer under the lifetime plan), PointNet's mlp5 + ReLU +
    max-pool; switching a kind off takes it out of the plan."""
    net = elasticzo.models.lenet5(seed=0)
    names = [name for name, _ in net]
    relu1, relu2 = names.index("relu1"), names.index("relu2")
    pairs = [{"module": relu1, "kind": "relu_pool", "modules": 2}, {"module": relu2, "kind": "relu_pool", "modules": 2}]
    for zo_layers in (5, 4, 3):
        lifetime = net.plan([8, 1, 28, 28], zo_layers, "lifetime")
        assert lifetime["fusions"] == pairs and lifetime["fused_from_module"] == [relu1, relu2]
        assert not {"relu1.output", "relu2.output"} & {b["name"] for b in lifetime["buffers"]}
        static = net.plan([8, 1, 28, 28], zo_layers, "static")
        assert {"relu1.output", "relu2.output"} <= {b["name"] for b in static["buffers"]}
    assert net.plan([8, 1, 28, 28], 1, "lifetime")["fusions"] == pairs[:1]  # backprop from conv2 on
    net.fuse_relu_pool = False
    assert not net.fuse_relu_pool and net.plan([8, 1, 28, 28], 5, "lifetime")["fusions"] == []
    pointnet = elasticzo.models.pointnet()
    mlp5 = [name for name, _ in pointnet].index("mlp5")
    assert pointnet.plan([4, 64, 3], 8, "lifetime")["fusions"] == [{"module": mlp5, "kind": "point_pool", "modules": 3}]


def lenet5_int8_shape():
    """LeNet-5 without biases, as the INT8 method trains it (SPEC §1: 107,550 parameters)."""
    return Sequential([("conv1", Conv2d(1, 6, 5, padding=2, bias=False)), ("relu1", ReLU()), ("pool1", MaxPool2d(2)),
                       ("conv2", Conv2d(6, 16, 5, padding=2, bias=False)), ("relu2", ReLU()),
                       ("pool2", MaxPool2d(2)), ("flatten", Flatten()), ("fc1", Linear(784, 120, bias=False)),
                       ("relu3", ReLU()), ("fc2", Linear(120, 84, bias=False)), ("relu4", ReLU()),
                       ("fc3", Linear(84, 10, bias=False))])


def test_int8_model_equations_give_the_papers_ratios():
    net = lenet5_int8_shape()
    assert net.num_params == 107550
    fp32 = elasticzo.models.lenet5()
    for batch, zo_ratio, bp_ratio, cls2_pct, cls1_pct in ((32, 1.60, 1.8, 0.26, 4.1), (256, 1.46, 1.6, 0.052, 1.4)):
        shape = (batch, 1, 28, 28)
        int8 = {c: memory.analytic_model(net, shape, c, precision="int8")["total"] for c in (0, 3, 4, 5)}
        fp32_zo = memory.analytic_model(fp32, shape, 5)["total"]
        assert shows_as(fp32_zo / int8[5], zo_ratio)
        assert shows_as(int8[0] / int8[5], bp_ratio)
        assert shows_as(100 * (int8[4] - int8[5]) / int8[5], cls2_pct)
        assert shows_as(100 * (int8[3] - int8[5]) / int8[5], cls1_pct)


def test_int8_model_is_the_equations_model(tmp_path):
    # The real INT8 LeNet-5 gives the same analytic figures as the bias-free FP32 shape above.
    net, shape = elasticzo.models.lenet5(precision="int8"), (32, 1, 28, 28)
    for c in (0, 3, 4, 5):
        assert memory.analytic_model(net, shape, c, "int8") == memory.analytic_model(lenet5_int8_shape(), shape, c,
                                                                                     "int8")


@pytest.mark.parametrize("batch,ratio", [(32, 1.60), (256, 1.46)])
def test_int8_full_zo_measured_reproduces_the_papers_ratio(batch, ratio):
    fp32 = memory.memory_report("lenet5", batch, "full-zo", memory_plan="static")
    int8 = memory.memory_report("lenet5", batch, "full-zo", precision="int8", memory_plan="static")
    assert int8["config"]["measured_by"] == "training step"
    for source in ("planned", "measured"):  # the model plus the kernels' workspace, category by category
        for cat in memory.CATEGORIES:
            if cat != "workspace":
                assert int8[source][cat] == int8["model"][cat], (source, cat)
    # The workspace is planned too (the integer kernels' scratch, the quantized input, the perturbed weights of the
    # passes): the step allocates nothing outside the plan.
    assert int8["measured"]["workspace"] == int8["planned"]["workspace"] > 0
    assert int8["measured"]["total"] == int8["model"]["total"] + int8["measured"]["workspace"]
    assert shows_as(fp32["model"]["total"] / int8["model"]["total"], ratio)
    measured = [r["measured"]["total"] - r["measured"]["workspace"] for r in (fp32, int8)]
    assert shows_as(measured[0] / measured[1], ratio)


def test_int8_full_bp_measured_from_a_real_step_is_the_model_plus_workspace():
    r = memory.memory_report("lenet5", 32, "full-bp", precision="int8", memory_plan="static")
    assert r["config"]["measured_by"] == "training step"
    for cat in memory.CATEGORIES:
        if cat != "workspace":
            assert r["measured"][cat] == r["model"][cat], cat
    assert r["measured"]["accumulators"] > 0 and r["measured"]["gradients"] == 5 * 107550
    mixed = memory.memory_report("lenet5", 32, "zo-feat-cls1", precision="int8", memory_plan="static")
    for cat in memory.CATEGORIES:  # ElasticZO-INT8's step: the model (Eq. 15) plus workspace, as Full BP's
        if cat != "workspace":
            assert mixed["measured"][cat] == mixed["model"][cat], cat
    for report in (r, mixed):  # the workspace as planned: nothing allocated per call outside the plan
        assert report["measured"]["workspace"] == report["planned"]["workspace"] > 0
        assert report["measured"]["total"] == report["model"]["total"] + report["measured"]["workspace"]


@pytest.mark.parametrize("method", METHODS)
def test_lifetime_training_is_bit_identical_to_static(method):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((48, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 48).astype(np.int32)
    results = []
    for plan in memory.MEMORY_PLANS:
        model = elasticzo.models.lenet5(seed=3)
        trainer = elasticzo.ElasticZO(model, method=method, memory_plan=plan, optimizer="adam")
        losses = [trainer.core.step(x[i:i + 16], y[i:i + 16]) for i in range(0, 48, 16)]
        results.append((losses, model.state_dict(), model.forward(x)))
    (l_s, w_s, o_s), (l_l, w_l, o_l) = results
    assert l_s == l_l
    assert all(np.array_equal(w_s[k], w_l[k]) for k in w_s)
    assert np.array_equal(o_s, o_l)


@pytest.mark.parametrize("precision", ["int8", "int8-intonly"])
def test_int8_lifetime_chunks_are_bit_identical_to_the_whole_batch(precision):
    # The lifetime plan gives an INT8 layer's forward accumulator a chunk of samples and the layer guesses the
    # batch's shift chunk by chunk; the static plan computes the whole batch at once. Batches whose shifts jump
    # (dark, bright, random, then dark again) make the guesses miss both ways; every thread count cuts other chunks.
    rng = np.random.default_rng(6)
    x = np.concatenate([np.zeros((16, 1, 28, 28), np.float32), np.ones((16, 1, 28, 28), np.float32),
                        rng.standard_normal((32, 1, 28, 28), dtype=np.float32), np.zeros((16, 1, 28, 28), np.float32)])
    x[0, 0, 3, 4] = 1.0  # one lit pixel in the dark batches
    x[64, 0, 20, 20] = -1.0
    y = rng.integers(0, 10, len(x)).astype(np.int32)
    threads = _core.num_threads()
    results = {}
    try:
        for plan, n in (("static", 1), ("lifetime", 1), ("lifetime", 2), ("lifetime", 3)):
            _core.set_num_threads(n)
            model = elasticzo.models.lenet5(seed=3, precision="int8")
            trainer = elasticzo.ElasticZO(model, method="zo-feat-cls1", seed=2, precision=precision, memory_plan=plan)
            trainer.start_epoch(0)
            grads = [trainer.core.step(x[i:i + 16], y[i:i + 16])["projected_grad"] for i in range(0, len(x), 16)]
            accumulators = model.memory_stats()["peak"]["accumulators"]
            if plan == "static":
                assert accumulators == 4 * 16 * (6 * 28 * 28 + 16 * 14 * 14 + 120 + 84 + 10)  # the whole batch
            else:
                assert accumulators <= n * 64 * 1024  # a chunk of samples: about 64 KiB of int32 sums per thread
            results[plan, n] = grads, model.state_dict(), model.forward(x[32:64])
    finally:
        _core.set_num_threads(threads)
    grads, sd, out = results["static", 1]
    assert any(g != 0 for g in grads)
    for key, (g, w, o) in results.items():
        assert g == grads, key
        assert all(np.array_equal(w[k], sd[k]) for k in sd), key
        assert np.array_equal(o, out), key


def test_measuring_a_step_leaves_the_model_untouched():
    model = elasticzo.models.lenet5(seed=1)
    before = model.state_dict()
    memory.measure_step(model, (8, 1, 28, 28), 3, "lifetime", 10)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert model.memory_stats()["current"]["total"] == 4 * model.num_params  # no buffers left behind


@pytest.mark.parametrize("plan", memory.MEMORY_PLANS)
def test_budget_picks_each_method_just_above_its_figure_and_the_next_just_below(lenet_reports, plan):
    model = elasticzo.models.lenet5()
    shape = (32, 1, 28, 28)
    figure = {m: lenet_reports[32, m, plan]["measured"]["total"] for m in METHODS}
    c_of = {"full-bp": 0, "zo-feat-cls1": 3, "zo-feat-cls2": 4, "full-zo": 5}
    for m in METHODS:
        above = memory.choose_partition(model, shape, figure[m], num_classes=10, memory_plan=plan)
        assert above["zo_layers"] == c_of[m] and above["method"] == m
        assert m in above["reason"] and str(c_of[m]) in above["reason"]
        if m == "full-zo":
            with pytest.raises(ValueError, match="even Full ZO needs"):
                memory.choose_partition(model, shape, figure[m] - 1, num_classes=10, memory_plan=plan)
            continue
        below = memory.choose_partition(model, shape, figure[m] - 1, num_classes=10, memory_plan=plan)
        assert below["zo_layers"] > c_of[m] and below["bytes"] <= figure[m] - 1


def test_trainer_takes_a_memory_budget():
    model = elasticzo.models.lenet5()
    zo_bytes = memory.measure_step(model, (32, 1, 28, 28), 5, "lifetime", 10)["total"]
    trainer = elasticzo.ElasticZO(model, memory_budget=zo_bytes, input_shape=(32, 1, 28, 28))
    assert trainer.zo_layers == 5 and trainer.method == "full-zo"
    assert "full-zo" in trainer.partition_choice["reason"]
    with pytest.raises(ValueError, match="instead of zo_layers"):
        elasticzo.ElasticZO(model, method="full-zo", memory_budget="3MiB", input_shape=(32, 1, 28, 28))
    with pytest.raises(ValueError, match="input_shape"):
        elasticzo.ElasticZO(model, memory_budget="3MiB")


@pytest.mark.parametrize("text,expected", [("3MiB", 3 * MIB), ("2.5 MB", 2_500_000), ("512KiB", 512 * KIB),
                                           ("3000000", 3_000_000), (1234, 1234)])
def test_parse_bytes(text, expected):
    assert memory.parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["3 parsecs", "", "-1MiB", "0", "nanMiB"])
def test_parse_bytes_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="memory budget"):
        memory.parse_bytes(bad)


def test_memory_command_json_and_plot(tmp_path, lenet_reports):
    proc = cli("memory", "--model", "lenet5", "--batch-size", "32", "--method", "zo-feat-cls1", "--memory-plan",
               "static", "--json", "--plot", str(tmp_path / "mem.png"))
    out = json.loads(proc.stdout)
    assert set(out) >= {"model", "planned", "measured"}
    for source in ("model", "planned", "measured"):
        assert set(out[source]) == set(memory.CATEGORIES) | {"total"}
    assert out["model"] == lenet_reports[32, "zo-feat-cls1", "static"]["model"]
    assert (tmp_path / "mem.png").read_bytes()[:4] == b"\x89PNG"
    table = cli("memory", "--method", "full-zo").stdout
    assert "model (SPEC §4)" in table and "workspace" in table and "lifetime plan" in table


def test_memory_command_int8_and_bad_options_fail_clearly():
    out = json.loads(cli("memory", "--precision", "int8", "--method", "full-zo", "--json").stdout)
    assert out["config"]["precision"] == "int8" and out["measured"]["parameters"] == 107550
    table = cli("memory", "--precision", "int8").stdout  # Cls1: measured from an ElasticZO-INT8 step
    assert "not measured" not in table and "–" not in table
    proc = cli("memory", "--method", "full-zo", "--zo-layers", "2", check=False)
    assert proc.returncode == 2 and "not both" in proc.stderr


@pytest.mark.training
def test_train_with_a_memory_budget_says_which_partition_and_refuses_too_small(tmp_path):
    proc = cli("train", "--memory-budget", "2MiB", "--train-samples", "256", "--no-progress", "--json",
               "--batch-size", "32")
    assert "memory budget 2.00 MiB" in proc.stderr
    chosen = int(re.search(r"\(C=(\d+), backprop for", proc.stderr).group(1))
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["zo_layers"] == chosen
    model = elasticzo.models.lenet5()
    assert chosen == memory.choose_partition(model, (32, 1, 28, 28), "2MiB", num_classes=10)["zo_layers"]
    proc = cli("train", "--memory-budget", "100KiB", "--train-samples", "256", "--no-progress", check=False)
    assert proc.returncode == 2 and "even Full ZO needs" in proc.stderr
    proc = cli("train", "--memory-budget", "3MiB", "--method", "full-zo", check=False)
    assert proc.returncode == 2 and "instead of --method" in proc.stderr
