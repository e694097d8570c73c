"""The paper's Table 1 (FP32 rows) and Fig. 2: the four methods of LeNet-5 on MNIST and Fashion-MNIST, and of
PointNet on ModelNet40 (`--datasets modelnet40`); with `--precision int8` the INT8 column (ElasticZO-INT8, the
ternary ZO gradient from the floating-point loss of the dequantized logits; Full BP is NITI's integer backprop),
under OUT/int8/; with `--precision int8-intonly` the INT8* column (the gradient from integer arithmetic only; the
three ZO methods), under OUT/int8-intonly/.

Each (dataset, method) trains through `elasticzo train` in its own run directory under --out, so an interrupted
run continues from its checkpoint, and a finished shorter run is extended to more epochs by running again.
`--epochs-per-turn K` advances the runs K epochs at a time in turn, so that a stopped reproduction has every
method at about the same epoch (PointNet's epochs are long); the table then shows each run at the epoch it reached.
Writes a Markdown table (our test accuracy after --epochs beside the paper's 100-epoch figure) and a plot of the
train loss per epoch (needs matplotlib; without it the plot alone is skipped).
"""

import argparse
import json
import signal
import subprocess
import sys
from pathlib import Path

from _common import (DATASETS, METHODS, MODEL_OF, PAPER_FP32, PAPER_INT8, PAPER_INT8_INTONLY, RESULTS_DIR,
                     add_runtime_args, read_jsonl)

ALL_DATASETS = DATASETS + ("modelnet40",)
NAMES = {"full-zo": "Full ZO", "zo-feat-cls2": "ZO-Feat-Cls2", "zo-feat-cls1": "ZO-Feat-Cls1", "full-bp": "Full BP"}
DATA_NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "modelnet40": "ModelNet40"}
MODEL_NAMES = {"lenet5": "LeNet-5", "pointnet": "PointNet"}
PAPER_EPOCHS = {"lenet5": "100 epochs", "pointnet": "an epoch count the paper does not state"}


def train(run_dir: Path, dataset, method, epochs, args):
    """Brings the run in run_dir to `epochs` finished epochs (nothing to do if it has them)."""
    if len(read_jsonl(run_dir / "metrics.jsonl")) >= epochs:
        return
    cmd = [sys.executable, "-m", "elasticzo.cli", "train", "--model", MODEL_OF[dataset], "--dataset", dataset,
           "--method", method, "--epochs", str(epochs), "--out", str(run_dir), "--threads", str(args.threads),
           "--no-progress", "--precision", args.precision]
    if args.seed is not None:
        cmd += ["--seed", str(args.seed)]
    if (run_dir / "checkpoint.safetensors").exists():
        cmd.append("--resume")
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    print(f"{DATA_NAMES[dataset]} {NAMES[method]}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    # Own session: Ctrl-C and group signals reach only this script, which passes exactly one SIGINT on (a second
    # one would interrupt the trainer while it writes its checkpoint).
    proc = subprocess.Popen(cmd, start_new_session=True)
    try:
        code = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)  # the trainer saves a checkpoint before it exits
        proc.wait()
        raise
    if code != 0:
        raise SystemExit(f"elasticzo train failed (exit code {code}) for {dataset} {method}")


def collect(run_dir: Path, epochs):
    """The first `epochs` epochs of a run's metrics (fewer if it has not reached them) and its configuration, or None
    if it has none."""
    metrics = read_jsonl(run_dir / "metrics.jsonl")[:epochs]
    if not metrics:
        return None
    cfg = json.loads((run_dir / "config.json").read_text())
    return {"metrics": metrics, "config": cfg["config"], "batch_size": cfg["info"]["batch_size"]}


