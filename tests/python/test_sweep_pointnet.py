"""benchmarks/sweep_hparams.py's pnlong stage: its decision rule and its plan, on made-up trial records."""

import math

import pytest

from conftest import benchmark_module

STEPS = 831


@pytest.fixture(scope="module")
def sweep():
    return benchmark_module("sweep_hparams")


def trial(sweep, method, lr_zo, clip, accs, losses=None, diverged=False, eps=None):
    """A pnlong record with the given validation accuracies (losses falling unless given)."""
    losses = losses or [3.0 - 0.1 * i for i in range(len(accs))]
    curve = [dict(step=i, train_loss=l, val_accuracy=a, weight_norm=65.0) for i, (a, l) in enumerate(zip(accs, losses))]
    return dict(sweep._pn_setting(method, lr_zo, clip, eps=eps), stage="pnlong", steps=STEPS, diverged=diverged,
                curve=curve)


@pytest.mark.training  # reads the benchmark script, which the emulated arm64 copy does not ship
def test_a_setting_must_beat_the_incumbent_by_the_margin_and_be_stable(sweep):
    m = "zo-feat-cls2"
    inc = trial(sweep, m, 3e-4, 1.0, [40, 50, 50])
    short = trial(sweep, m, 1e-4, 1.0, [40, 51, 51.4])  # +1.2: within noise
    rising = trial(sweep, m, 1e-3, 1.0, [40, 60, 60], losses=[3.0, 2.5, 2.8])  # its train loss rises at the end
    blown = trial(sweep, m, 1e-4, 0.0, [40, 70, 70], diverged=True)
    assert sweep.pn_score(inc) == 50 and sweep.pn_score(blown) == 0
    assert sweep.pn_verdict([short, rising, blown], STEPS, m) == (None, None)  # no incumbent, no verdict
    assert sweep.pn_verdict([inc, short, rising, blown], STEPS, m) == (inc, None)
    # two winners within PN_NEAR of each other: the smaller largest step lr_zo * clip is chosen, not the higher score
    big = trial(sweep, m, 1e-3, 1.0, [40, 53, 53])
    small = trial(sweep, m, 3e-5, 10.0, [40, 52, 52])
    assert sweep.pn_verdict([inc, big, small, short], STEPS, m) == (inc, small)
    # a winner clearly above the others is chosen whatever its step; other methods' and lengths' trials are ignored
    best = trial(sweep, m, 1e-4, 0.0, [40, 56, 56])
    other = dict(trial(sweep, "zo-feat-cls1", 3e-5, 10.0, [40, 90, 90]))
    longer = dict(small, steps=2 * STEPS, curve=best["curve"])
    assert sweep.pn_verdict([inc, big, small, best, other, longer], STEPS, m) == (inc, best)
    assert sweep._pn_largest_step(best) == math.inf


@pytest.mark.training  # reads the benchmark script, which the emulated arm64 copy does not ship
def test_eps_is_tried_at_a_methods_best_setting_once_its_grid_has_run(sweep):
    budget = {"confirm": STEPS}
    grid = sweep.PN_LONG_GRID["full-zo"]
    plan = sweep.pnlong_stage([], budget)
    assert len(plan) == sum(len(g) for g in sweep.PN_LONG_GRID.values())
    assert plan[0] == sweep._pn_setting("zo-feat-cls2", 3e-4, 1.0)  # the largest gap first, incumbent first
    done = [trial(sweep, "full-zo", *setting, [5, 6 + i, 6 + i]) for i, setting in enumerate(grid[:-1])]
    assert sweep.pnlong_stage(done, budget) == plan
    done.append(trial(sweep, "full-zo", *grid[-1], [5, 6, 30], losses=[3.7, 3.6, 3.9]))  # best, but unstable
    top = grid[-2]
    assert sweep.pnlong_stage(done, budget) == plan + [sweep._pn_setting("full-zo", *top, eps=e)
                                                       for e in sweep.PN_LONG_EPS]


@pytest.mark.training  # reads the benchmark script, which the emulated arm64 copy does not ship
def test_the_longer_pairs_start_with_the_incumbent_and_are_judged_at_their_own_length(sweep):
    plan = sweep.pnlonger_stage([], {"long": 5 * STEPS})
    assert plan[0] == sweep._pn_setting("zo-feat-cls2", 3e-4, 1.0) and len(plan) == 2
    inc, alt = (dict(trial(sweep, "zo-feat-cls2", c["lr_zo"], c["grad_clip"], accs), stage="pnlonger", steps=5 * STEPS)
                for c, accs in zip(plan, ([40, 60, 60], [40, 62, 62])))
    short = trial(sweep, "zo-feat-cls2", 3e-4, 1.0, [40, 50, 50])
    assert sweep.pn_verdict([short, inc, alt], 5 * STEPS, "zo-feat-cls2") == (inc, alt)
    assert sweep.pn_verdict([short, inc, alt], STEPS, "zo-feat-cls2") == (short, None)


