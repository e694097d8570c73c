"""Resumable hyperparameter sweep (lr_zo, lr_bp, eps, grad_clip) of the four methods, by validation accuracy: LeNet-5 on
MNIST and Fashion-MNIST, or (--model pointnet) PointNet on ModelNet40.

Stages, each planned from the results of the ones before (all kept in one JSONL, so a stopped sweep continues):
  lr       coarse: every method's learning rate(s) on a grid, eps 1e-3 and clip 100, for --coarse-epochs.
  refine   coarse: at each ZO method's best lr, one axis at a time: eps, clip and (ZO-Feat) lr_bp.
  confirm  --confirm-epochs with the values chosen so far, then smaller learning rates while those are unstable.
  long     --long-epochs for the two best stable confirm runs of each ZO method, and the best with TIGHT_CLIP: ZO
           weights drift and grow, and a rate that is fine for a few epochs can blow up later.
  fmnist   the chosen values on Fashion-MNIST for --confirm-epochs.
Selection is on a validation set held out of the training set (--val samples); test accuracy is reported for the
confirm, long and fmnist runs only. All runs share seed 0 (init, data order, perturbations): differences are paired.

PointNet (--model pointnet, results in sweep_pointnet.jsonl) has one stage, pointnet, for --coarse-epochs each: a
PointNet step costs about 100 LeNet-5 steps, so its grid is small and ordered by what matters most (ZO-Feat-Cls1's
backprop rate first, then Full BP's, Full ZO's and the ZO rate of the ZO-Feat methods, then eps and clip), each axis
starting from the best value found before it, and a stopped sweep has settled the first axes. Its second stage,
pnlong (session 9, results in sweep_pointnet_s9.jsonl), runs the ZO methods for --confirm-epochs (3) each: the clip
jointly with lr_zo, lr_zo alone, then eps, each against the defaults it was run against (PN_INCUMBENT), decided by
pn_verdict, a rule fixed before its results; pnlonger runs the pairs of PN_LONGER_GRID for --long-epochs under the
same rule. The third, pnbatch (session 10, results in sweep_pointnet_s10.jsonl), runs each ZO method's
defaults for --long-epochs at the batch size given (run it once per size in PN_BATCH), judged by pn_batch_verdict
at equal epochs; the fourth, pnhead (session 11, same file), runs ZO-Feat-Cls2's (batch, lr_bp) pairs of
PN_HEAD_GRID, judged by pn_head_verdict against pnbatch's batch-16 trial; the fifth, pnaugment (session 11, same
file), runs the defaults of ZO-Feat-Cls2 and Full ZO with training augmentation against the same defaults without
it. Several processes may work on one results file: each trial is locked (flock) while it runs, so they share the
plan.
"""

import argparse
import fcntl
import math
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

import elasticzo
from elasticzo.data import training_batches_per_epoch
from _common import (METHODS, RESULTS_DIR, add_runtime_args, append_jsonl, load_split, read_jsonl, train_steps,
                     validation_split)

LR_ZO = (2e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2)
LR_BP = (0.02, 0.05, 0.1, 0.2, 0.5)
EPS = (1e-4, 1e-3, 1e-2)
CLIP = (0.1, 1.0, 100.0)
BASE = dict(lr_bp=0.1, eps=1e-3, grad_clip=100.0)
# A refine variation replaces the base value only if it beats it by this much validation accuracy (points): with
# 5,000 validation samples one accuracy has a standard error of up to 0.7 points.
MARGIN = 1.0
# A run is unstable when the mean train loss of its last interval exceeds the lowest earlier one by UNSTABLE_RISE,
# or its final validation accuracy is UNSTABLE_DROP points below its best earlier one.
UNSTABLE_RISE = 0.05
UNSTABLE_DROP = 5.0
# A run whose mean train loss passes this (chance level is ln 10 = 2.3) has blown up: it stops there as diverged.
BLOWN_UP_LOSS = 100.0
# Clip tried in the long stage: above the typical |g| (0.2-1 early on), so it only cuts the growing steps of a
# network that sharpens as its ZO-trained weights grow, which a loose clip (100) lets run away.
TIGHT_CLIP = 1.0
STAGES = ("lr", "refine", "confirm", "long", "fmnist")
PN_S9 = ("pnlong", "pnlonger")  # session 9's stages, results in sweep_pointnet_s9.jsonl
PN_S10 = ("pnbatch", "pnhead", "pnaugment")  # sessions 10 and 11's stages, results in sweep_pointnet_s10.jsonl
PN_STAGES = ("pointnet",) + PN_S9 + PN_S10
PN_LR_BP = (0.01, 0.03, 0.1)
PN_LR_ZO = (3e-4, 1e-3, 3e-3)  # trials on 32-point shapes: Full ZO at 1e-2 blew up within 2 epochs, even clipped to 1
PN_EPS = (1e-3, 1e-2)
PN_CLIP = (1.0, 100.0)
PN_BASE = dict(lr_zo=3e-4, lr_bp=0.01, eps=1e-3, grad_clip=TIGHT_CLIP, dataset="modelnet40")
# pnlong: PointNet's ZO defaults before it (hparams.py until session 9), rerun in the same sweep as the incumbents.
PN_INCUMBENT = {"zo-feat-cls2": dict(lr_zo=3e-4, lr_bp=0.03, eps=1e-3, grad_clip=1.0),
                "full-zo": dict(lr_zo=1e-3, lr_bp=0.0, eps=1e-3, grad_clip=1.0),
                "zo-feat-cls1": dict(lr_zo=3e-4, lr_bp=0.03, eps=1e-3, grad_clip=1.0)}
