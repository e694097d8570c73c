"""The paper's Table 2: fine-tuning LeNet-5 on rotated MNIST and Fashion-MNIST with each method, FP32 or INT8.

Per dataset: pretrain on the original training set for --pretrain-epochs, FP32 with Full BP and Adam (the paper:
1 epoch), INT8 (`--precision int8`) with NITI's Full BP and its mu schedule (the paper: 100 epochs, which is Table 1's
INT8 Full BP run: `--pretrained-mnist RUN_DIR` / `--pretrained-fashion-mnist RUN_DIR` take a finished run of
`elasticzo train` (e.g. paper_table1.py's) instead of training it again; its checkpoint is copied, and the table
names it). "w/o FT" is the pretrained model's accuracy on the rotated test subset. Then, per angle and method,
fine-tune for --epochs (the paper: 50) on --train-samples training images rotated by the angle, starting from the
pretrained weights (`elasticzo train --init-from`), and test on --test-samples test images rotated likewise; both
subsets are drawn at random by --subset-seed (SPEC §7: "a random subset"), the same for every angle, method and the
w/o FT row. INT8 fine-tuning is ElasticZO-INT8 (`elasticzo train --precision int8`: NITI backprop for the BP
part, the sparse integer perturbation for the ZO part with the range r and update bit-width b_zo of
INT8_FINETUNE_FLAGS, each with its schedule counted from the first fine-tuning epoch). INT8's angles differ from
FP32's (see ANGLES).
Every run lives in its own directory under --out and goes through `elasticzo train`, so an interrupted script
continues from the checkpoints when run again with the same command. Writes a Markdown table of our accuracy
beside the paper's 20 figures of that precision. INT8 runs live under OUT/int8/.
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from elasticzo.checkpoint import CheckpointError, atomic_write, read_checkpoint
from elasticzo.hparams import defaults

from _common import DATASETS, METHODS, RESULTS_DIR, read_jsonl, run_elasticzo, subset_seed

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
# SPEC §10, Table 2 (INT8), same layout.
PAPER_TABLE2_INT8 = {
    "mnist": {"w/o-ft": (84.08, 60.25), "full-zo": (85.94, 64.36), "zo-feat-cls2": (93.07, 87.99),
              "zo-feat-cls1": (93.46, 91.80), "full-bp": (96.68, 95.21)},
    "fashion-mnist": {"w/o-ft": (28.13, 13.77), "full-zo": (37.21, 22.95), "zo-feat-cls2": (69.43, 68.95),
                      "zo-feat-cls1": (76.07, 75.68), "full-bp": (80.08, 80.86)},
}
PAPER_TABLE2 = {"fp32": PAPER_TABLE2_FP32, "int8": PAPER_TABLE2_INT8}
PAPER_PRETRAIN_EPOCHS = {"fp32": 1, "int8": 100}

PRETRAIN_LR = 1e-3  # Adam's customary rate; the paper gives none

# Choice: the paper's angles were lost. Per precision, the angles put the accuracy of that precision's pretrained model
# on the rotated test subset (1024 images drawn at random, subset seed 0) nearest the paper's "w/o FT" row of that
# precision, judged on w/o FT alone (never on a fine-tuned figure), among the integer angles 20°-55°
# (benchmarks/table2_angles.py; results/table2_angles_{fp32,int8}.md hold every candidate). Measured w/o FT:
# FP32 (this script's 1-epoch Adam pretraining, seed 0): MNIST 33° 73.73% against the paper's 74.41 (32° 75.20,
# 34° 71.97), 47° 46.68% against 46.58 (46° 47.95, 48° 44.73); Fashion-MNIST 27° 40.43% against 39.65 (26° 42.58,
# 28° 37.89), 48° 22.85% against 23.34 (47° 24.32, 49° 22.07). One pair for both datasets cannot: at MNIST's 33°
# Fashion-MNIST gives 33.30%. INT8 (Table 1's NITI Full BP models, batch 64): MNIST 31° 83.79% against 84.08 (30°
# 84.67, 32° 82.23), 44° 60.35% against 60.25 (43° 63.18, 45° 58.79); Fashion-MNIST 24° 27.83% against 28.13 (23°
# 29.69, 25° 24.80), 51° 13.38% against 13.77 (42° 14.55; 35°-50° all give 14.6-16.9, 52° 12.70). Our INT8 models
# are less robust to rotation than the paper's (at FP32's angles the MNIST one gives 80.66% / 55.08% against the
# paper's INT8 84.08 / 60.25, the Fashion-MNIST one 22.07% / 15.33% against 28.13 / 13.77), so FP32's angles would
# start INT8 fine-tuning further from the target than the paper's INT8 rows did. Until session 8 the subsets were
# the first 4096 / 1024 images, which are harder under rotation than a random draw (FP32 MNIST at 30°: 73.24% there,
# 78.42% here), and the angles were 30/43, 27/47 (FP32) and 30/41, 23/47 (INT8).
ANGLES = {"fp32": {"mnist": (33.0, 47.0), "fashion-mnist": (27.0, 48.0)},
          "int8": {"mnist": (31.0, 44.0), "fashion-mnist": (24.0, 51.0)}}

# Choice: fine-tuning rates (vanilla SGD; the paper's were lost), from 5- and 50-epoch trials on MNIST at 45°
# with 2048 images. Full BP's training-from-scratch rate 0.2 wrecks the pretrained model (13% after one epoch);
# 0.05 fine-tunes it. ZO's 5e-4 moves Full ZO 3 points in 5 epochs; 2e-3 moves it 10.
FINETUNE_FLAGS = {"full-zo": ["--lr", "2e-3"], "zo-feat-cls2": ["--lr", "2e-3"], "zo-feat-cls1": ["--lr", "2e-3"],
                  "full-bp": ["--lr", "0.05"]}
# INT8 has no learning rate: NITI's gradient bit-width mu (5/4/3) is the BP part's step, ElasticZO-INT8's range r,
# update bit-width b_zo and p_zero schedule the ZO part's (the update is g * zeta rounded to b_zo bits: about
# zeta / 2^(bits(r) - b_zo), so r = 64 with b_zo = 2 steps as far as r = 32 with b_zo = 1 from a probe twice as wide).
# Choices, from validation sweeps on held-out rotated training images, never the test images
# (results/sweep_table2_int8.md; mean of the last 5 epochs' validation accuracy, averaged over seeds):
# Full ZO r = 32 (the library's default, tuned on Table 1's training from scratch, is 16): +4.0 points over r = 16 on
# the mean of the four cells. ZO-Feat-Cls2 and Cls1 r = 64 with b_zo = 2: against r = 32, b_zo = 1, Cls2 +0.7 / +1.1
# / +2.6 / +3.1 (MNIST 30°, 43°, F-MNIST 27°, 47°; 2-3 seeds each) and Cls1 +0.9 / +1.5 / +2.8 / +0.8 (2 seeds);
# b_zo = 2 at r = 32 and r = 64 at b_zo = 1 each gained less; r = 64 with b_zo = 3 lost 3.8 / 2.0 (Cls2, MNIST).
# No better than the defaults: a fixed p_zero (0.5 to 0.9), mu 4 or 6, batch 32 or 128, and the schedules stepping
# earlier for a 50-epoch fine-tune (mu 5/4/3 and p_zero 0.33/0.5/0.9 from epochs 10/25 or 20/35 instead of 20/50:
# -1.0 to +0.8, no consistent sign).
# Full BP keeps the paper's mu 5/4/3 for fine-tuning: the library's Fashion-MNIST INT8 Full BP default, mu from 4, was
# validated for training from scratch (elasticzo.hparams), not for fine-tuning a pretrained model.
PRECISION_FLAGS = {"fp32": [], "int8": ["--precision", "int8"]}
_ZO_FEAT_INT8 = ["--zo-range", "64", "--zo-update-bits", "2"]
INT8_FINETUNE_FLAGS = {"full-zo": ["--zo-range", "32"], "zo-feat-cls2": _ZO_FEAT_INT8, "zo-feat-cls1": _ZO_FEAT_INT8,
                       "full-bp": ["--gradient-bits", "5"]}


def _runtime(args):
    out = ["--threads", str(args.threads), "--no-progress"]
    return out + (["--data-dir", args.data_dir] if args.data_dir else [])


def _resume_if_started(run_dir: Path):
    return ["--resume"] if (run_dir / "checkpoint.safetensors").exists() else []


def _commit():
    """The source tree's git commit (None outside a git checkout): the runs' provenance."""
    try:
        return subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).resolve().parent,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _record_start(run_dir: Path, what: str, args):
    """Notes which commit started a run (a resumed run keeps its first note)."""
    note = run_dir / "provenance.json"
    if not note.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"commit": args.commit, "what": what}) + "\n"
        atomic_write(note, lambda tmp: tmp.write_text(text))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def adopt_pretrained(dataset, source: Path, run_dir: Path, args):
    """Copies the checkpoint of a finished pretraining run of `elasticzo train` into run_dir (once) after checking
    that it is the run the table needs: same dataset, Full BP, the precision, and exactly --pretrain-epochs done."""
    if (run_dir / "source.json").exists():
        return
    source = Path(source)
    try:
        _, state = read_checkpoint(source / "checkpoint.safetensors")
    except CheckpointError as exc:
        raise SystemExit(f"--pretrained-{dataset}: {exc}") from None
    config = json.loads((source / "config.json").read_text())
    info, cfg = config["info"], config["config"]
    wanted = {"dataset": (info.get("dataset"), dataset), "method": (cfg.get("method"), "full-bp"),
              "precision": (cfg.get("precision", "fp32"), args.precision),
              "finished epochs": ((state["epoch"], state["batch_in_epoch"]), (args.pretrain_epochs, 0))}
    wrong = [f"{k} {got} (needed {want})" for k, (got, want) in wanted.items() if got != want]
    if wrong:
        raise SystemExit(f"--pretrained-{dataset} {source}: not the pretraining this table needs: {'; '.join(wrong)}")
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "metrics.jsonl"):
        shutil.copyfile(source / name, run_dir / name)
    # A copy, so later writes to the source (a resumed or restarted run) cannot change this table's starting point.
    atomic_write(run_dir / "checkpoint.safetensors",
                 lambda tmp: shutil.copyfile(source / "checkpoint.safetensors", tmp))
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    note = {"source": str(source.resolve()), "epochs": state["epoch"],
            "test_accuracy": metrics[args.pretrain_epochs - 1].get("test_accuracy") if metrics else None,
            "sha256": _sha256(run_dir / "checkpoint.safetensors")}
    atomic_write(run_dir / "source.json", lambda tmp: tmp.write_text(json.dumps(note) + "\n"))


def pretrain(dataset, args) -> Path:
    run_dir = Path(args.out) / dataset / "pretrain"
    source = args.pretrained[dataset]
    if source is not None:
        adopt_pretrained(dataset, source, run_dir, args)
    elif len(read_jsonl(run_dir / "metrics.jsonl")) < args.pretrain_epochs:
        # FP32: BP with Adam (the paper's); INT8: NITI's Full BP, as Table 1's INT8 Full BP run.
        optimizer = ["--optimizer", "adam", "--lr", str(PRETRAIN_LR)] if args.precision == "fp32" else []
        _record_start(run_dir, f"{dataset} pretraining", args)
        run_elasticzo(["train", "--dataset", dataset, "--method", "full-bp", *optimizer,
                       *PRECISION_FLAGS[args.precision], "--epochs", str(args.pretrain_epochs), "--seed",
                       str(args.seed), "--out", str(run_dir), *_resume_if_started(run_dir), *_runtime(args)],
                      f"{dataset} pretraining")
    return run_dir / "checkpoint.safetensors"


def pretraining_note(dataset, args) -> str:
    """Which pretraining run the table used."""
    run_dir = Path(args.out) / dataset / "pretrain"
    metrics = read_jsonl(run_dir / "metrics.jsonl")[:args.pretrain_epochs]
    upright = f"{100 * metrics[-1]['test_accuracy']:.2f}% upright" if metrics else "no metrics"
    if (run_dir / "source.json").exists():
        src = json.loads((run_dir / "source.json").read_text())
        return (f"{DATA_NAMES[dataset]}: the checkpoint of `{src['source']}` after {src['epochs']} epochs "
                f"({upright}; SHA-256 {src['sha256'][:16]}…)")
    return f"{DATA_NAMES[dataset]}: pretrained by this script in `{run_dir}` ({upright})"


def eval_rotated(weights, dataset, angle, args) -> dict:
    """`elasticzo eval --json` of `weights` on the rotated test subset the table uses (--test-samples drawn by
    --subset-seed): the "w/o FT" figure. An INT8 model's outputs depend on the batch (NITI quantizes each batch with
    one exponent): it is evaluated at the batch size the fine-tuning runs test with, so that their epoch 0 would read
    the same."""
    batch = ["--batch-size", str(defaults("lenet5", dataset, "full-bp").batch_size)] \
        if args.precision == "int8" else []
    out = run_elasticzo(["eval", "--checkpoint", str(weights), "--dataset", dataset, "--angle", f"{angle:g}",
                         "--test-samples", str(args.test_samples), "--subset-seed", str(args.subset_seed),
                         "--json", *batch]
                        + (["--data-dir", args.data_dir] if args.data_dir else []),
                        f"{dataset} {angle:g} deg w/o FT")
    return json.loads(out.strip().splitlines()[-1])


def without_finetuning(dataset, angle, weights, args) -> float:
    cache = Path(args.out) / dataset / f"angle{angle:g}" / "without-ft.json"
    if not cache.exists():
        result = eval_rotated(weights, dataset, angle, args)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(result) + "\n")
    return json.loads(cache.read_text())["accuracy"]


def finetune(dataset, angle, method, weights, args):
    """The run's per-epoch metrics once it has args.epochs of them (running or continuing it first)."""
    run_dir = Path(args.out) / dataset / f"angle{angle:g}" / method
    if len(read_jsonl(run_dir / "metrics.jsonl")) < args.epochs:
        flags = FINETUNE_FLAGS[method] if args.precision == "fp32" else \
            PRECISION_FLAGS[args.precision] + INT8_FINETUNE_FLAGS[method]
        _record_start(run_dir, f"{dataset} {angle:g} deg {method}", args)
        run_elasticzo(["train", "--init-from", str(weights), "--dataset", dataset, "--angle", f"{angle:g}",
                       "--train-samples", str(args.train_samples), "--test-samples", str(args.test_samples),
                       "--subset-seed", str(args.subset_seed), "--method", method, *flags, "--epochs", str(args.epochs),
                       "--seed", str(args.seed),
                       "--out", str(run_dir), *_resume_if_started(run_dir), *_runtime(args)],
                      f"{dataset} {angle:g} deg {method}")
    metrics = read_jsonl(run_dir / "metrics.jsonl")[:args.epochs]
    config = json.loads((run_dir / "config.json").read_text())["config"]
    provenance = run_dir / "provenance.json"
    config["commit"] = json.loads(provenance.read_text())["commit"] if provenance.exists() else None
    return metrics, config


