"""Resumable sweep of ElasticZO-INT8's settings (perturbation range r, update bit-width b_zo, batch size, p_zero
schedule) by validation accuracy: LeNet-5 on MNIST or Fashion-MNIST, held-out training images, short runs.

A 100-epoch run is 15-25 min here, so each trial runs --epochs epochs with the paper's schedules (mu 5 -> 4 -> 3,
p_zero 0.33 -> 0.5 -> 0.9 at epochs 20 and 50) compressed by --compress: epoch k of a trial takes the settings of
epoch k * compress, so a 10-epoch trial with --compress 10 passes through all three phases. --p-zero replaces
the schedule by fixed values or by other values for its three phases (one trial each). Every trial of a sweep
shares the seed (init, data order, perturbations), so differences are paired. Results: one JSON line per trial in
--out (a stopped sweep skips the trials it has), and a table in the Markdown file next to it.
"""

import argparse
import itertools
import json
import os
import sys
import time

import numpy as np

import elasticzo
from elasticzo.data import num_batches
from _common import (RESULTS_DIR, add_runtime_args, append_jsonl, load_split, read_jsonl, validation_split,
                     write_atomic)


def ints(text):
    return [int(v) for v in text.split(",")]


def schedules(text):
    """Comma-separated p_zero settings: 'schedule' (the paper's, None), a fixed value, or 'a/b/c': a from epoch 0, b
    from epoch 20 and c from epoch 50 (the paper's phases with other values)."""
    return [None if v == "schedule" else [float(x) for x in v.split("/")] if "/" in v else float(v)
            for v in text.split(",")]


def p_zero_of(setting, epoch):
    """The p_zero of a sweep setting at (schedule) epoch `epoch`, or None where the trainer's own applies."""
    if isinstance(setting, list):
        return setting[0] if epoch < 20 else setting[1] if epoch < 50 else setting[2]
    return None


def trial_key(t):
    return (t["dataset"], t["method"], t["zo_range"], t["zo_update_bits"], t["batch"], str(t["zo_p_zero"]), t["epochs"],
            t["compress"], t["val"], t["seed"], t.get("precision", "int8"), t.get("log2_frac_bits"))


def run_trial(trial, train, val):
    model = elasticzo.models.lenet5(precision="int8", seed=trial["seed"])
    fixed = trial["zo_p_zero"] if isinstance(trial["zo_p_zero"], float) else None
    sign = {} if trial["log2_frac_bits"] is None else {"log2_frac_bits": trial["log2_frac_bits"]}
    trainer = elasticzo.ElasticZO(model, method=trial["method"], seed=trial["seed"], zo_range=trial["zo_range"],
                                  zo_update_bits=trial["zo_update_bits"], zo_p_zero=fixed,
                                  precision=trial["precision"], **sign)
    curve = []
    start = time.perf_counter()
    for epoch in range(trial["epochs"]):
        trainer.start_epoch(epoch * trial["compress"])  # mu and p_zero of the compressed schedule
        phase = p_zero_of(trial["zo_p_zero"], epoch * trial["compress"])
        if phase is not None:
            trainer.core.zo_p_zero = phase
        trainer.core.sign_agreement = (0, 0)
        losses = [trainer.core.step(x, y)["loss"] for x, y in trainer.training_batches(train, trial["batch"], epoch)]
        agree, steps = trainer.core.sign_agreement
        curve.append(dict(epoch=epoch + 1, train_loss=float(np.mean(losses)), p_zero=trainer.core.zo_p_zero,
                          mu=trainer.core.gradient_bits, val_accuracy=trainer.evaluate(val)["accuracy"],
                          sign_agreement=agree / steps if steps else None))
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
    best = max(c["val_accuracy"] for c in curve)
    return dict(trial, val_accuracy=curve[-1]["val_accuracy"], best_val_accuracy=best,
                steps=trial["epochs"] * num_batches(len(train), trial["batch"]),
                seconds=time.perf_counter() - start, load=os.getloadavg()[0], curve=curve)


