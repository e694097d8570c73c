"""Helpers shared by the benchmark scripts: data options, the paper's numbers, JSONL logs, step-capped training."""

import argparse
import json
import os
from pathlib import Path

import numpy as np

from elasticzo.data import load_dataset, training_batches_per_epoch
from elasticzo.data.dataset import check_subset_seed

METHODS = ("full-zo", "zo-feat-cls2", "zo-feat-cls1", "full-bp")
DATASETS = ("mnist", "fashion-mnist")
MODEL_OF = {"mnist": "lenet5", "fashion-mnist": "lenet5", "modelnet40": "pointnet"}

# SPEC §10, Table 1: the paper's FP32 test accuracy (%): LeNet-5 after 100 epochs, PointNet after an epoch count
# the paper does not state.
PAPER_FP32 = {
    "mnist": {"full-zo": 89.80, "zo-feat-cls2": 94.85, "zo-feat-cls1": 97.53, "full-bp": 99.10},
    "fashion-mnist": {"full-zo": 77.09, "zo-feat-cls2": 82.28, "zo-feat-cls1": 86.60, "full-bp": 91.37},
    "modelnet40": {"full-zo": 32.05, "zo-feat-cls2": 70.38, "zo-feat-cls1": 73.50, "full-bp": 71.60},
}
# The paper's INT8 column (ElasticZO-INT8 with the FP32 loss; Full BP is NITI's integer backprop).
PAPER_INT8 = {
    "mnist": {"full-zo": 89.78, "zo-feat-cls2": 94.34, "zo-feat-cls1": 97.34, "full-bp": 98.77},
    "fashion-mnist": {"full-zo": 73.98, "zo-feat-cls2": 80.33, "zo-feat-cls1": 84.66, "full-bp": 90.40},
}
# INT8*: the ternary ZO gradient from integer arithmetic only (no Full BP row: it has no ZO gradient).
PAPER_INT8_INTONLY = {
    "mnist": {"full-zo": 88.92, "zo-feat-cls2": 93.92, "zo-feat-cls1": 95.83},
    "fashion-mnist": {"full-zo": 71.02, "zo-feat-cls2": 77.93, "zo-feat-cls1": 81.60},
}

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def add_runtime_args(parser):
    parser.add_argument("--data-dir", default=None,
                        help="folder holding the dataset files or <name>/ subfolders (default: the package's "
                             "search: $ELASTICZO_DATA, ./data/<name>, ~/.cache/elasticzo/<name>)")
    parser.add_argument("--threads", type=int, default=2, help="threads (default 2)")


def subset_seed(text):
    """argparse type of the scripts' --subset-seed: the library's rule, checked before any run starts."""
    try:
        seed = int(text)
        check_subset_seed(seed)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return seed


def load_split(parser, name, data_dir, split):
    """A dataset split; when its files are missing, the script exits with the loader's list of places searched."""
    try:
        return load_dataset(name, data_dir, split)
    except FileNotFoundError as exc:
        parser.exit(2, f"{parser.prog}: {exc}\n")


def validation_split(train, n_val, seed=12345):
    """(train part, validation part): the last n_val samples of a fixed permutation are held out."""
    order = np.random.default_rng(seed).permutation(len(train))
    return (train.subset(order[:-n_val], name=train.name + "-train"),
            train.subset(order[-n_val:], name=train.name + "-val"))


def read_jsonl(path):
    """The records of a JSONL file; a torn last line (the run was killed while writing it) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def write_atomic(path, text):
    """Writes text to path through a temporary file and a rename, so a reader never sees half of it."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def append_jsonl(path, record):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def train_steps(trainer, train, batch_size, steps, *, on_checkpoint=None, checkpoints=()):
    """Runs `steps` ElasticZO steps from a fresh trainer, epoch after epoch, with the trainer's lr decay.

    After step k for every k in `checkpoints`, calls on_checkpoint(k, mean train loss since the previous one).
    Returns the stats (loss, projected_grad, ...) of every step. A diverged step raises RuntimeError, as in fit().
    """
    per_epoch = training_batches_per_epoch(len(train), batch_size)
    stats = []
    marks = sorted(set(checkpoints))
    since = 0
    while len(stats) < steps:
        epoch = len(stats) // per_epoch
        trainer.start_epoch(epoch)
        for x, y in trainer.training_batches(train, batch_size, epoch):
            stats.append(trainer.core.step(x, y))
            if marks and len(stats) == marks[0]:
                marks.pop(0)
                if on_checkpoint is not None:
                    on_checkpoint(len(stats), float(np.mean([s["loss"] for s in stats[since:]])))
                since = len(stats)
            if len(stats) == steps:
                break
    return stats


def run_elasticzo(args, what):
    """Runs `python -m elasticzo.cli ARGS` to its end; on Ctrl-C/SIGTERM of this script the run gets exactly one
    SIGINT, saves its checkpoint and exits, and KeyboardInterrupt goes on up. Returns its stdout."""
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "elasticzo.cli", *args]
    print(f"{what}: elasticzo {' '.join(args)}", file=sys.stderr, flush=True)
    # Own session: group signals reach only this script, which passes one SIGINT on (a second one would
    # interrupt the trainer while it writes its checkpoint).
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        proc.wait()
        raise
    if proc.returncode != 0:
        raise SystemExit(f"elasticzo failed (exit code {proc.returncode}) for {what}")
    return out