# (lr_zo, clip) per method, clip 0 = none, ordered by the gap to the paper (Cls2, Full ZO, Cls1). With clip 1 the step
# is lr_zo * sign(g) * z nearly always (raw |g| at the start: median 2.5, 90th percentile 6-9), so a larger clip comes
# with a smaller rate: lr_zo * clip equal to the incumbent's (same largest step, smaller steps where |g| < clip), or
# lr_zo near the incumbent's / |g|'s median (about the same typical step, larger ones where |g| is large).
# Cls2's lr_bp (fc3 alone) was never swept on its own: after the first two trials (same accuracy at every evaluation
# with two ZO steps), its rate was added, as (lr_zo, clip, lr_bp).
PN_LONG_GRID = {"zo-feat-cls2": ((3e-4, 1.0), (1e-4, 3.0), (3e-5, 10.0), (1e-4, 10.0), (1e-3, 1.0), (3e-4, 1.0, 0.1),
                                 (1e-4, 0.0), (1e-4, 1.0)),
                "full-zo": ((1e-3, 1.0), (3e-4, 3.0), (1e-4, 10.0), (3e-4, 10.0), (1e-4, 0.0), (2e-3, 1.0),
                            (5e-4, 1.0)),
                "zo-feat-cls1": ((3e-4, 1.0), (1e-4, 3.0), (3e-5, 10.0), (1e-4, 10.0), (1e-3, 1.0))}
PN_LONG_EPS = (1e-2,)  # tried last, at each method's best setting of the grid
# pnlonger (after pnlong's grids: no setting won there, and a ZO step 3x the incumbent's already lost 2.5 points on
# ZO-Feat-Cls2 in 3 epochs, as if the ZO part's random walk, whose length grows with lr_zo * sqrt(steps), harmed the
# features; 50 epochs of the incumbent walk further than 3 epochs of that step): the incumbent against pnlong's best
# smaller step, over --long-epochs (15), under the same rule.
PN_LONGER_GRID = {"zo-feat-cls2": ((3e-4, 1.0), (3e-5, 10.0))}
# The decision rule of pnlong, fixed before its results. A trial's score is the mean validation accuracy of its last
# two evaluations (every half epoch, so the last epoch). A setting wins for a method if it is stable (not diverged;
# train loss of its last half epoch no more than UNSTABLE_RISE above its lowest earlier one; final accuracy not
# UNSTABLE_DROP below its best) and its score beats the incumbent's by PN_WIN points (one accuracy on 1,000 shapes
# has a standard error of up to 1.4 points; the trials are paired: same init, order and perturbations). Short trials
# favour large steps, so of the winners within PN_NEAR points of the best one the most conservative is chosen: the
# smallest largest step lr_zo * clip (no clip: unbounded), then the smallest lr_zo.
PN_WIN = 1.5
PN_NEAR = 1.4
# pnbatch (session 10): batch size was never swept for PointNet. A ZO step costs two forward passes of its batch
# and moves the ZO weights along one direction whatever the batch, so at the same epoch budget a batch half as large
# takes twice the ZO steps for about the same time, and Full ZO and ZO-Feat-Cls2 were still climbing at epoch 50.
# Each method's defaults (PN_INCUMBENT) at these sizes, the first being the incumbent, over --long-epochs; the rule
# is pnlong's (PN_WIN, PN_NEAR, stability), at equal epochs; of the winners within PN_NEAR of the best, the largest
# batch (the fewest, least noisy steps) is chosen. Fixed before its results.
PN_BATCH = (32, 16, 8)
# Written after the first pnbatch results, before their own: Full ZO's batches 16 and 8 at its default rate were
# unstable (weight norm 92 and 114 against 79 after 10 epochs: twice or four times the steps walk further), so
# each is tried again with lr_zo scaled by batch / 32, the same expected drift per epoch with a shorter walk.
PN_BATCH_SCALED = {"full-zo": ((16, 5e-4), (8, 2.5e-4))}
# pnhead (session 11): ZO-Feat-Cls2 at batch 16 ended 0.47 points short of the paper's figure minus 0.5 after 50
# epochs, still rising. Two levers pnbatch left: the head's backprop rate, swept at batch 32 only (0.015 is the
# linear scaling of 0.03 to batch 16: a step on half the shapes is twice as noisy), and batch 8 again, whose trials
# ended every epoch on a 3-shape batch (now left out) right before each evaluation, and whose swings may have come
# from that or from the head's noise (hence batch 8 at 0.015 too). (batch, lr_bp) pairs, judged against pnbatch's
# batch-16 trial at the defaults by pnlong's rule at equal epochs; of the winners within PN_NEAR of the best, the
# largest batch, then the largest lr_bp (the defaults' side). Fixed before its results.
PN_HEAD = "zo-feat-cls2"
PN_HEAD_INCUMBENT_BATCH = 16
PN_HEAD_GRID = ((16, 0.015), (8, 0.03), (8, 0.015))
# pnaugment (session 11, after pnhead found nothing): the training augmentation (a random rotation about z and a
# jitter per point, data.augment) was never tried in a sweep. For the two methods whose Table 1 cells miss the paper,
# their defaults (hparams) with augment "pointcloud" against pnbatch's trial of the same defaults without it, at their
# batch size (Cls2 16, Full ZO 32), by pnlong's rule at equal epochs. Fixed before its results.
PN_AUGMENT = {"zo-feat-cls2": 16, "full-zo": 32}