def table(results, args, datasets):
    head = "| method |" + "".join(f" {DATA_NAMES[d]} {a:g}° ours | paper | diff |" for d in datasets
                                  for a in args.angles[d])
    pretraining = ("Adam" if args.precision == "fp32" else "NITI's Full BP (mu schedule)")
    chosen = all(list(args.angles[d]) == list(ANGLES[args.precision][d]) for d in datasets)
    angles_note = ("ours put this precision's pretrained model's w/o FT nearest the paper's (chosen on w/o FT alone; "
                   "`ANGLES` in the script says why INT8's differ from FP32's)." if chosen else
                   "ours here are given on the command line, not the script's choice for this precision.")
    lines = [f"Test accuracy (%) of LeNet-5 ({args.precision.upper()}) on {args.test_samples} rotated test images "
             f"after fine-tuning {args.epochs} epochs on {args.train_samples} rotated training images (both drawn at "
             f"random, subset seed {args.subset_seed}); pretrained "
             f"{args.pretrain_epochs} epoch(s) with {pretraining}. The paper's two angles were lost: its columns are "
             "its smaller and larger angle; " + angles_note, "", head,
             "|---|" + "---|---|---|" * 2 * len(datasets)]
    for row in ROWS:
        text = f"| {NAMES[row]} |"
        for d in datasets:
            for i, a in enumerate(args.angles[d]):
                paper = PAPER_TABLE2[args.precision][d][row][i]
                ours = results.get((d, a, row))
                text += (f" {100 * ours:.2f} | {paper:.2f} | {100 * ours - paper:+.2f} |" if ours is not None
                         else f" – | {paper:.2f} | – |")
        lines.append(text)
    lines += ["", "Pretrained models: " + "; ".join(pretraining_note(d, args) for d in datasets) + "."]
    return "\n".join(lines) + "\n"