def table(results, epochs, datasets, methods, precision="fp32"):
    head = "| method |" + "".join(f" {DATA_NAMES[d]} ours | paper | diff |" for d in datasets)
    models = list(dict.fromkeys(MODEL_OF[d] for d in datasets))
    lines = [f"Test accuracy (%) of {' and '.join(MODEL_NAMES[m] for m in models)}, {precision.upper()}, after "
             f"**{epochs} epoch{'s' if epochs != 1 else ''}** (the paper's figures: "
             f"{'; '.join(f'{MODEL_NAMES[m]} after {PAPER_EPOCHS[m]}' for m in models)}). A run stopped short shows "
             "its last epoch in brackets.", "", head, "|---|" + "---|---|---|" * len(datasets)]
    for m in methods:
        row = f"| {NAMES[m]} |"
        for d in datasets:
            r = results.get((d, m))
            paper = {"int8": PAPER_INT8, "int8-intonly": PAPER_INT8_INTONLY}.get(precision, PAPER_FP32)[d][m]
            if r is None:
                row += f" – | {paper:.2f} | – |"
                continue
            ours = 100 * r["metrics"][-1]["test_accuracy"]
            short = f" ({len(r['metrics'])})" if len(r["metrics"]) < epochs else ""
            row += f" {ours:.2f}{short} | {paper:.2f} | {ours - paper:+.2f} |"
        lines.append(row)
    # Runs not started yet (None) have a row above and nothing below.
    started = sorted(((k, r) for k, r in results.items() if r is not None),
                     key=lambda kv: (datasets.index(kv[0][0]), methods.index(kv[0][1])))
    seeds = sorted({r["config"].get("seed", 0) for _, r in started})
    if seeds != [0] and seeds:  # the library's default seed goes unsaid, as it did before --seed
        lines[0] += f" Seed{'s' if len(seeds) > 1 else ''}: {', '.join(map(str, seeds))}."
    # The best epoch is shown, never reported as the result: picking it would select on the test set.
    # INT8 runs carry the FP32 rates in their config, unused: their settings are r, b_zo, p_zero and mu.
    settings = "r | b_zo | p_zero | first mu" if precision != "fp32" else "lr_zo | lr_bp | eps | clip"
    lines += ["", f"| dataset | method | {settings} | batch | augment | epochs | final train loss | "
              "best test % (epoch) | s/epoch |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (d, m), r in started:
        c, h = r["config"], r["metrics"]
        best = max(range(len(h)), key=lambda i: h[i]["test_accuracy"])
        if precision != "fp32":
            p_zero = c.get("zo_p_zero")
            p_zero = ("schedule" if p_zero is None else "/".join(f"{p:g}" for p in p_zero)
                      if isinstance(p_zero, list) else f"{p_zero:g}")
            values = (f"{c.get('zo_range', '–')} | {c.get('zo_update_bits', '–')} | {p_zero} | "
                      f"{h[0]['gradient_bits']}")
        else:
            values = f"{c['lr_zo']:g} | {c['lr_bp']:g} | {c['eps']:g} | {c['grad_clip']:g}"
        lines.append(f"| {DATA_NAMES[d]} | {NAMES[m]} | {values} | {r['batch_size']} | {c.get('augment', 'none')} | "
                     f"{len(h)} | "
                     f"{h[-1]['train_loss']:.4f} | "
                     f"{100 * h[best]['test_accuracy']:.2f} ({best + 1}) | {sum(x['seconds'] for x in h) / len(h):.1f} |")
    lines += ["", "Test accuracy (%) by epoch (at most 10 points per run, the last epoch always):", ""]
    for (d, m), r in started:
        h = r["metrics"]
        shown = sorted({round(i * (len(h) - 1) / 9) for i in range(10)}) if len(h) > 10 else range(len(h))
        lines.append(f"- {DATA_NAMES[d]} {NAMES[m]}: " +
                     ", ".join(f"{i + 1}: {100 * h[i]['test_accuracy']:.2f}" for i in shown))
    return "\n".join(lines) + "\n"


def plot(results, epochs, datasets, methods, path):
    """Train loss per epoch per method, one panel per dataset (the paper's Fig. 2); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return False
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.6), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        for m in methods:
            r = results.get((d, m))
            if r is not None:
                ax.plot(range(1, len(r["metrics"]) + 1), [x["train_loss"] for x in r["metrics"]],
                        marker="o" if epochs <= 10 else None, label=NAMES[m])
        ax.set_title(f"{MODEL_NAMES[MODEL_OF[d]]} / {DATA_NAMES[d]} ({epochs} epochs)")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("train loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def default_outputs(precision, datasets, seed=None):
    """(table, plot) paths under results/ for runs of `precision` on `datasets` with `seed`: named by every setting
    that makes them other runs, so a run of another seed or subset of datasets never overwrites the recorded table
    of the default ones."""
    suffix = "" if datasets == list(DATASETS) else "_" + "_".join(d.replace("-", "") for d in datasets)
    suffix += f"_seed{seed}" if seed not in (None, 0) else ""
    loss = f"{precision}_loss" if precision != "fp32" else "loss"
    return RESULTS_DIR / f"table1_{precision}{suffix}.md", RESULTS_DIR / f"table1_{loss}{suffix}.png"


def _names(text, allowed, what):
    names = text.split(",")
    bad = [n for n in names if n not in allowed]
    if bad:
        raise SystemExit(f"unknown {what} {', '.join(bad)}; choose from {', '.join(allowed)}")
    return [n for n in allowed if n in names]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=100, help="epochs per run (default 100, the paper's setting)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help=f"comma-separated, from {', '.join(ALL_DATASETS)} (default: {','.join(DATASETS)})")
    p.add_argument("--epochs-per-turn", type=int, default=None,
                   help="advance every run this many epochs in turn until --epochs (default: each run to --epochs "
                        "before the next starts)")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: write the table and plot from the runs in --out as far as they got")
    p.add_argument("--out", default="runs/paper_table1", help="run directories: OUT/<dataset>/<method>")
    p.add_argument("--table", default=None,
                   help="Markdown table to write (default: results/table1_fp32.md for MNIST and Fashion-MNIST, "
                        "results/table1_fp32_<datasets>.md for others, e.g. table1_fp32_modelnet40.md; _seedN added "
                        "for --seed N other than 0)")
    p.add_argument("--plot", default=None, help="loss curves (default: named like --table, table1_loss*.png)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of every run (init, batch order, perturbations; default: the library's, 0); give another "
                        "seed its own --out, since a run resumes with the seed it started with")
    p.add_argument("--precision", choices=["fp32", "int8", "int8-intonly"], default="fp32",
                   help="the FP32 rows, the INT8 column or the INT8* column (int8-intonly: --methods defaults to the "
                        "three ZO methods; runs under OUT/<precision>/, results/table1_<precision>*.md) "
                        "(default: fp32)")
    add_runtime_args(p)
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    if args.epochs_per_turn is not None and args.epochs_per_turn < 1:
        p.error("--epochs-per-turn must be >= 1")
    if args.seed is not None and not 0 <= args.seed < 2**64:  # elasticzo train's range, checked before any run starts
        p.error(f"--seed must lie in [0, 2^64), got {args.seed}")
    int8 = args.precision != "fp32"
    if args.precision == "int8-intonly" and args.methods == ",".join(METHODS):
        args.methods = ",".join(m for m in METHODS if m != "full-bp")  # INT8* has no Full BP cell (no ZO gradient)
    methods = _names(args.methods, METHODS, "method")
    datasets = _names(args.datasets, ALL_DATASETS, "dataset")
    turn = args.epochs_per_turn or args.epochs
    table_path, plot_path = default_outputs(args.precision, datasets, args.seed)
    args.table = args.table or str(table_path)
    args.plot = args.plot or str(plot_path)
    out = Path(args.out) / args.precision if int8 else Path(args.out)

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C: the running trainer checkpoints
    results = {}
    try:
        for target in ([] if args.report_only else range(min(turn, args.epochs), args.epochs + turn, turn)):
            for d in datasets:
                for m in methods:
                    train(out / d / m, d, m, min(target, args.epochs), args)
        for d in datasets:
            for m in methods:
                results[(d, m)] = collect(out / d / m, args.epochs)
    except KeyboardInterrupt:
        print(f"interrupted: run the same command again to continue from the checkpoints in {args.out}",
              file=sys.stderr)
        return 130
    text = table(results, args.epochs, datasets, methods, args.precision)
    Path(args.table).parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python benchmarks/paper_table1.py"] + (sys.argv[1:] if argv is None else list(argv)))
    title = f"# Table 1 ({args.precision.upper()}), reproduced: {args.epochs} epochs\n\n"
    Path(args.table).write_text(title + text +
                                f"\nProduced by `{command}`; train loss per epoch: {Path(args.plot).name}.\n")
    print(text)
    if plot(results, args.epochs, datasets, methods, args.plot):
        print(f"loss curves: {args.plot}")
    else:
        print("matplotlib is not installed: skipped the loss-curve plot (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