def config(method, lr_zo=0.0, lr_bp=BASE["lr_bp"], eps=BASE["eps"], grad_clip=BASE["grad_clip"], dataset="mnist"):
    if method == "full-zo":
        lr_bp = 0.0
    if method == "full-bp":
        lr_zo, eps, grad_clip = 0.0, BASE["eps"], 0.0
    return dict(method=method, dataset=dataset, lr_zo=lr_zo, lr_bp=lr_bp, eps=eps, grad_clip=grad_clip)


def key(cfg, steps):
    augment = cfg.get("augment", "none")  # records before pnaugment have none and no field
    return (cfg["method"], cfg["dataset"], cfg["lr_zo"], cfg["lr_bp"], cfg["eps"], cfg["grad_clip"], steps) + (
        (augment,) if augment != "none" else ())


def unstable(curve):
    losses = [c["train_loss"] for c in curve]
    accs = [c["val_accuracy"] for c in curve]
    return len(curve) > 1 and (losses[-1] > min(losses[:-1]) + UNSTABLE_RISE or accs[-1] < max(accs[:-1]) - UNSTABLE_DROP)


def score(rec):
    return -math.inf if rec["diverged"] or unstable(rec["curve"]) else rec["val_accuracy"]


def best(records, steps, **match):
    """The best record run for `steps` steps whose fields equal `match`, or None."""
    pool = [r for r in records if r["steps"] == steps and all(r[k] == v for k, v in match.items())]
    pool = [r for r in pool if score(r) > -math.inf]
    return max(pool, key=score) if pool else None


def lr_stage(records, budget):
    plan = [config("full-zo", lr_zo=lr) for lr in LR_ZO[1:]]
    plan += [config("full-bp", lr_bp=lr) for lr in LR_BP]
    for m in ("zo-feat-cls2", "zo-feat-cls1"):
        plan += [config(m, lr_zo=lr) for lr in LR_ZO[1:]]
    return plan


def lr_stage_best(records, coarse, method):
    """The best coarse run of `method` on MNIST with the lr stage's fixed values (eps, clip, ZO-Feat's lr_bp)."""
    fixed = {} if method == "full-bp" else {"eps": BASE["eps"], "grad_clip": BASE["grad_clip"]}
    if method in ("zo-feat-cls2", "zo-feat-cls1"):
        fixed["lr_bp"] = BASE["lr_bp"]
    return best(records, coarse, method=method, dataset="mnist", **fixed)


def _fields(rec):
    return {k: rec[k] for k in ("method", "dataset", "lr_zo", "lr_bp", "eps", "grad_clip")}


def refine_stage(records, budget):
    plan = []
    for m in ("full-zo", "zo-feat-cls2", "zo-feat-cls1"):
        base = lr_stage_best(records, budget["coarse"], m)
        if base is None:
            continue
        axes = [("eps", EPS), ("grad_clip", CLIP)] + ([("lr_bp", LR_BP)] if m != "full-zo" else [])
        for field, grid in axes:
            plan += [dict(_fields(base), **{field: v}) for v in grid if v != base[field]]
    return plan


def chosen_coarse(records, coarse, method):
    """The coarse choice: the lr stage's best, with each refine axis moved only if it wins by MARGIN points."""
    base = lr_stage_best(records, coarse, method)
    if base is None or method == "full-bp":
        return base and _fields(base)
    out = _fields(base)
    for field in ("eps", "grad_clip", "lr_bp"):
        others = {k: v for k, v in _fields(base).items() if k != field}
        alt = best(records, coarse, **others)
        if alt is not None and alt[field] != base[field] and score(alt) >= score(base) + MARGIN:
            out[field] = alt[field]
    return out


def confirm_stage(records, budget):
    """The coarse choice, then smaller learning rates (lr_zo, or Full BP's lr_bp) while the larger ones are unstable
    over the longer budget, and one more below the first stable one: short runs favour rates that later blow up."""
    plan = []
    for m in METHODS:
        cfg = chosen_coarse(records, budget["coarse"], m)
        if cfg is None:
            continue
        field, grid = ("lr_bp", LR_BP) if m == "full-bp" else ("lr_zo", LR_ZO)
        stable_seen = 0
        for lr in sorted((v for v in grid if v <= cfg[field]), reverse=True):
            plan.append(dict(cfg, **{field: lr}))
            rec = next((r for r in records if key(r, r["steps"]) == key(plan[-1], budget["confirm"])), None)
            if rec is None:
                break  # plan the rest once this one has run
            stable_seen += score(rec) > -math.inf
            if stable_seen == 2:
                break
    return plan


def long_stage(records, budget):
    """The two best stable confirm runs of each ZO method, and the best one with the tight clip if it has another.
    If a tight-clip run then beats every loose-clip one, the lr walk-down (done with the loose clip) is revisited:
    the next larger lr_zo with the tight clip."""
    plan = []
    for m in ("full-zo", "zo-feat-cls2", "zo-feat-cls1"):
        pool = [r for r in records if r["steps"] == budget["confirm"] and r["method"] == m and r["dataset"] == "mnist"]
        top = [_fields(r) for r in sorted(pool, key=score, reverse=True)[:2] if score(r) > -math.inf]
        plan += top
        if not top or top[0]["grad_clip"] == TIGHT_CLIP:
            continue
        plan.append(dict(top[0], grad_clip=TIGHT_CLIP))
        tight = best(records, budget["long"], method=m, dataset="mnist", grad_clip=TIGHT_CLIP)
        loose = best(records, budget["long"], method=m, dataset="mnist", grad_clip=top[0]["grad_clip"])
        larger = [lr for lr in LR_ZO if tight and lr > tight["lr_zo"]]
        if tight and larger and (loose is None or score(tight) > score(loose)):
            plan.append(dict(_fields(tight), lr_zo=larger[0]))
    # A configuration that failed a shorter long run is not run longer (a longer --long-epochs checks the horizon).
    failed = {key(r, 0) for r in records if r["stage"] == "long" and r["steps"] < budget["long"] and score(r) == -math.inf}
    return [c for c in plan if key(c, 0) not in failed]


