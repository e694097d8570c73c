"""Validation sweep of ElasticZO-INT8's fine-tuning settings for Table 2 (INT8), never touching the test split.

The fine-tuning training subset of paper_table2.py (the first --train-samples training images, rotated by the angle)
is split by `_common.validation_split`: --val of them are held out for validation, the rest fine-tune the pretrained
INT8 LeNet-5 (a finished `elasticzo train --precision int8 --method full-bp` run) for --epochs epochs. One run per
setting given with --grid (range r, fixed p_zero or the paper's schedule, the BP part's first mu, batch size).
After every epoch a run records its validation accuracy, the share of ZO steps whose ternary gradient g was 0 / +1,
and per parameter layer the share of weights whose mantissa changed during the epoch: the evidence of how the ZO
part moves. Runs append to OUT/runs.jsonl (a finished setting is skipped when the script is started again); the
Markdown summary goes to --table.
"""

import argparse
import itertools
import os
import time
from pathlib import Path

import numpy as np

import elasticzo
from elasticzo.data import rotated_subset
from _common import RESULTS_DIR, add_runtime_args, append_jsonl, load_split, read_jsonl, validation_split, write_atomic

NAMES = {"full-zo": "Full ZO", "zo-feat-cls2": "ZO-Feat-Cls2", "zo-feat-cls1": "ZO-Feat-Cls1"}


def parse_grid(text):
    """'r=16,32 p=sched,0.5 mu=5 b=64' -> the settings (dicts), every combination."""
    keys = {"r": int, "p": lambda v: None if v == "sched" else float(v), "mu": int, "b": int}
    axes = {"r": [16], "p": [None], "mu": [5], "b": [64]}
    for part in text.split():
        k, _, values = part.partition("=")
        if k not in keys or not values:
            raise SystemExit(f"--grid: {part!r} is not one of r=.. p=.. mu=.. b=.. (comma-separated values)")
        axes[k] = [keys[k](v) for v in values.split(",")]
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def key_of(dataset, angle, method, s):
    p = "sched" if s["p"] is None else f"{s['p']:g}"
    return f"{dataset}/{angle:g}/{method}/r{s['r']}/p{p}/mu{s['mu']}/b{s['b']}"


def finetune(pretrained, train, val, method, s, epochs):
    model = elasticzo.from_torch(pretrained, elasticzo.models.lenet5(precision="int8"))
    trainer = elasticzo.ElasticZO(model, method=method, seed=0, zo_range=s["r"], zo_p_zero=s["p"],
                                  gradient_bits=s["mu"])
    names = model.parameter_names()
    curve = []
    for epoch in range(epochs):
        before = {n: model.state_dict()[n].copy() for n in names}
        trainer.start_epoch(epoch)
        g, losses = [], []
        for x, y in trainer.training_batches(train, s["b"], epoch):
            out = trainer.core.step(x, y)
            g.append(out.get("projected_grad", 0.0))
            losses.append(out["loss"])
        trainer.epoch += 1
        after = model.state_dict()
        g = np.sign(np.array(g))
        curve.append(dict(
            epoch=epoch + 1, train_loss=float(np.mean(losses)),
            val_accuracy=elasticzo.evaluate(model, val, batch_size=s["b"])["accuracy"],
            g_zero=float((g == 0).mean()), g_plus=float((g > 0).mean()),
            changed={n.split(".")[0]: float((after[n] != before[n]).mean()) for n in names},
            mean_abs={n.split(".")[0]: float(np.abs(after[n].astype(np.int32)).mean()) for n in names}))
    return curve