def _settings(config, history, precision):
    """A run's step sizes as the details table shows them (INT8: mu over the run and the ZO part's settings)."""
    if precision == "fp32":
        return [f"{config['lr_zo']:g}", f"{config['lr_bp']:g}", f"{config['eps']:g}", f"{config['grad_clip']:g}"]
    mus = [h["gradient_bits"] for h in history if "gradient_bits" in h]
    mu = "–" if config["method"] == "full-zo" or not mus else "→".join(
        str(m) for i, m in enumerate(mus) if i == 0 or m != mus[i - 1])
    if config["zo_layers"] == 0:
        return [mu, "–", "–", "–", "–"]
    p_zero = "schedule" if config.get("zo_p_zero") is None else f"{config['zo_p_zero']:g}"
    return [mu, f"{config['zo_range']}", p_zero, f"{config['zo_update_bits']}", f"{config['log2_frac_bits']}"]


SETTING_NAMES = {"fp32": "lr_zo | lr_bp | eps | clip",
                 "int8": "mu | zo_range | zo_p_zero | zo_update_bits | log2_frac_bits"}


def details(runs, datasets, angles, precision="fp32"):
    """Per run: its step sizes, final train loss, best epoch, speed and (for runs it started) the commit."""
    # The best epoch is shown, never reported as the result: picking it would select on the test set.
    lines = [f"| dataset | angle | method | {SETTING_NAMES[precision]} | final train loss | best test % (epoch) | "
             "s/epoch | commit |", "|" + "---|" * (8 + SETTING_NAMES[precision].count("|") + 1)]
    for (d, a, m), (h, c) in sorted(runs.items(), key=lambda kv: (datasets.index(kv[0][0]),
                                                                   angles[kv[0][0]].index(kv[0][1]),
                                                                   METHODS.index(kv[0][2]))):
        best = max(range(len(h)), key=lambda i: h[i]["test_accuracy"])
        lines.append(f"| {d} | {a:g} | {NAMES[m]} | {' | '.join(_settings(c, h, precision))} | "
                     f"{h[-1]['train_loss']:.4f} | {100 * h[best]['test_accuracy']:.2f} ({best + 1}) | "
                     f"{sum(x['seconds'] for x in h) / len(h):.2f} | {c.get('commit') or '–'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for d in DATASETS:
        fp32, int8 = (" ".join(f"{a:g}" for a in ANGLES[prec][d]) for prec in ("fp32", "int8"))
        p.add_argument(f"--angles-{d}", type=float, nargs=2, default=None, metavar=("SMALL", "LARGE"),
                       help=f"the two rotation angles of {d} in degrees (default FP32 {fp32}, INT8 {int8}: chosen so "
                            "that the pretrained model's w/o FT accuracy lands near the paper's of that precision)")
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32",
                   help="FP32 (Adam pretraining) or INT8 (NITI pretraining, ElasticZO-INT8 fine-tuning; runs under "
                        "OUT/int8/, table results/table2_int8.md)")
    for d in DATASETS:
        p.add_argument(f"--pretrained-{d}", metavar="RUN_DIR", default=None,
                       help=f"a finished Full BP run of `elasticzo train` on {d} (its --out) to start from instead "
                            "of pretraining here, e.g. paper_table1.py's OUT/int8/" + d + "/full-bp for INT8; "
                            "copied on first use")
    p.add_argument("--epochs", type=int, default=50, help="fine-tuning epochs (default 50, the paper's)")
    p.add_argument("--pretrain-epochs", type=int, default=None,
                   help="pretraining epochs (default: the paper's, 1 for FP32, 100 for INT8)")
    p.add_argument("--train-samples", type=int, default=4096, help="rotated training images (default 4096)")
    p.add_argument("--test-samples", type=int, default=1024,
                   help="rotated test images (default 1024: the paper's accuracies are multiples of 1/1024)")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--seed", type=int, default=0, help="seed of the pretraining and every fine-tuning run")
    p.add_argument("--subset-seed", type=subset_seed, default=0,
                   help="seed of the random train and test subsets (`elasticzo train --subset-seed`; default 0)")
    p.add_argument("--out", default="runs/paper_table2", help="run directories: OUT/<dataset>/...")
    p.add_argument("--table", default=None, help="default: results/table2_<precision>.md")
    p.add_argument("--data-dir", default=None, help="folder with the dataset files (default: the package's search)")
    p.add_argument("--threads", type=int, default=1, help="threads of every run (default 1)")
    args = p.parse_args(argv)
    if args.pretrain_epochs is None:
        args.pretrain_epochs = PAPER_PRETRAIN_EPOCHS[args.precision]
    if args.epochs < 1 or args.pretrain_epochs < 1:
        p.error("--epochs and --pretrain-epochs must be >= 1")
    args.angles = {d: getattr(args, f"angles_{d.replace('-', '_')}") or list(ANGLES[args.precision][d])
                   for d in DATASETS}
    args.pretrained = {d: getattr(args, f"pretrained_{d.replace('-', '_')}") for d in DATASETS}
    args.table = args.table or str(RESULTS_DIR / f"table2_{args.precision}.md")
    args.commit = _commit()  # once: the code this invocation runs, even if the tree moves meanwhile
    if args.precision != "fp32":
        args.out = str(Path(args.out) / args.precision)
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
    text = table(results, args, datasets) + "\n" + details(runs, datasets, args.angles, args.precision)
    command = " ".join(["python benchmarks/paper_table2.py"] + (sys.argv[1:] if argv is None else list(argv)))
    load_end = os.getloadavg()
    Path(args.table).parent.mkdir(parents=True, exist_ok=True)
    Path(args.table).write_text(
        f"# Table 2 ({args.precision.upper()}), reproduced\n\n" + text + f"\nProduced by `{command}`; load average "
        f"{load[0]:.1f} at the start of this invocation, {load_end[0]:.1f} at its end (2-core machine).\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