def chosen(records, method):
    """The final choice: the best stable run among the method's longest confirm or long runs on MNIST."""
    runs = [r for r in records if r["method"] == method and r["dataset"] == "mnist" and r["stage"] in ("confirm", "long")]
    for steps in sorted({r["steps"] for r in runs}, reverse=True):
        rec = best(runs, steps)
        if rec is not None:
            return _fields(rec)
    return None


def fmnist_stage(records, budget):
    return [dict(c, dataset="fashion-mnist") for c in (chosen(records, m) for m in METHODS) if c]


def _pn_best(records, steps, method, **match):
    rec = best(records, steps, method=method, dataset="modelnet40", **match)
    return rec and _fields(rec)


def pointnet_stage(records, budget):
    """Axis after axis, each from the best configuration so far of its method (planned again after every run)."""
    steps = budget["coarse"]
    plan = [config("zo-feat-cls1", **dict(PN_BASE, lr_bp=v)) for v in PN_LR_BP]
    plan += [config("full-bp", **dict(PN_BASE, lr_bp=v)) for v in PN_LR_BP]
    plan += [config("full-zo", **dict(PN_BASE, lr_zo=v)) for v in PN_LR_ZO]
    cls1 = _pn_best(records, steps, "zo-feat-cls1")
    if cls1 is not None:
        plan += [dict(cls1, lr_zo=v) for v in PN_LR_ZO]
        plan += [dict(cls1, method="zo-feat-cls2")]
    for m in ("full-zo", "zo-feat-cls1"):
        top = _pn_best(records, steps, m)
        if top is not None:
            plan += [dict(top, eps=v) for v in PN_EPS] + [dict(top, grad_clip=v) for v in PN_CLIP]
    return plan


def _pn_setting(method, lr_zo, clip, lr_bp=None, eps=None):
    """The incumbent of `method` with these values (None: the incumbent's)."""
    own = {k: v for k, v in (("lr_bp", lr_bp), ("eps", eps)) if v is not None}
    return dict(PN_INCUMBENT[method], method=method, dataset="modelnet40", lr_zo=lr_zo, grad_clip=clip, **own)


def _pn_default(method, **changes):
    """The incumbent of `method` as a setting, with `changes` (lr_bp, eps)."""
    return _pn_setting(method, PN_INCUMBENT[method]["lr_zo"], PN_INCUMBENT[method]["grad_clip"], **changes)


def pnlong_stage(records, budget):
    """The grid of every method, then eps at each method's best setting once its grid has run."""
    plan = [_pn_setting(m, *setting) for m, grid in PN_LONG_GRID.items() for setting in grid]
    for m, grid in PN_LONG_GRID.items():
        pool = _pn_long_pool(records, budget["confirm"], m)
        if len(pool) < len(grid):
            continue
        top = max((r for r in pool if _pn_eligible(r)), key=pn_score, default=None)
        if top is not None:
            plan += [dict(_fields(top), eps=e) for e in PN_LONG_EPS]
    return plan


def pnlonger_stage(records, budget):
    return [_pn_setting(m, *setting) for m, grid in PN_LONGER_GRID.items() for setting in grid]


def pn_score(rec):
    """Mean validation accuracy of the last two evaluations (0 for a diverged run)."""
    return 0.0 if rec["diverged"] else float(np.mean([c["val_accuracy"] for c in rec["curve"][-2:]]))


def _pn_eligible(rec):
    return not rec["diverged"] and not unstable(rec["curve"])


def _pn_long_pool(records, steps, method):
    return [r for r in records if r["stage"] in PN_S9 and r["steps"] == steps and r["method"] == method]


def _pn_largest_step(rec):
    return rec["lr_zo"] * rec["grad_clip"] if rec["grad_clip"] > 0 else math.inf


def pn_verdict(records, steps, method):
    """(incumbent record, chosen record or None) by the rule above (PN_WIN, PN_NEAR); (None, None) before the
    incumbent has run."""
    pool = _pn_long_pool(records, steps, method)
    incumbent = _pn_default(method)
    inc = next((r for r in pool if _fields(r) == incumbent), None)
    return inc, _pn_pick(pool, inc, key=lambda r: (_pn_largest_step(r), r["lr_zo"]))


def _pn_pick(pool, inc, key):
    """The rule's choice among `pool` against the incumbent record `inc`: the stable trials that beat it by PN_WIN,
    of those within PN_NEAR of the best the one `key` puts first; None if none wins or there is no incumbent."""
    if inc is None:
        return None
    winners = [r for r in pool if r is not inc and _pn_eligible(r) and pn_score(r) >= pn_score(inc) + PN_WIN]
    if not winners:
        return None
    top = max(pn_score(r) for r in winners)
    return min((r for r in winners if pn_score(r) >= top - PN_NEAR), key=key)