@pytest.mark.training  # reads the benchmark script, which the emulated arm64 copy does not ship
def test_a_batch_size_is_judged_against_batch_32_at_equal_epochs_and_the_largest_winner_is_chosen(sweep):
    m = "full-zo"
    plan = sweep.pnbatch_stage([], {"long": 10 * STEPS, "batch_size": 32})
    assert [c["method"] for c in plan] == list(sweep.PN_LONG_GRID) and plan[1] == sweep._pn_setting(m, 1e-3, 1.0)
    # at a smaller batch, Full ZO's rate scaled by batch / 32 as well
    assert sweep.pnbatch_stage([], {"long": 20 * STEPS, "batch_size": 16}) == plan + [sweep._pn_setting(m, 5e-4, 1.0)]

    def batch(size, accs, epochs=10.0, lr_zo=1e-3, **kw):
        return dict(trial(sweep, m, lr_zo, 1.0, accs, **kw), stage="pnbatch", batch_size=size, epochs=epochs,
                    steps=round(10 * STEPS * 32 / size), g_clipped_fraction=0.9, seconds=100.0)

    inc = batch(32, [5, 20, 20])
    assert sweep.pn_batch_verdict([batch(16, [5, 30, 30])], m) == (None, None)  # no batch 32, no verdict
    near = batch(16, [5, 21, 21.4])  # +1.2: within noise
    assert sweep.pn_batch_verdict([inc, near], m) == (inc, None)
    b16, b8 = batch(16, [5, 23, 23]), batch(8, [5, 24, 24])  # both win, within PN_NEAR: the larger batch
    assert sweep.pn_batch_verdict([inc, b16, b8], m) == (inc, b16)
    b8_far = batch(8, [5, 30, 30])
    assert sweep.pn_batch_verdict([inc, b16, b8_far], m) == (inc, b8_far)
    # an unstable winner, another method's trial and a trial of another length are not candidates
    shaky = batch(8, [5, 30, 30], losses=[3.0, 2.5, 2.8])
    other = dict(batch(16, [5, 90, 90]), method="zo-feat-cls1")
    shorter = batch(16, [5, 90, 90], epochs=3.0)
    assert sweep.pn_batch_verdict([inc, shaky, other, shorter], m) == (inc, None)
    assert "**batch 8, lr_zo 0.001** wins" in sweep.pn_batch_table([inc, b16, b8_far])
    # a scaled rate at batch 32 is no incumbent; at one batch the smaller of two winning rates is chosen
    scaled16 = batch(16, [5, 23.5, 23.5], lr_zo=5e-4)
    assert sweep.pn_batch_verdict([batch(32, [5, 9, 9], lr_zo=5e-4), b16], m) == (None, None)
    assert sweep.pn_batch_verdict([inc, b16, scaled16], m) == (inc, scaled16)


@pytest.mark.training  # reads the benchmark script, which the emulated arm64 copy does not ship
def test_the_session_9_tables_take_the_lengths_the_trials_ran(sweep):
    shown = dict(g_raw_abs_q10_50_90_last_epoch=[0.5, 3.0, 9.0], g_clipped_fraction=0.8, seconds=300.0)
    short = dict(trial(sweep, "zo-feat-cls2", 3e-4, 1.0, [40, 50, 50]), **shown)
    longer = dict(short, stage="pnlonger", steps=5 * STEPS)
    other = dict(short, stage="pnbatch", steps=7)
    text = sweep.pn_s9_tables([longer, short, other])
    assert text.index(f"### {STEPS} steps (pnlong") < text.index(f"### {5 * STEPS} steps (pnlonger")
    assert "### 7 steps" not in text


