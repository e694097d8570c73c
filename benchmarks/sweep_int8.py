"""Resumable sweep of ElasticZO-INT8's settings (perturbation range r, update bit-width b_zo, batch size, p_zero
schedule, the backprop part's first mu, the int8 weight initialization) by validation accuracy: LeNet-5 on MNIST
or Fashion-MNIST, held-out training images, short runs.

A 100-epoch run is 15-25 min here, so each trial runs --epochs epochs with the paper's schedules (mu 5 -> 4 -> 3,
p_zero 0.33 -> 0.5 -> 0.9 at epochs 20 and 50) compressed by --compress: epoch k of a trial takes the settings of
epoch k * compress, so a 10-epoch trial with --compress 10 passes through all three phases. --p-zero replaces
the schedule by fixed values or by other values for its three phases (one trial each); --ranges takes a/b/c the
same way (r per p_zero phase). Every trial of a sweep
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
from elasticzo.rounding import DEFAULT as DEFAULT_ROUNDING
from elasticzo.rounding import parse_spec
from elasticzo.trainer import sign_statistics
from _common import (RESULTS_DIR, add_runtime_args, append_jsonl, load_split, read_jsonl, validation_split,
                     write_atomic)


def ints(text):
    return [int(v) for v in text.split(",")]


def per_phase(cast):
    """Comma-separated settings, each a single value or 'a/b/c': a from epoch 0, b from 20, c from 50 (the paper's
    phases)."""
    return lambda text: [[cast(x) for x in v.split("/")] if "/" in v else cast(v) for v in text.split(",")]


def schedules(text):
    """Comma-separated p_zero settings: 'schedule' (the paper's, None), a fixed value, or 'a/b/c': a from epoch 0, b
    from epoch 20 and c from epoch 50 (the paper's phases with other values)."""
    return [None if v == "schedule" else [float(x) for x in v.split("/")] if "/" in v else float(v)
            for v in text.split(",")]


def phase_value(setting, epoch):
    """A per-phase sweep setting's value at (schedule) epoch `epoch`, or None where the trainer's own applies."""
    if isinstance(setting, list):
        return setting[0] if epoch < 20 else setting[1] if epoch < 50 else setting[2]
    return None


def trial_key(t):
    return (t["dataset"], t["method"], str(t["zo_range"]), t["zo_update_bits"], t["batch"], str(t["zo_p_zero"]),
            t["epochs"], t["compress"], t["val"], t["seed"], t.get("precision", "int8"), t.get("log2_frac_bits"),
            t.get("gradient_bits"), json.dumps(t.get("rounding"), sort_keys=True), t.get("int8_init"))


def run_trial(trial, train, val):
    model = elasticzo.models.lenet5(precision="int8", seed=trial["seed"], int8_init=trial.get("int8_init"))
    fixed = trial["zo_p_zero"] if isinstance(trial["zo_p_zero"], float) else None
    sign = {} if trial["log2_frac_bits"] is None else {"log2_frac_bits": trial["log2_frac_bits"]}
    first_range = trial["zo_range"][0] if isinstance(trial["zo_range"], list) else trial["zo_range"]
    trainer = elasticzo.ElasticZO(model, method=trial["method"], seed=trial["seed"], zo_range=first_range,
                                  zo_update_bits=trial["zo_update_bits"], zo_p_zero=fixed,
                                  precision=trial["precision"], gradient_bits=trial["gradient_bits"],
                                  rounding=trial.get("rounding"), **sign)
    curve = []
    start = time.perf_counter()
    for epoch in range(trial["epochs"]):
        trainer.start_epoch(epoch * trial["compress"])  # mu and p_zero of the compressed schedule
        phase = phase_value(trial["zo_p_zero"], epoch * trial["compress"])
        if phase is not None:
            trainer.core.zo_p_zero = phase
        phase = phase_value(trial["zo_range"], epoch * trial["compress"])
        if phase is not None:
            trainer.core.zo_range = phase
        trainer.core.sign_agreement = (0, 0)
        trainer.core.sign_ties = (0, 0)
        losses = [trainer.core.step(x, y)["loss"] for x, y in trainer.training_batches(train, trial["batch"], epoch)]
        signs = sign_statistics(*trainer.core.sign_agreement, *trainer.core.sign_ties)
        curve.append(dict(epoch=epoch + 1, train_loss=float(np.mean(losses)), p_zero=trainer.core.zo_p_zero,
                          zo_range=trainer.core.zo_range, mu=trainer.core.gradient_bits,
                          val_accuracy=trainer.evaluate(val)["accuracy"],
                          **(signs if signs["sign_steps"] else {"sign_agreement": None})))
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
    best = max(c["val_accuracy"] for c in curve)
    return dict(trial, val_accuracy=curve[-1]["val_accuracy"], best_val_accuracy=best,
                steps=trial["epochs"] * num_batches(len(train), trial["batch"]),
                seconds=time.perf_counter() - start, load=os.getloadavg()[0], curve=curve)


def phase_text(setting):
    return "schedule" if setting is None else "/".join(map(str, setting)) if isinstance(setting, list) else str(setting)


def rounding_text(setting):
    """The classes a trial rounds otherwise than the library's default, 'default' if none."""
    changed = [f"{k}={v}" for k, v in (setting or {}).items() if v != DEFAULT_ROUNDING[k]]
    return ", ".join(changed) or "default"


def sign_text(curve):
    """Mean sign agreement over the epochs (INT8*), with the ties and the agreement over decided steps when
    counted."""
    epochs = [c for c in curve if c.get("sign_agreement") is not None]
    if not epochs:
        return "–"
    text = f"{100 * np.mean([c['sign_agreement'] for c in epochs]):.1f}"
    decided = [c["sign_agreement_decided"] for c in epochs if c.get("sign_agreement_decided") is not None]
    if decided:
        text += (f" (ties {100 * np.mean([c['sign_ties'] for c in epochs]):.1f}, decided "
                 f"{100 * np.mean(decided):.1f})")
    return text


def last_five(curve):
    """The mean validation accuracy of the last five epochs (the decisions' second figure: one epoch swings)."""
    return np.mean([c["val_accuracy"] for c in curve[-5:]])


def table(records):
    lines = ["| dataset | method | precision (F) | r | b_zo | batch | p_zero | first mu | rounding | init | seed | "
             "epochs (compress) | val % last | val % last 5 | val % best | final train loss | sign agreement | load |",
             "|---" * 18 + "|"]
    for r in sorted(records, key=lambda r: (r["dataset"], r["method"], -r["val_accuracy"])):
        precision = r.get("precision", "int8")
        if precision == "int8-intonly":
            precision += f" ({r['log2_frac_bits']})"
        mu = r.get("gradient_bits")
        lines.append(f"| {r['dataset']} | {r['method']} | {precision} | {phase_text(r['zo_range'])} | "
                     f"{r['zo_update_bits']} | {r['batch']} | {phase_text(r['zo_p_zero'])} | "
                     f"{'5 (schedule)' if mu is None else mu} | {rounding_text(r.get('rounding'))} | "
                     f"{r.get('int8_init') or 'xavier_normal'} | {r['seed']} | "
                     f"{r['epochs']} ({r['compress']}) | "
                     f"{100 * r['val_accuracy']:.2f} | {100 * last_five(r['curve']):.2f} | "
                     f"{100 * r['best_val_accuracy']:.2f} | "
                     f"{r['curve'][-1]['train_loss']:.4f} | {sign_text(r['curve'])} | {r['load']:.1f} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--methods", default="zo-feat-cls1", help="comma-separated ZO methods (default zo-feat-cls1)")
    p.add_argument("--ranges", type=per_phase(int), default=[16],
                   help="perturbation ranges r, comma separated, each a value or a/b/c (r per p_zero phase: a from "
                        "epoch 0, b from 20, c from 50) (default 16, the library's)")
    p.add_argument("--update-bits", type=ints, default=[1], help="b_zo values (default 1, the paper's)")
    p.add_argument("--batches", type=ints, default=[64], help="batch sizes (default 64)")
    p.add_argument("--gradient-bits", type=lambda t: [None if v == "schedule" else int(v) for v in t.split(",")],
                   default=[None], help="first mu of the backprop part's schedule (mu0, mu0 - 1, mu0 - 2 at epochs "
                   "0, 20, 50), comma separated; 'schedule' is the paper's 5 (default)")
    p.add_argument("--rounding", type=lambda t: [None if v == "default" else parse_spec(v) for v in t.split(";")],
                   default=[None], help="NITI's rounding per tensor class, ';'-separated settings, each 'default' (the "
                   "library's) or as `elasticzo train --rounding` takes it (e.g. final-version;activations=stochastic)")
    p.add_argument("--p-zero", type=schedules, default=[None],
                   help="p_zero settings, comma separated: 'schedule' (the paper's; default), a fixed value, or a/b/c "
                        "(a from epoch 0, b from 20, c from 50)")
    p.add_argument("--precision", default="int8", choices=["int8", "int8-intonly"],
                   help="int8 (the sign from the floating-point loss) or int8-intonly (INT8*) (default int8)")
    p.add_argument("--log2-frac-bits", type=ints, default=[None],
                   help="int8-intonly: fractional bits F of the integer loss, comma separated (default: the library's)")
    p.add_argument("--int8-init", type=lambda t: [None if v == "default" else v for v in t.split(",")],
                   default=[None], help="weight initializations, comma separated: 'default' (the layers' Xavier "
                   f"normal) or one of {', '.join(elasticzo.models.INT8_INITS)}")
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
    for method, r, bits, batch, p_zero, frac, mu, rounding, init in itertools.product(
            args.methods.split(","), args.ranges, args.update_bits, args.batches, args.p_zero, args.log2_frac_bits,
            args.gradient_bits, args.rounding, args.int8_init):
        trial = dict(dataset=args.dataset, method=method, zo_range=r, zo_update_bits=bits, batch=batch,
                     zo_p_zero=p_zero, epochs=args.epochs, compress=args.compress, val=args.val, seed=args.seed,
                     precision=args.precision, log2_frac_bits=frac if args.precision == "int8-intonly" else None,
                     gradient_bits=mu, rounding=rounding, int8_init=init)
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