def p_zero_text(setting):
    return "schedule" if setting is None else "/".join(map(str, setting)) if isinstance(setting, list) else str(setting)


def table(records):
    lines = ["| dataset | method | precision (F) | r | b_zo | batch | p_zero | epochs (compress) | val % last | "
             "val % best | final train loss | sign agreement | load |", "|---" * 13 + "|"]
    for r in sorted(records, key=lambda r: (r["dataset"], r["method"], -r["val_accuracy"])):
        precision = r.get("precision", "int8")
        if precision == "int8-intonly":
            precision += f" ({r['log2_frac_bits']})"
        agreements = [c["sign_agreement"] for c in r["curve"] if c.get("sign_agreement") is not None]
        agreement = f"{100 * np.mean(agreements):.1f}" if agreements else "–"
        lines.append(f"| {r['dataset']} | {r['method']} | {precision} | {r['zo_range']} | {r['zo_update_bits']} | "
                     f"{r['batch']} | "
                     f"{p_zero_text(r['zo_p_zero'])} | {r['epochs']} ({r['compress']}) | "
                     f"{100 * r['val_accuracy']:.2f} | {100 * r['best_val_accuracy']:.2f} | "
                     f"{r['curve'][-1]['train_loss']:.4f} | {agreement} | {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--methods", default="zo-feat-cls1", help="comma-separated ZO methods (default zo-feat-cls1)")
    p.add_argument("--ranges", type=ints, default=[3], help="perturbation ranges r, comma separated (default 3)")
    p.add_argument("--update-bits", type=ints, default=[1], help="b_zo values (default 1, the paper's)")
    p.add_argument("--batches", type=ints, default=[64], help="batch sizes (default 64)")
    p.add_argument("--p-zero", type=schedules, default=[None],
                   help="p_zero settings, comma separated: 'schedule' (the paper's; default), a fixed value, or a/b/c "
                        "(a from epoch 0, b from 20, c from 50)")
    p.add_argument("--precision", default="int8", choices=["int8", "int8-intonly"],
                   help="int8 (the sign from the floating-point loss) or int8-intonly (INT8*) (default int8)")
    p.add_argument("--log2-frac-bits", type=ints, default=[None],
                   help="int8-intonly: fractional bits F of the integer loss, comma separated (default: the library's)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per trial (default 10)")
    p.add_argument("--compress", type=int, default=10, help="schedule compression: epoch k uses epoch k*compress's "
                   "mu and p_zero (default 10: 10 epochs pass through the paper's 100-epoch schedule)")
    p.add_argument("--val", type=int, default=5000, help="validation images held out of the training set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS_DIR / "sweep_int8.jsonl"))
    add_runtime_args(p)
    args = p.parse_args()
    elasticzo.set_num_threads(args.threads)
    train, val = validation_split(load_split(p, args.dataset, args.data_dir, "train"), args.val)
    done = {trial_key(r) for r in read_jsonl(args.out)}
    for method, r, bits, batch, p_zero, frac in itertools.product(args.methods.split(","), args.ranges,
                                                                  args.update_bits, args.batches, args.p_zero,
                                                                  args.log2_frac_bits):
        trial = dict(dataset=args.dataset, method=method, zo_range=r, zo_update_bits=bits, batch=batch,
                     zo_p_zero=p_zero, epochs=args.epochs, compress=args.compress, val=args.val, seed=args.seed,
                     precision=args.precision, log2_frac_bits=frac if args.precision == "int8-intonly" else None)
        if trial_key(trial) in done:
            continue
        print(f"trial {trial}", file=sys.stderr, flush=True)
        append_jsonl(args.out, run_trial(trial, train, val))
    records = read_jsonl(args.out)
    md = os.path.splitext(args.out)[0] + ".md"
    text = ("# ElasticZO-INT8 sweep (validation accuracy)\n\nProduced by `python benchmarks/sweep_int8.py` (see its "
            "options); one line per trial in " + os.path.basename(args.out) + ".\n\n" + table(records))
    write_atomic(md, text)
    print(table(records))


if __name__ == "__main__":
    main()