def _pn_marks(r, inc, pick):
    """A table row's flags (diverged / unstable, incumbent / chosen) and its score against the incumbent's."""
    flag = " **diverged**" if r["diverged"] else (" **unstable**" if unstable(r["curve"]) else "")
    flag += " (incumbent)" if r is inc else " **chosen**" if r is pick else ""
    return flag, f"{pn_score(r) - pn_score(inc):+.2f}" if inc is not None and r is not inc else ""


def pnbatch_stage(records, budget):
    """Each method's defaults, then the scaled rates of PN_BATCH_SCALED at this run's batch size."""
    plan = [_pn_default(m) for m in PN_LONG_GRID]
    return plan + [_pn_setting(m, lr, PN_INCUMBENT[m]["grad_clip"]) for m, grid in PN_BATCH_SCALED.items()
                   for batch, lr in grid if batch == budget["batch_size"]]


def pnhead_stage(records, budget):
    """ZO-Feat-Cls2's pairs of PN_HEAD_GRID at this run's batch size."""
    return [_pn_default(PN_HEAD, lr_bp=lr_bp) for batch, lr_bp in PN_HEAD_GRID if batch == budget["batch_size"]]


def _pn_plain_default(records, method, batch, stages=("pnbatch",), steps=None):
    """The first trial of `stages` that ran `method`'s defaults without augmentation at `batch` (and `steps` steps
    if given), or None."""
    return next((r for r in records if r["stage"] in stages and r["method"] == method and r["batch_size"] == batch
                 and _fields(r) == _pn_default(method) and r.get("augment", "none") == "none"
                 and steps in (None, r["steps"])), None)


def _pn_verdict_line(method, inc, pick, kept, chosen):
    """A table's verdict for `method`: `kept` with the score a winner needed, or chosen(pick) with both scores."""
    if pick is None:
        return (f"- {method}: {kept} (score {pn_score(inc):.2f}; needed {pn_score(inc) + PN_WIN:.2f} with a stable "
                "run)")
    return f"- {method}: {chosen(pick)} ({pn_score(pick):.2f} against {pn_score(inc):.2f})"


def pn_head_verdict(records):
    """(incumbent: pnbatch's batch-16 trial of ZO-Feat-Cls2 at its defaults, chosen pnhead record or None)."""
    inc = _pn_plain_default(records, PN_HEAD, PN_HEAD_INCUMBENT_BATCH)
    pool = [r for r in records if r["stage"] == "pnhead" and r["method"] == PN_HEAD and inc is not None
            and r["epochs"] == inc["epochs"]]
    return inc, _pn_pick(pool, inc, key=lambda r: (-r["batch_size"], -r["lr_bp"]))


def pnaugment_stage(records, budget):
    """The defaults of the methods of PN_AUGMENT whose batch is this run's, without augmentation (already run by
    pnbatch unless the small-last-batch rule has shortened its epoch since) and with it."""
    return [dict(_pn_default(m), augment=a)
            for m, batch in PN_AUGMENT.items() if batch == budget["batch_size"] for a in ("none", "pointcloud")]


def _pn_augmented(records, method):
    return [r for r in records if r["stage"] == "pnaugment" and r["method"] == method
            and r.get("augment") == "pointcloud"]


def pn_augment_verdict(records, method):
    """(incumbent: the method's defaults without augmentation at its PN_AUGMENT batch, pnbatch's or pnaugment's
    trial of the augmented one's length; the augmented trial if it wins, else None)."""
    trials = _pn_augmented(records, method)
    inc = _pn_plain_default(records, method, PN_AUGMENT[method], ("pnbatch", "pnaugment"),
                            trials[0]["steps"]) if trials else None
    return inc, _pn_pick(trials, inc, key=lambda r: 0)


def pn_augment_table(records):
    """Each method's pnaugment trial below its incumbent, with the rule's verdict."""
    lines, verdicts = _pn_batch_header("vs no augmentation"), []
    for m in PN_AUGMENT:
        inc, pick = pn_augment_verdict(records, m)
        if inc is None:
            continue
        lines += [_pn_batch_row(r, inc, pick) for r in [inc] + _pn_augmented(records, m)]
        verdicts.append(_pn_verdict_line(m, inc, pick, "**no augmentation stays**", lambda p: "**augmentation wins**"))
    return "\n".join(lines + [""] + verdicts)


def _pn_batch_pool(records, method):
    return [r for r in records if r["stage"] == "pnbatch" and r["method"] == method]


def pn_batch_verdict(records, method):
    """(incumbent record at PN_BATCH[0], chosen record or None) among the method's pnbatch trials of one length;
    of the winners within PN_NEAR of the best, the largest batch, then the smallest lr_zo."""
    inc = _pn_plain_default(records, method, PN_BATCH[0])
    if inc is None:
        return None, None
    pool = [r for r in _pn_batch_pool(records, method) if r["epochs"] == inc["epochs"]]
    return inc, _pn_pick(pool, inc, key=lambda r: (-r["batch_size"], r["lr_zo"]))