def summary_table(records, args):
    lines = [
        "# Table 2 (INT8) fine-tuning settings, validation sweep",
        "",
        f"Validation accuracy (%) of the INT8 LeNet-5 fine-tuned {args.epochs} epochs on "
        f"{args.train_samples - args.val} of the first {args.train_samples} rotated training images, validated on the "
        f"other {args.val} (`_common.validation_split`); the test split is never used. Settings: r (ZO range), p "
        "(p_zero, 'sched' = the paper's 0.33 / 0.5 from epoch 20), mu (the BP part's first gradient bit-width), "
        "b (batch size). 'last5' = mean validation accuracy of the last 5 epochs (the selection figure: a single "
        "epoch's figure moves by ~1 point); 'changed per epoch' = share of each layer's weight mantissas that differ "
        "after an epoch from before it, averaged over the run (ZO and BP layers alike); 'g=0' = share of ZO steps with a zero ternary gradient.",
        "",
        "| dataset | angle | method | r | p | mu | b | val % last | last5 | best (epoch) | g=0 | changed per epoch "
        "(conv1 conv2 fc1 fc2 fc3) | s/run | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        c = r["curve"]
        acc = [e["val_accuracy"] * 100 for e in c]
        best = int(np.argmax(acc))
        layers = " ".join(f"{np.mean([e['changed'][n] for e in c]):.2f}" for n in c[0]["changed"])
        s = r["setting"]
        lines.append(
            f"| {r['dataset']} | {r['angle']:g} | {NAMES[r['method']]} | {s['r']} | "
            f"{'sched' if s['p'] is None else s['p']} | {s['mu']} | {s['b']} | {acc[-1]:.2f} | "
            f"{np.mean(acc[-5:]):.2f} | {acc[best]:.2f} ({best + 1}) | {np.mean([e['g_zero'] for e in c]):.2f} | "
            f"{layers} | {r['seconds']:.0f} | {r['load']:.1f} |")
    lines += ["", f"Every run in `{args.out}/runs.jsonl`; last rewritten by `python benchmarks/sweep_table2_int8.py "
                  f"{' '.join(args.argv)}`."]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrained", required=True, help="a finished INT8 Full BP run directory (its checkpoint)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], required=True)
    p.add_argument("--angle", type=float, required=True)
    p.add_argument("--methods", nargs="+", choices=list(NAMES), default=["zo-feat-cls2"])
    p.add_argument("--grid", default="", help="settings, e.g. 'r=8,16,32 p=sched,0.5,0.9 mu=5 b=64' (each axis "
                                              "defaults to the table's value: r=16 p=sched mu=5 b=64)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--train-samples", type=int, default=4096, help="the fine-tuning training subset (as the table)")
    p.add_argument("--val", type=int, default=1024, help="images of it held out for validation")
    p.add_argument("--out", default="runs/sweep_table2_int8", help="where runs.jsonl is kept")
    p.add_argument("--table", default=str(RESULTS_DIR / "sweep_table2_int8.md"))
    add_runtime_args(p)
    args = p.parse_args()
    args.argv = [a if " " not in a else f"'{a}'" for a in os.sys.argv[1:]]
    elasticzo.set_num_threads(args.threads)
    full = load_split(p, args.dataset, args.data_dir, "train")
    train, val = validation_split(rotated_subset(full.subset(range(args.train_samples)), args.angle), args.val)
    pretrained = Path(args.pretrained) / "checkpoint.safetensors"
    log = Path(args.out) / "runs.jsonl"
    done = {r["key"] for r in read_jsonl(log)} if log.exists() else set()
    for method in args.methods:
        for s in parse_grid(args.grid):
            key = key_of(args.dataset, args.angle, method, s)
            if key in done:
                continue
            load, t0 = os.getloadavg()[0], time.perf_counter()
            curve = finetune(pretrained, train, val, method, s, args.epochs)
            rec = dict(key=key, dataset=args.dataset, angle=args.angle, method=method, setting=s, curve=curve,
                       seconds=time.perf_counter() - t0, load=max(load, os.getloadavg()[0]))
            append_jsonl(log, rec)
            print(key, f"val {curve[-1]['val_accuracy'] * 100:.2f}", flush=True)
    order = list(NAMES)
    records = sorted(read_jsonl(log), key=lambda r: (r["dataset"], r["angle"], order.index(r["method"]),
                                                     r["setting"]["r"], r["setting"]["p"] or 0.0,
                                                     r["setting"]["mu"], r["setting"]["b"]))
    write_atomic(Path(args.table), summary_table(records, args))


if __name__ == "__main__":
    main()
