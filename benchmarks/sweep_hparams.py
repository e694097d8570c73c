"""Resumable hyperparameter sweep for LeNet-5 (lr_zo, lr_bp, eps, grad_clip) of the four methods, by validation accuracy.

Stages, each planned from the results of the ones before (all kept in one JSONL, so a stopped sweep continues):
  lr       coarse: every method's learning rate(s) on a grid, eps 1e-3 and clip 100, for --coarse-epochs.
  refine   coarse: at each ZO method's best lr, one axis at a time: eps, clip and (ZO-Feat) lr_bp.
  confirm  --confirm-epochs with the values chosen so far; Full ZO also with the next smaller lr_zo.
  fmnist   the chosen values on Fashion-MNIST for --confirm-epochs.
Selection is on a validation set held out of the training set (--val samples); test accuracy is reported for the
confirm and fmnist runs only. All runs share seed 0 (init, data order, perturbations): differences are paired.
"""

import argparse
import math
import sys
import time

import numpy as np

import elasticzo
from elasticzo.data import load_dataset, num_batches
from _common import METHODS, RESULTS_DIR, add_runtime_args, append_jsonl, read_jsonl, train_steps, validation_split

LR_ZO = (5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 7e-3, 1e-2, 2e-2)
LR_BP = (0.02, 0.05, 0.1, 0.2, 0.5)
EPS = (1e-4, 1e-3, 1e-2)
CLIP = (0.1, 1.0, 100.0)
BASE = dict(lr_bp=0.1, eps=1e-3, grad_clip=100.0)
# A refine variation replaces the base value only if it beats it by this much validation accuracy (points): with
# 5,000 validation samples one accuracy has a standard error of up to 0.7 points.
MARGIN = 1.0
# A run is unstable when the mean train loss of its last interval exceeds the lowest earlier one by this much.
UNSTABLE_RISE = 0.05
STAGES = ("lr", "refine", "confirm", "fmnist")


def config(method, lr_zo=0.0, lr_bp=BASE["lr_bp"], eps=BASE["eps"], grad_clip=BASE["grad_clip"], dataset="mnist"):
    if method == "full-zo":
        lr_bp = 0.0
    if method == "full-bp":
        lr_zo, eps, grad_clip = 0.0, BASE["eps"], 0.0
    return dict(method=method, dataset=dataset, lr_zo=lr_zo, lr_bp=lr_bp, eps=eps, grad_clip=grad_clip)


def key(cfg, steps):
    return (cfg["method"], cfg["dataset"], cfg["lr_zo"], cfg["lr_bp"], cfg["eps"], cfg["grad_clip"], steps)


def score(rec):
    return -math.inf if rec["diverged"] or rec["unstable"] else rec["val_accuracy"]


def best(records, steps, **match):
    """The best record run for `steps` steps whose fields equal `match`, or None."""
    pool = [r for r in records if r["steps"] == steps and all(r[k] == v for k, v in match.items())]
    pool = [r for r in pool if score(r) > -math.inf]
    return max(pool, key=score) if pool else None


def lr_stage(records, coarse, confirm):
    plan = [config("full-zo", lr_zo=lr) for lr in LR_ZO]
    plan += [config("full-bp", lr_bp=lr) for lr in LR_BP]
    for m in ("zo-feat-cls2", "zo-feat-cls1"):
        plan += [config(m, lr_zo=lr) for lr in LR_ZO]
    return plan


def lr_stage_best(records, coarse, method):
    """The best coarse run of `method` on MNIST with the lr stage's fixed values (eps, clip, ZO-Feat's lr_bp)."""
    fixed = {} if method == "full-bp" else {"eps": BASE["eps"], "grad_clip": BASE["grad_clip"]}
    if method in ("zo-feat-cls2", "zo-feat-cls1"):
        fixed["lr_bp"] = BASE["lr_bp"]
    return best(records, coarse, method=method, dataset="mnist", **fixed)


def _fields(rec):
    return {k: rec[k] for k in ("method", "dataset", "lr_zo", "lr_bp", "eps", "grad_clip")}


def refine_stage(records, coarse, confirm):
    plan = []
    for m in ("full-zo", "zo-feat-cls2", "zo-feat-cls1"):
        base = lr_stage_best(records, coarse, m)
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


def confirm_stage(records, coarse, confirm):
    plan = []
    for m in METHODS:
        cfg = chosen_coarse(records, coarse, m)
        if cfg is None:
            continue
        plan.append(cfg)
        if m == "full-zo" and cfg["lr_zo"] > LR_ZO[0]:
            plan.append(dict(cfg, lr_zo=max(lr for lr in LR_ZO if lr < cfg["lr_zo"])))
    return plan


def chosen(records, confirm, method):
    """The final choice: the best stable confirm run of the method on MNIST."""
    rec = best(records, confirm, method=method, dataset="mnist")
    return rec and _fields(rec)


def fmnist_stage(records, coarse, confirm):
    return [dict(c, dataset="fashion-mnist") for c in (chosen(records, confirm, m) for m in METHODS) if c]