def pn_batch_table(records):
    """The pnbatch trials, method by method: validation accuracy at the end of every epoch, the score and verdict."""
    lines = _pn_batch_header("vs batch 32")
    verdicts = []
    for m in PN_LONG_GRID:
        pool = sorted(_pn_batch_pool(records, m), key=lambda r: (-r["batch_size"], -r["lr_zo"]))
        if not pool:
            continue
        inc, pick = pn_batch_verdict(records, m)
        lines += [_pn_batch_row(r, inc, pick) for r in pool]
        if inc is None:
            verdicts.append(f"- {m}: batch {PN_BATCH[0]} not run yet")
        else:
            verdicts.append(_pn_verdict_line(m, inc, pick, f"**batch {PN_BATCH[0]} stays**",
                                             lambda p: f"**batch {p['batch_size']}, lr_zo {p['lr_zo']:g}** wins"))
    return "\n".join(lines + [""] + verdicts)


def _pn_batch_header(versus):
    return [f"| method | batch | lr_zo | lr_bp | steps | val % at each epoch's end | score (last two) | {versus} | "
            "final train loss | clipped | weight norm | s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]


def _pn_batch_row(r, inc, pick):
    curve = r["curve"]
    flag, diff = _pn_marks(r, inc, pick)
    accs = " / ".join(f"{c['val_accuracy']:.1f}" for c in curve[1::2])
    method = r["method"] + (" + augment" if r.get("augment", "none") != "none" else "")
    return (f"| {method} | {r['batch_size']} | {r['lr_zo']:g} | {r['lr_bp']:g} | {r['steps']} | {accs} | "
            f"{pn_score(r):.2f}{flag} | {diff} | {curve[-1]['train_loss']:.4f} | {r['g_clipped_fraction']:.2f} | "
            f"{curve[-1]['weight_norm']:.4g} | {r['seconds']:.0f} |")


def pn_head_table(records):
    """The pnhead trials below their incumbent, with the rule's verdict."""
    inc, pick = pn_head_verdict(records)
    pool = sorted((r for r in records if r["stage"] == "pnhead"), key=lambda r: (-r["batch_size"], -r["lr_bp"]))
    rows = [_pn_batch_row(r, inc, pick) for r in ([inc] if inc else []) + pool]
    if inc is None:
        verdict = f"- {PN_HEAD}: its batch-{PN_HEAD_INCUMBENT_BATCH} pnbatch trial has not run yet"
    else:
        verdict = _pn_verdict_line(PN_HEAD, inc, pick, f"**batch {inc['batch_size']}, lr_bp {inc['lr_bp']:g} stay**",
                                   lambda p: f"**batch {p['batch_size']}, lr_bp {p['lr_bp']:g}** wins")
    return "\n".join(_pn_batch_header(f"vs batch {PN_HEAD_INCUMBENT_BATCH}") + rows + ["", verdict])


class BlownUp(Exception):
    pass


def run(cfg, steps, stage, data, args, with_test):
    """Trains one configuration for `steps` steps; returns its record."""
    train, val, test = data[cfg["dataset"]]
    model = elasticzo.models.build(args.model, train.num_classes, seed=0)
    tr = elasticzo.ElasticZO(model, method=cfg["method"], lr_zo=cfg["lr_zo"], lr_bp=cfg["lr_bp"],
                             eps=cfg["eps"], grad_clip=cfg["grad_clip"], seed=0, augment=cfg.get("augment", "none"))
    curve = []

    def on_checkpoint(step, train_loss):
        ev = elasticzo.evaluate(model, val, batch_size=256)
        norm = math.sqrt(sum(float(np.square(v, dtype=np.float64).sum()) for v in model.state_dict().values()))
        curve.append(dict(step=step, train_loss=train_loss, val_accuracy=100 * ev["accuracy"], val_loss=ev["loss"],
                          weight_norm=norm))
        if not train_loss < BLOWN_UP_LOSS:
            raise BlownUp

    # quarters, or every half epoch for longer runs; PointNet halves (a validation pass costs 1/8 epoch)
    points = max(2 if args.model == "pointnet" else 4, round(2 * steps / args.steps_per_epoch))
    marks = [max(1, round(steps * q / points)) for q in range(1, points + 1)]
    start = time.perf_counter()
    diverged = False
    stats = []
    try:
        stats = train_steps(tr, train, args.batch_size, steps, on_checkpoint=on_checkpoint, checkpoints=marks)
    except BlownUp:
        diverged = True
    except RuntimeError as exc:
        if "not finite" not in str(exc):
            raise
        diverged = True
    seconds = time.perf_counter() - start
    zo = stats and cfg["method"] != "full-bp"
    g = np.abs([s["projected_grad"] for s in stats]) if zo else np.zeros(1)
    # |g| before the clip, over the run and over its last epoch: how often and by how much the clip cuts
    raw = np.abs([(s["loss_plus"] - s["loss_minus"]) / (2 * cfg["eps"]) for s in stats]) if zo else np.zeros(1)
    rec = dict(cfg, stage=stage, steps=steps, batch_size=args.batch_size, epochs=steps / args.steps_per_epoch,
               diverged=diverged, unstable=bool(curve) and unstable(curve),
               val_accuracy=curve[-1]["val_accuracy"] if curve and not diverged else 0.0, curve=curve,
               g_abs_median=float(np.median(g)), g_clipped_fraction=float(np.mean(g >= cfg["grad_clip"]))
               if cfg["grad_clip"] > 0 else 0.0,
               g_raw_abs_q10_50_90=[float(v) for v in np.percentile(raw, [10, 50, 90])],
               g_raw_abs_q10_50_90_last_epoch=[float(v) for v in np.percentile(raw[-args.steps_per_epoch:],
                                                                                [10, 50, 90])],
               seconds=seconds)
    if with_test and not diverged:
        rec["test_accuracy"] = 100 * elasticzo.evaluate(model, test, batch_size=256)["accuracy"]
    return rec


def markdown_table(records):
    lines = ["| stage | method | data | lr_zo | lr_bp | eps | clip | epochs | val % over the run | final val % | "
             "test % | weight norm | median abs g | s |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        curve = r["curve"]
        shown = curve if len(curve) <= 6 else [curve[round(i * (len(curve) - 1) / 5)] for i in range(6)]
        accs = " / ".join(f"{c['val_accuracy']:.1f}" for c in shown)
        flag = " **diverged**" if r["diverged"] else (" **unstable**" if unstable(curve) else "")
        test = f"{r['test_accuracy']:.2f}" if "test_accuracy" in r else ""
        norm = f"{curve[-1]['weight_norm']:.3g}" if curve and "weight_norm" in curve[-1] else ""
        lines.append(f"| {r['stage']} | {r['method']} | {r['dataset']} | {r['lr_zo']:g} | {r['lr_bp']:g} | "
                     f"{r['eps']:g} | {r['grad_clip']:g} | {r['epochs']:.1f} | {accs} | {r['val_accuracy']:.2f}{flag} | "
                     f"{test} | {norm} | {r['g_abs_median']:.3g} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def pn_long_table(records, steps):
    """The trials of session 9's stages that ran `steps` steps, method by method, with the rule's score and
    verdict."""
    lines = ["| method | lr_zo | clip | eps | lr_bp | val % every half epoch | score (last two) | vs incumbent | "
             "final train loss | raw abs g q10/50/90 (last epoch) | clipped | weight norm | s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for m in PN_LONG_GRID:
        if not _pn_long_pool(records, steps, m):
            continue
        inc, pick = pn_verdict(records, steps, m)
        for r in _pn_long_pool(records, steps, m):
            curve = r["curve"]
            flag, diff = _pn_marks(r, inc, pick)
            q = " / ".join(f"{v:.3g}" for v in r["g_raw_abs_q10_50_90_last_epoch"])
            accs = " / ".join(f"{c['val_accuracy']:.1f}" for c in curve)
            lines.append(f"| {m} | {r['lr_zo']:g} | {r['grad_clip']:g} | {r['eps']:g} | {r['lr_bp']:g} | {accs} | "
                         f"{pn_score(r):.2f}{flag} | "
                         f"{diff} | {curve[-1]['train_loss']:.4f} | {q} | {r['g_clipped_fraction']:.2f} | "
                         f"{curve[-1]['weight_norm']:.4g} | {r['seconds']:.0f} |")
        if inc is None:
            verdicts.append(f"- {m}: incumbent not run yet")
        elif pick is None:
            verdicts.append(f"- {m}: **no setting wins** (incumbent score {pn_score(inc):.2f}; needed "
                            f"{pn_score(inc) + PN_WIN:.2f} with a stable run)")
        else:
            verdicts.append(f"- {m}: **lr_zo {pick['lr_zo']:g}, clip {pick['grad_clip']:g}, eps {pick['eps']:g}, "
                            f"lr_bp {pick['lr_bp']:g}** "
                            f"wins ({pn_score(pick):.2f} against the incumbent's {pn_score(inc):.2f})")
    return "\n".join(lines + [""] + verdicts)


def pn_s9_tables(records):
    """pn_long_table for each length the pnlong and pnlonger trials ran, under a heading. The lengths are the
    records' own, not recomputed from today's steps per epoch: training now leaves out an epoch's last batch of
    fewer than half a batch (8,843 shapes at 32 end on 11), so an epoch is one step shorter than when they ran."""
    what = {"pnlong": "pnlong, --confirm-epochs", "pnlonger": "pnlonger, --long-epochs"}
    lengths = {}
    for r in records:
        if r["stage"] in what:
            lengths.setdefault(r["steps"], what[r["stage"]])
    return "\n\n".join(f"### {steps} steps ({lengths[steps]})\n\n{pn_long_table(records, steps)}"
                         for steps in sorted(lengths))


def pn_s10_tables(records):
    """pnbatch's table (session 10), then pnhead's and pnaugment's (session 11) once they have trials."""
    if not any(r["stage"] == "pnhead" for r in records):
        return pn_batch_table(records)
    text = f"### pnbatch\n\n{pn_batch_table(records)}\n\n### pnhead\n\n{pn_head_table(records)}"
    if any(r["stage"] == "pnaugment" for r in records):
        text += f"\n\n### pnaugment\n\n{pn_augment_table(records)}"
    return text


def _claim(todo, out, steps):
    """The first configuration of `todo` no other process is running, with its lock held (an open descriptor;
    closing it releases the lock, and so does the death of the process), or (None, None)."""
    locks = Path(tempfile.gettempdir()) / f"elasticzo-sweep-{zlib.crc32(str(Path(out).resolve()).encode()):08x}"
    locks.mkdir(exist_ok=True)
    for cfg in todo:
        name = "_".join(f"{v}" for v in key(cfg, steps)).replace("/", "-")
        fd = os.open(locks / name, os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if key(cfg, steps) in {key(r, r["steps"]) for r in read_jsonl(out)}:  # finished since the plan was made
            os.close(fd)
            continue
        return cfg, fd
    return None, None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_args(p)
    p.add_argument("--model", choices=("lenet5", "pointnet"), default="lenet5",
                   help="lenet5 (MNIST, Fashion-MNIST) or pointnet (ModelNet40); default lenet5")
    p.add_argument("--out", default=None,
                   help="results, one JSON per line (default: results/sweep_hparams.jsonl, for PointNet "
                        "results/sweep_pointnet.jsonl, sweep_pointnet_s9.jsonl or sweep_pointnet_s10.jsonl by stage)")
    p.add_argument("--stages", default=None,
                   help=f"comma-separated subset of {','.join(STAGES)} (default: all); PointNet: pointnet (default) "
                        f"or {', '.join(PN_S9 + PN_S10)}")
    p.add_argument("--coarse-epochs", type=float, default=0.5)
    p.add_argument("--confirm-epochs", type=float, default=3.0)
    p.add_argument("--long-epochs", type=float, default=10.0)
    p.add_argument("--val", type=int, default=None,
                   help="training samples held out for validation (default 5000; PointNet 1000)")
    p.add_argument("--batch-size", type=int, default=None, help="default 64; PointNet 32")
    p.add_argument("--methods", default=",".join(METHODS), help="run only these methods' configurations")
    p.add_argument("--dry-run", action="store_true", help="print the configurations still to run and stop")
    p.add_argument("--table", action="store_true", help="print the results as a Markdown table and stop")
    args = p.parse_args(argv)
    pointnet = args.model == "pointnet"
    known = PN_STAGES if pointnet else STAGES
    stages = (args.stages or ("pointnet" if pointnet else ",".join(known))).split(",")
    if any(s not in known for s in stages):
        p.error(f"--stages takes names from {', '.join(known)} for {args.model}")
    s9 = set(stages) <= set(PN_S9)
    s10 = set(stages) <= set(PN_S10)
    args.out = args.out or str(RESULTS_DIR / ("sweep_hparams.jsonl" if not pointnet else "sweep_pointnet_s9.jsonl"
                                              if s9 else "sweep_pointnet_s10.jsonl" if s10
                                              else "sweep_pointnet.jsonl"))
    args.val = args.val or (1000 if pointnet else 5000)
    args.batch_size = args.batch_size or (32 if pointnet else 64)
    if args.table and s10:
        print(pn_s10_tables(read_jsonl(args.out)))
        return 0
    if args.table and not s9:
        print(markdown_table(read_jsonl(args.out)))
        return 0
    elasticzo.set_num_threads(args.threads)

    data = {}
    for name in ("modelnet40",) if pointnet else ("mnist", "fashion-mnist"):
        if name == "fashion-mnist" and "fmnist" not in stages:
            continue
        train, val = validation_split(load_split(p, name, args.data_dir, "train"), args.val)
        data[name] = (train, val, load_split(p, name, args.data_dir, "test"))
    args.steps_per_epoch = training_batches_per_epoch(len(next(iter(data.values()))[0]), args.batch_size)
    budget = {name: max(4, round(getattr(args, name + "_epochs") * args.steps_per_epoch))
              for name in ("coarse", "confirm", "long")}
    budget["batch_size"] = args.batch_size
    if args.table:
        print(pn_s9_tables(read_jsonl(args.out)))
        return 0
    planners = {"lr": (lr_stage, "coarse"), "refine": (refine_stage, "coarse"), "confirm": (confirm_stage, "confirm"),
                "long": (long_stage, "long"), "fmnist": (fmnist_stage, "confirm"),
                "pointnet": (pointnet_stage, "coarse"),
                "pnlong": (pnlong_stage, "confirm"),
                "pnlonger": (pnlonger_stage, "long"),
                "pnbatch": (pnbatch_stage, "long"),
                "pnhead": (pnhead_stage, "long"),
                "pnaugment": (pnaugment_stage, "long")}  # stage -> (planner, its budget)

    for stage in stages:
        planner, steps = planners[stage]
        steps = budget[steps]
        print(f"stage {stage}: runs of {steps} steps", file=sys.stderr)
        while True:  # re-planned after every run: a stage may depend on its own results
            records = read_jsonl(args.out)
            done = {key(r, r["steps"]) for r in records}
            todo = [c for c in planner(records, budget)
                    if key(c, steps) not in done and c["method"] in args.methods.split(",")]
            if not todo:
                break
            if args.dry_run:
                print("".join(f"  {c}\n" for c in todo), end="", file=sys.stderr)
                return 0  # later runs are planned from these ones' results
            cfg, lock = _claim(todo, args.out, steps)
            if cfg is None:  # the rest is running in other processes; later plans may depend on it
                time.sleep(30)
                continue
            rec = run(cfg, steps, stage, data, args, with_test=stage in ("confirm", "long", "fmnist"))
            append_jsonl(args.out, rec)
            os.close(lock)
            print(f"  {stage} {cfg['method']} {cfg['dataset']} lr_zo={cfg['lr_zo']:g} lr_bp={cfg['lr_bp']:g} "
                  f"eps={cfg['eps']:g} clip={cfg['grad_clip']:g}: val {rec['val_accuracy']:.2f}%"
                  f"{' diverged' if rec['diverged'] else ''}{' unstable' if rec['unstable'] else ''} "
                  f"({rec['seconds']:.0f} s)", file=sys.stderr, flush=True)
    records = read_jsonl(args.out)
    if s10:
        print(pn_s10_tables(records))
        return 0
    if s9:
        print(pn_s9_tables(records))
        return 0
    for m in METHODS:
        pick = _pn_best(records, budget["coarse"], m) if pointnet else (chosen(records, m) or
                                                                         chosen_coarse(records, budget["coarse"], m))
        print(f"chosen {m}: {pick}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