@pytest.mark.training  # reads the benchmark script, which the emulated arm64 copy does not ship
def test_a_head_rate_is_judged_against_the_batch_16_defaults_and_the_largest_batch_winner_is_chosen(sweep):
    m = "zo-feat-cls2"
    assert [(c["method"], c["lr_bp"]) for c in sweep.pnhead_stage([], {"batch_size": 8})] == [(m, 0.03), (m, 0.015)]
    assert [c["lr_bp"] for c in sweep.pnhead_stage([], {"batch_size": 16})] == [0.015]

    def run(stage, size, lr_bp, accs, epochs=10.0, **kw):
        setting = dict(sweep._pn_setting(m, 3e-4, 1.0, lr_bp=lr_bp), stage=stage, batch_size=size, epochs=epochs,
                       steps=round(10 * STEPS * 32 / size), g_clipped_fraction=0.9, seconds=100.0)
        return dict(trial(sweep, m, 3e-4, 1.0, accs, **kw), **setting)

    inc = run("pnbatch", 16, 0.03, [40, 56, 56])
    old8 = run("pnbatch", 8, 0.03, [40, 70, 70])  # session 10's batch-8 trial is pnbatch's, not a candidate here
    assert sweep.pn_head_verdict([old8, run("pnhead", 16, 0.015, [40, 60, 60])]) == (None, None)
    near = run("pnhead", 16, 0.015, [40, 57, 57.4])  # +1.2: within noise
    assert sweep.pn_head_verdict([inc, old8, near]) == (inc, None)
    b16, b8 = run("pnhead", 16, 0.015, [40, 58, 58]), run("pnhead", 8, 0.03, [40, 59, 59])
    assert sweep.pn_head_verdict([inc, b16, b8]) == (inc, b16)  # both win within PN_NEAR: the larger batch
    b8_slow = run("pnhead", 8, 0.015, [40, 59, 59])
    assert sweep.pn_head_verdict([inc, b8_slow, b8]) == (inc, b8)  # equal batches: the defaults' rate
    shaky = run("pnhead", 8, 0.015, [40, 70, 70], losses=[3.0, 2.5, 2.8])
    shorter = run("pnhead", 8, 0.015, [40, 70, 70], epochs=3.0)
    assert sweep.pn_head_verdict([inc, shaky, shorter]) == (inc, None)
    text = sweep.pn_s10_tables([inc, old8, b16, b8])
    assert "### pnhead" in text and "**batch 16, lr_bp 0.015** wins (58.00 against 56.00)" in text
    assert sweep.pn_s10_tables([inc, old8]) == sweep.pn_batch_table([inc, old8])


@pytest.mark.training  # reads the benchmark script, which the emulated arm64 copy does not ship
def test_augmentation_is_judged_against_the_same_defaults_without_it_at_the_same_length(sweep):
    assert [(c["method"], c["augment"]) for c in sweep.pnaugment_stage([], {"batch_size": 32})] == [
        ("full-zo", "none"), ("full-zo", "pointcloud")]
    assert [c["method"] for c in sweep.pnaugment_stage([], {"batch_size": 16})] == ["zo-feat-cls2"] * 2
    # without augmentation a trial's key is what it was before the field existed, so pnbatch's trials count as run
    plain = sweep.pnaugment_stage([], {"batch_size": 16})[0]
    assert sweep.key(plain, 7) == sweep.key(sweep._pn_setting("zo-feat-cls2", 3e-4, 1.0), 7) != sweep.key(
        dict(plain, augment="pointcloud"), 7)
    m = "full-zo"

    def run(stage, accs, steps=2760, augment=None, **kw):
        rec = dict(trial(sweep, m, 1e-3, 1.0, accs, **kw), stage=stage, batch_size=32, epochs=10.0, steps=steps,
                   g_clipped_fraction=0.9, seconds=100.0)
        return rec if augment is None else dict(rec, augment=augment)

    old = run("pnbatch", [5, 40, 40], steps=2770)  # before the small-last-batch rule: another length, no incumbent
    rerun = run("pnaugment", [5, 18, 18], augment="none")
    near = run("pnaugment", [5, 19, 19.4], augment="pointcloud")
    assert sweep.pn_augment_verdict([old, near], m) == (None, None)
    assert sweep.pn_augment_verdict([old, rerun, near], m) == (rerun, None)
    wins = run("pnaugment", [5, 20, 20], augment="pointcloud")
    assert sweep.pn_augment_verdict([old, rerun, wins], m) == (rerun, wins)
    assert sweep.pn_augment_verdict([old, rerun, dict(wins, losses=None, curve=[
        dict(c, train_loss=l) for c, l in zip(wins["curve"], [3.0, 2.5, 2.8])])], m) == (rerun, None)  # unstable
    text = sweep.pn_augment_table([old, rerun, wins])
    assert "| full-zo + augment | 32 |" in text and "**augmentation wins** (20.00 against 18.00)" in text
