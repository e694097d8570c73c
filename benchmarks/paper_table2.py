"""The paper's Table 2 (FP32): fine-tuning LeNet-5 on rotated MNIST and Fashion-MNIST with each method.

Per dataset: pretrain on the original training set with Full BP and Adam for --pretrain-epochs (the paper: 1);
"w/o FT" is that model's accuracy on the rotated test subset. Then, per angle and method, fine-tune for --epochs
(the paper: 50) on the first --train-samples training images rotated by the angle, starting from the pretrained
weights (`elasticzo train --init-from`), and test on the first --test-samples test images rotated likewise.
Every run lives in its own directory under --out and goes through `elasticzo train`, so an interrupted script
continues from the checkpoints when run again with the same command. Writes a Markdown table of our accuracy
beside the paper's 40 FP32 figures.
"""

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from _common import DATASETS, METHODS, RESULTS_DIR, read_jsonl, run_elasticzo

NAMES = {"w/o-ft": "w/o FT", "full-zo": "Full ZO", "zo-feat-cls2": "ZO-Feat-Cls2", "zo-feat-cls1": "ZO-Feat-Cls1",
         "full-bp": "Full BP"}
DATA_NAMES = {"mnist": "Rotated MNIST", "fashion-mnist": "Rotated F-MNIST"}
ROWS = ("w/o-ft", *METHODS)

# SPEC §10, Table 2 (FP32): test accuracy (%) at the paper's (lost) smaller and larger rotation angle.
PAPER_TABLE2_FP32 = {
    "mnist": {"w/o-ft": (74.41, 46.58), "full-zo": (85.94, 74.71), "zo-feat-cls2": (90.04, 86.23),
              "zo-feat-cls1": (93.16, 91.60), "full-bp": (94.82, 93.85)},
    "fashion-mnist": {"w/o-ft": (39.65, 23.34), "full-zo": (61.33, 59.08), "zo-feat-cls2": (77.25, 74.51),
                      "zo-feat-cls1": (75.98, 76.86), "full-bp": (80.37, 79.49)},
}

PRETRAIN_LR = 1e-3  # Adam's customary rate; the paper gives none

# Choice: the paper's angles were lost. These put the accuracy of our pretrained model (seed 0) on the first 1024
# rotated test images near the paper's "w/o FT" row (measured: MNIST 30° 73.24%, 43° 47.07%; Fashion-MNIST 27°
# 38.57%, 47° 23.05%). One pair for both datasets cannot: at 30° Fashion-MNIST gives 31.54% against 39.65%.
ANGLES = {"mnist": (30.0, 43.0), "fashion-mnist": (27.0, 47.0)}

# Choice: fine-tuning rates (vanilla SGD; the paper's were lost), from 5- and 50-epoch trials on MNIST at 45°
# with 2048 images. Full BP's training-from-scratch rate 0.2 wrecks the pretrained model (13% after one epoch);
# 0.05 fine-tunes it. ZO's 5e-4 moves Full ZO 3 points in 5 epochs; 2e-3 moves it 10.
FINETUNE_FLAGS = {"full-zo": ["--lr", "2e-3"], "zo-feat-cls2": ["--lr", "2e-3"], "zo-feat-cls1": ["--lr", "2e-3"],
                  "full-bp": ["--lr", "0.05"]}


def _runtime(args):
    out = ["--threads", str(args.threads), "--no-progress"]
    return out + (["--data-dir", args.data_dir] if args.data_dir else [])


def _resume_if_started(run_dir: Path):
    return ["--resume"] if (run_dir / "checkpoint.safetensors").exists() else []


def pretrain(dataset, args) -> Path:
    run_dir = Path(args.out) / dataset / "pretrain"
    if len(read_jsonl(run_dir / "metrics.jsonl")) < args.pretrain_epochs:
        run_elasticzo(["train", "--dataset", dataset, "--method", "full-bp", "--optimizer", "adam", "--lr",
                       str(PRETRAIN_LR), "--epochs", str(args.pretrain_epochs), "--seed", str(args.seed),
                       "--out", str(run_dir), *_resume_if_started(run_dir), *_runtime(args)],
                      f"{dataset} pretraining")
    return run_dir / "checkpoint.safetensors"


def without_finetuning(dataset, angle, weights, args) -> float:
    cache = Path(args.out) / dataset / f"angle{angle:g}" / "without-ft.json"
    if not cache.exists():
        out = run_elasticzo(["eval", "--checkpoint", str(weights), "--dataset", dataset, "--angle", f"{angle:g}",
                             "--test-samples", str(args.test_samples), "--json"]
                            + (["--data-dir", args.data_dir] if args.data_dir else []),
                            f"{dataset} {angle:g} deg w/o FT")
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(out.strip().splitlines()[-1] + "\n")
    return json.loads(cache.read_text())["accuracy"]


def finetune(dataset, angle, method, weights, args):
    """The run's per-epoch metrics once it has args.epochs of them (running or continuing it first)."""
    run_dir = Path(args.out) / dataset / f"angle{angle:g}" / method
    if len(read_jsonl(run_dir / "metrics.jsonl")) < args.epochs:
        run_elasticzo(["train", "--init-from", str(weights), "--dataset", dataset, "--angle", f"{angle:g}",
                       "--train-samples", str(args.train_samples), "--test-samples", str(args.test_samples),
                       "--method", method, *FINETUNE_FLAGS[method], "--epochs", str(args.epochs), "--seed", str(args.seed),
                       "--out", str(run_dir), *_resume_if_started(run_dir), *_runtime(args)],
                      f"{dataset} {angle:g} deg {method}")
    metrics = read_jsonl(run_dir / "metrics.jsonl")[:args.epochs]
    config = json.loads((run_dir / "config.json").read_text())["config"]
    return metrics, config