def run(cfg, steps, stage, data, args, with_test):
    """Trains one configuration for `steps` steps; returns its record."""
    train, val, test = data[cfg["dataset"]]
    model = elasticzo.models.lenet5(num_classes=train.num_classes, seed=0)
    tr = elasticzo.ElasticZO(model, method=cfg["method"], lr_zo=cfg["lr_zo"], lr_bp=cfg["lr_bp"],
                             eps=cfg["eps"], grad_clip=cfg["grad_clip"], seed=0)
    curve = []

    def on_checkpoint(step, train_loss):
        ev = elasticzo.evaluate(model, val, 256)
        curve.append(dict(step=step, train_loss=train_loss, val_accuracy=100 * ev["accuracy"], val_loss=ev["loss"]))

    marks = [max(1, round(steps * q / 4)) for q in (1, 2, 3, 4)]
    start = time.perf_counter()
    diverged = False
    stats = []
    try:
        stats = train_steps(tr, train, args.batch_size, steps, on_checkpoint=on_checkpoint, checkpoints=marks)
    except RuntimeError as exc:
        if "not finite" not in str(exc):
            raise
        diverged = True
    seconds = time.perf_counter() - start
    losses = [c["train_loss"] for c in curve]
    g = np.abs([s["projected_grad"] for s in stats]) if stats and cfg["method"] != "full-bp" else np.zeros(1)
    rec = dict(cfg, stage=stage, steps=steps, batch_size=args.batch_size, epochs=steps / args.steps_per_epoch,
               diverged=diverged, unstable=bool(len(losses) > 1 and losses[-1] > min(losses[:-1]) + UNSTABLE_RISE),
               val_accuracy=curve[-1]["val_accuracy"] if curve and not diverged else 0.0, curve=curve,
               g_abs_median=float(np.median(g)), g_clipped_fraction=float(np.mean(g >= cfg["grad_clip"]))
               if cfg["grad_clip"] > 0 else 0.0, seconds=seconds)
    if with_test and not diverged:
        rec["test_accuracy"] = 100 * elasticzo.evaluate(model, test, 256)["accuracy"]
    return rec


def markdown_table(records):
    lines = ["| stage | method | data | lr_zo | lr_bp | eps | clip | epochs | val % (quarters) | test % | "
             "median abs g | s |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        accs = " / ".join(f"{c['val_accuracy']:.1f}" for c in r["curve"])
        flag = " diverged" if r["diverged"] else (" unstable" if r["unstable"] else "")
        test = f"{r['test_accuracy']:.2f}" if "test_accuracy" in r else ""
        lines.append(f"| {r['stage']} | {r['method']} | {r['dataset']} | {r['lr_zo']:g} | {r['lr_bp']:g} | "
                     f"{r['eps']:g} | {r['grad_clip']:g} | {r['epochs']:.2f} | {accs}{flag} | {test} | "
                     f"{r['g_abs_median']:.3g} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_args(p)
    p.add_argument("--out", default=str(RESULTS_DIR / "sweep_hparams.jsonl"), help="results, one JSON per line")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--coarse-epochs", type=float, default=0.5)
    p.add_argument("--confirm-epochs", type=float, default=3.0)
    p.add_argument("--val", type=int, default=5000, help="training samples held out for validation")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dry-run", action="store_true", help="print the configurations still to run and stop")
    p.add_argument("--table", action="store_true", help="print the results as a Markdown table and stop")
    args = p.parse_args(argv)
    stages = args.stages.split(",")
    if any(s not in STAGES for s in stages):
        p.error(f"--stages takes names from {', '.join(STAGES)}")
    if args.table:
        print(markdown_table(read_jsonl(args.out)))
        return 0
    elasticzo.set_num_threads(args.threads)

    data = {}
    for name in ("mnist", "fashion-mnist"):
        if name == "fashion-mnist" and "fmnist" not in stages:
            continue
        train, val = validation_split(load_dataset(name, args.data_dir, "train"), args.val)
        data[name] = (train, val, load_dataset(name, args.data_dir, "test"))
    args.steps_per_epoch = num_batches(len(data["mnist"][0]), args.batch_size)
    coarse = max(4, round(args.coarse_epochs * args.steps_per_epoch))
    confirm = max(4, round(args.confirm_epochs * args.steps_per_epoch))
    planners = {"lr": (lr_stage, coarse), "refine": (refine_stage, coarse), "confirm": (confirm_stage, confirm),
                "fmnist": (fmnist_stage, confirm)}  # stage -> (planner, steps of its runs)

    for stage in stages:
        planner, steps = planners[stage]
        records = read_jsonl(args.out)
        done = {key(r, r["steps"]) for r in records}
        todo = [c for c in planner(records, coarse, confirm) if key(c, steps) not in done]
        print(f"stage {stage}: {len(todo)} configurations of {steps} steps to run", file=sys.stderr)
        for cfg in todo:
            if args.dry_run:
                print(f"  {cfg}", file=sys.stderr)
                continue
            rec = run(cfg, steps, stage, data, args, with_test=stage in ("confirm", "fmnist"))
            append_jsonl(args.out, rec)
            done.add(key(cfg, steps))
            print(f"  {stage} {cfg['method']} {cfg['dataset']} lr_zo={cfg['lr_zo']:g} lr_bp={cfg['lr_bp']:g} "
                  f"eps={cfg['eps']:g} clip={cfg['grad_clip']:g}: val {rec['val_accuracy']:.2f}%"
                  f"{' diverged' if rec['diverged'] else ''}{' unstable' if rec['unstable'] else ''} "
                  f"({rec['seconds']:.0f} s)", file=sys.stderr, flush=True)
        if args.dry_run:
            return 0  # later stages are planned from this one's results
    records = read_jsonl(args.out)
    for m in METHODS:
        print(f"chosen {m}: {chosen(records, confirm, m) or chosen_coarse(records, coarse, m)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
