"""PointNet on ModelNet40 in INT8 and INT8* against FP32 (issue 13, item 5; the paper reports no INT8 PointNet).

Default: each --methods preset trained for --epochs on the whole training set (1,024 points per shape, batch 32),
once per precision (fp32, int8, int8-intonly) with PointNet's defaults (elasticzo.hparams; INT8 starts NITI's mu
schedule at 3), then evaluated on the whole test set: test accuracy, seconds per epoch, the tracker's peak of the
training buffers during the epoch (the run summary's peak_memory_bytes) and SPEC §4's model of one step
(elasticzo.memory_report, the figures of `elasticzo memory --model pointnet --precision P`).

--mu-sweep: what chose INT8's first mu. Each preset of --methods, each mu of --mus and seeds 0 and 1, for --epochs
on the 16-point cut of 4,096 training shapes that tests/python/test_pointnet.py trains on, evaluated on its
class-balanced 800-shape test cut (chance 2.5%).

Prints a Markdown table and the load average before and after; sets no environment variable.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import numpy as np

import elasticzo
from elasticzo import _core, hparams
from elasticzo.memory import memory_report
from _common import add_runtime_args, load_split

PRECISIONS = ("fp32", "int8", "int8-intonly")


def trainer_for(method, precision, seed=0, gradient_bits=None):
    hp = hparams.defaults("pointnet", "modelnet40", method)
    if precision == "fp32":
        return elasticzo.ElasticZO(elasticzo.models.pointnet(seed=seed), method=method, lr_zo=hp.lr_zo,
                                   lr_bp=hp.lr_bp, eps=hp.eps, grad_clip=hp.grad_clip, seed=seed)
    model = elasticzo.models.pointnet(seed=seed, precision="int8")
    return elasticzo.ElasticZO(model, method=method, precision=precision, seed=seed,
                               gradient_bits=hp.gradient_bits if gradient_bits is None else gradient_bits)


def test_cut(train, test, points=16):
    """tests/python/test_pointnet.py's data: 4,096 training shapes and 20 test shapes of each class, `points` each."""
    rng = np.random.default_rng(0)
    balanced = np.concatenate([rng.choice(np.flatnonzero(test.y == c), 20, replace=False) for c in range(40)])
    picked = rng.choice(len(train), 4096, replace=False)
    keep = np.sort(np.random.default_rng(0).choice(train.x.shape[1], points, replace=False))

    def cut(ds, idx):
        sub = ds.subset(idx)
        return replace(sub, x=np.ascontiguousarray(sub.x[:, keep]))
    return cut(train, picked), cut(test, balanced)


def mu_sweep(args, train, test):
    train, test = test_cut(train, test)
    precision = next((q for q in args.precisions.split(",") if q != "fp32"), None)
    if precision is None:
        sys.exit("--mu-sweep: mu is an INT8 setting; give int8 or int8-intonly in --precisions")
    rows = []
    for method in args.methods.split(","):
        for mu in (int(m) for m in args.mus.split(",")):
            for seed in (0, 1):
                tr = trainer_for(method, precision, seed, gradient_bits=mu)
                curve = []
                for _ in range(args.epochs):
                    tr.fit(train, epochs=1, batch_size=32, progress=False)
                    curve.append(100 * tr.evaluate(test, batch_size=32)["accuracy"])
                rows.append(dict(method=method, precision=tr.precision, mu=mu, seed=seed, accuracy=curve,
                                 train_loss=[h["train_loss"] for h in tr.history]))
                print(f"  {method} {tr.precision} mu {mu} seed {seed}: " + ", ".join(f"{a:.2f}" for a in curve),
                      file=sys.stderr, flush=True)
    lines = [f"| method | precision | mu | seed | test % after epoch 1..{args.epochs} | train loss |", "|---" * 6 + "|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['precision']} | {r['mu']} | {r['seed']} | "
                     f"{' / '.join(f'{a:.2f}' for a in r['accuracy'])} | "
                     f"{' / '.join(f'{v:.3f}' for v in r['train_loss'])} |")
    return rows, lines


def comparison(args, train, test):
    rows = []
    for method in args.methods.split(","):
        for precision in args.precisions.split(","):
            tr = trainer_for(method, precision)
            start = time.perf_counter()
            tr.fit(train, epochs=args.epochs, batch_size=32, progress=False)
            seconds = (time.perf_counter() - start) / args.epochs
            last = tr.history[-1]
            report = memory_report("pointnet", 32, method, precision="int8" if precision != "fp32" else "fp32")
            rows.append(dict(method=method, precision=precision, accuracy=100 * tr.evaluate(test, batch_size=32)
                             ["accuracy"], train_loss=last["train_loss"], seconds_per_epoch=seconds,
                             peak_memory_bytes=max(h["peak_memory_bytes"] for h in tr.history),
                             model_bytes=report["model"]["total"], planned_bytes=report["planned"]["total"],
                             sign_agreement=last.get("sign_agreement")))
            print(f"  {method} {precision}: {rows[-1]['accuracy']:.2f}% after {args.epochs} epoch(s), "
                  f"{seconds:.1f} s/epoch", file=sys.stderr, flush=True)
    mib = 2.0 ** 20
    lines = [f"| method | precision | test % after {args.epochs} epoch(s) | train loss | s / epoch | peak MiB "
             "(measured) | SPEC §4 model MiB | sign agreement |", "|---" * 8 + "|"]
    for r in rows:
        agree = "" if r["sign_agreement"] is None else f"{100 * r['sign_agreement']:.1f}%"
        lines.append(f"| {r['method']} | {r['precision']} | {r['accuracy']:.2f} | {r['train_loss']:.4f} | "
                     f"{r['seconds_per_epoch']:.1f} | {r['peak_memory_bytes'] / mib:.1f} | "
                     f"{r['model_bytes'] / mib:.1f} | {agree} |")
    return rows, lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="zo-feat-cls1", help="comma-separated presets (default zo-feat-cls1)")
    p.add_argument("--precisions", default=",".join(PRECISIONS),
                   help="comma-separated, of fp32, int8, int8-intonly (default: all; --mu-sweep takes the first "
                        "INT8 one)")
    p.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    p.add_argument("--mu-sweep", action="store_true", help="the mu sweep on the test's 16-point cut instead")
    p.add_argument("--mus", default="2,3,4,5,6", help="--mu-sweep: first mu values (default 2,3,4,5,6)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON line at the end")
    add_runtime_args(p)
    args = p.parse_args(argv)
    bad = [q for q in args.precisions.split(",") if q not in PRECISIONS]
    if bad or args.epochs < 1:
        p.error(f"--precisions takes {', '.join(PRECISIONS)} (got {', '.join(bad)}); --epochs must be >= 1")
    _core.set_num_threads(args.threads)
    train = load_split(p, "modelnet40", args.data_dir, "train")
    test = load_split(p, "modelnet40", args.data_dir, "test")
    load_before = os.getloadavg()
    rows, lines = (mu_sweep if args.mu_sweep else comparison)(args, train, test)
    load_after = os.getloadavg()
    print("\n".join(lines))
    print(f"\n{args.threads} thread(s), ISA {_core.active_isa()}, load average (1, 5, 15 min) "
          f"{', '.join(f'{v:.1f}' for v in load_before)} before, {', '.join(f'{v:.1f}' for v in load_after)} after")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