def table(results, args, datasets):
    head = "| method |" + "".join(f" {DATA_NAMES[d]} {a:g}° ours | paper | diff |" for d in datasets
                                  for a in args.angles[d])
    lines = [f"Test accuracy (%) of LeNet-5 (FP32) on {args.test_samples} rotated test images after fine-tuning "
             f"{args.epochs} epochs on {args.train_samples} rotated training images; pretrained {args.pretrain_epochs} "
             f"epoch(s) with Adam. The paper's two angles were lost: its columns are its smaller and larger angle.",
             "", head, "|---|" + "---|---|---|" * 2 * len(datasets)]
    for row in ROWS:
        text = f"| {NAMES[row]} |"
        for d in datasets:
            for i, a in enumerate(args.angles[d]):
                paper = PAPER_TABLE2_FP32[d][row][i]
                ours = results.get((d, a, row))
                text += (f" {100 * ours:.2f} | {paper:.2f} | {100 * ours - paper:+.2f} |" if ours is not None
                         else f" – | {paper:.2f} | – |")
        lines.append(text)
    return "\n".join(lines) + "\n"


def details(runs, datasets, angles):
    """Per run: its rates, final train loss, best epoch and speed."""
    # The best epoch is shown, never reported as the result: picking it would select on the test set.
    lines = ["| dataset | angle | method | lr_zo | lr_bp | eps | clip | final train loss | best test % (epoch) | "
             "s/epoch |", "|---|---|---|---|---|---|---|---|---|---|"]
    for (d, a, m), (h, c) in sorted(runs.items(), key=lambda kv: (datasets.index(kv[0][0]),
                                                                   angles[kv[0][0]].index(kv[0][1]),
                                                                   METHODS.index(kv[0][2]))):
        best = max(range(len(h)), key=lambda i: h[i]["test_accuracy"])
        lines.append(f"| {d} | {a:g} | {NAMES[m]} | {c['lr_zo']:g} | {c['lr_bp']:g} | {c['eps']:g} | "
                     f"{c['grad_clip']:g} | {h[-1]['train_loss']:.4f} | {100 * h[best]['test_accuracy']:.2f} "
                     f"({best + 1}) | {sum(x['seconds'] for x in h) / len(h):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for d in DATASETS:
        p.add_argument(f"--angles-{d}", type=float, nargs=2, default=list(ANGLES[d]), metavar=("SMALL", "LARGE"),
                       help=f"the two rotation angles of {d} in degrees (default {ANGLES[d][0]:g} {ANGLES[d][1]:g}: "
                            "chosen so that the pretrained model's w/o FT accuracy lands near the paper's)")
    p.add_argument("--epochs", type=int, default=50, help="fine-tuning epochs (default 50, the paper's)")
    p.add_argument("--pretrain-epochs", type=int, default=1, help="Adam pretraining epochs (default 1, the paper's)")
    p.add_argument("--train-samples", type=int, default=4096, help="rotated training images (default 4096)")
    p.add_argument("--test-samples", type=int, default=1024,
                   help="rotated test images (default 1024: the paper's accuracies are multiples of 1/1024)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--seed", type=int, default=0, help="seed of the pretraining and every fine-tuning run")
    p.add_argument("--out", default="runs/paper_table2", help="run directories: OUT/<dataset>/...")
    p.add_argument("--table", default=str(RESULTS_DIR / "table2_fp32.md"))
    p.add_argument("--data-dir", default=None, help="folder with the dataset files (default: the package's search)")
    p.add_argument("--threads", type=int, default=1, help="threads of every run (default 1)")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.pretrain_epochs < 1:
        p.error("--epochs and --pretrain-epochs must be >= 1")
    args.angles = {d: getattr(args, f"angles_{d.replace('-', '_')}") for d in DATASETS}
    methods = [m for m in METHODS if m in args.methods]
    datasets = [d for d in DATASETS if d in args.datasets]

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C: the running trainer checkpoints
    load = os.getloadavg()
    results, runs = {}, {}
    try:
        for d in datasets:
            weights = pretrain(d, args)
            for a in args.angles[d]:
                results[(d, a, "w/o-ft")] = without_finetuning(d, a, weights, args)
            for a in args.angles[d]:
                for m in methods:
                    runs[(d, a, m)] = finetune(d, a, m, weights, args)
                    results[(d, a, m)] = runs[(d, a, m)][0][-1]["test_accuracy"]
    except KeyboardInterrupt:
        print(f"interrupted: run the same command again to continue from the checkpoints in {args.out}",
              file=sys.stderr)
        return 130
    text = table(results, args, datasets) + "\n" + details(runs, datasets, args.angles)
    command = " ".join(["python benchmarks/paper_table2.py"] + (sys.argv[1:] if argv is None else list(argv)))
    load_end = os.getloadavg()
    Path(args.table).parent.mkdir(parents=True, exist_ok=True)
    Path(args.table).write_text(
        "# Table 2 (FP32), reproduced\n\n" + text + f"\nProduced by `{command}`; load average "
        f"{load[0]:.1f} at the start of this invocation, {load_end[0]:.1f} at its end (2-core machine).\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
