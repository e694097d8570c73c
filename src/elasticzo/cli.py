"""The `elasticzo` command: `info`, `train`, `eval`, `plot`, `memory` and `federated`."""

import argparse
import json
import os
import sys

from elasticzo import _core, rounding
from elasticzo.data.augment import AUGMENTATIONS
from elasticzo.federated_cli import add_federated_args
from elasticzo.info import build_info
from elasticzo.memory_cli import add_memory_args
from elasticzo.methods import METHODS
from elasticzo.models import INT8_INITS, MODELS

# Defaults of the train options that define a run. They are filled in after parsing (see run.py), so that with
# --resume a flag the user typed can be told apart from one left at its default.
# `train` picks the model that reads the data (models.model_for) before these fill in the rest.
RUN_DEFAULTS = {"model": "lenet5", "dataset": "mnist", "method": "zo-feat-cls1", "optimizer": "sgd", "seed": 0,
                "precision": "fp32"}

# --subset-seed's default. Not among RUN_DEFAULTS: a run saved before subsets were drawn at random has no subset seed
# (it took the first N samples) and resumes so.
SUBSET_SEED = 0

RESUME_POLICY = """\
--resume continues the run in --out with its own settings. These flags may be given again only with the run's
values (a different value is refused, since it would make the run neither the old one nor a new one): --model,
--dataset, --data, --precision, --method, --zo-layers, --seed, --optimizer, --clean-bp-pass, --batch-size,
--train-samples, --test-samples, --subset-seed, --angle, --init-from, --augment, --zo-range, --zo-p-zero,
--zo-update-bits, --log2-frac-bits, --gradient-bits, --rounding, --int8-init (int8).
These are applied from the resumed step on and recorded in config.json ("resumes") and in the checkpoint: --lr,
--lr-bp, --eps, --clip. --epochs is the new target; --threads, --isa, --memory-plan, --data-dir, --checkpoint-every and the output
flags apply as usual (results do not depend on them)."""


def _rounding_spec(text):
    try:
        return rounding.parse_spec(text)
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _p_zero_spec(text):
    try:
        return [float(v) for v in text.split("/")] if "/" in text else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction or A/B/C") from None


def _add_train_args(p):
    d = RUN_DEFAULTS
    int8 = _core.default_config()  # ElasticZO-INT8's defaults live in the C++ config
    p.add_argument("--model", choices=MODELS,
                   help="network (default: the one that reads the data: lenet5 for 28x28 images, pointnet for "
                        "point clouds (points, 3), mlp for flat features)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist", "modelnet40"],
                   help=f"a bundled dataset (default: {d['dataset']})")
    p.add_argument("--data", metavar="FILE.npz",
                   help="your own arrays instead of --dataset: x_train, y_train and optionally x_test, y_test "
                        "(np.savez; uint8 pixels or float features, integer labels; default: none)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the dataset files (default: $ELASTICZO_DATA, ./data/<name>, the clone's "
                        "data/<name>, the MNIST copy installed with the package, ~/.cache/elasticzo/<name>)")
    p.add_argument("--precision", choices=["fp32", "int8", "int8-intonly"],
                   help="arithmetic: fp32; int8 (ElasticZO-INT8: int8 weights, activations and errors with "
                        "power-of-two exponents, NITI backprop with the mu schedule 5/4/3 as its learning rate, "
                        "sparse int8 ZO perturbations and a ternary ZO gradient from the floating-point loss of the "
                        "dequantized logits: the paper's INT8); int8-intonly (the same with the ternary gradient "
                        f"from integer arithmetic only: the paper's INT8*) (default: {d['precision']})")
    p.add_argument("--zo-range", type=int, default=None,
                   help=f"int8: the ZO perturbation's range r, |zeta| <= r (default: {int8['zo_range']}; LeNet-5's "
                        "MNIST Full ZO and ZO-Feat-Cls2 trained from scratch: 64, PointNet: 3, see elasticzo.hparams)")
    p.add_argument("--zo-p-zero", type=_p_zero_spec, default=None, metavar="P or A/B/C",
                   help="int8: fraction of the ZO perturbation zeroed, fixed, or A/B/C for the schedule's three "
                        "phases (epochs 0-19, 20-49, 50 on) (default: the paper's schedule 0.33/0.5/0.9; LeNet-5's "
                        "Full ZO: see elasticzo.hparams)"),
    p.add_argument("--zo-update-bits", type=int, default=None,
                   help=f"int8: bit-width b_zo of the ZO update g * zeta (the paper: 1; default: "
                        f"{int8['zo_update_bits']}; LeNet-5's MNIST Full ZO and ZO-Feat-Cls2 trained from scratch: "
                        "2, with r 64, see elasticzo.hparams)")
    p.add_argument("--gradient-bits", type=int, default=None, metavar="MU",
                   help="int8: the first gradient bit-width mu of NITI's backprop update, its learning rate; the "
                        "schedule steps it down by 1 at epochs 20 and 50 (default: the paper's 5 for LeNet-5, 3 for "
                        "PointNet)")
    p.add_argument("--rounding", type=_rounding_spec, default=None, metavar="SPEC",
                   help="int8: NITI's rounding per tensor class: first-commit, final-version (activations and errors "
                        "to nearest), or class=scheme pairs, e.g. activations=nearest,errors=stochastic (classes: "
                        f"{', '.join(rounding.CLASSES)}; schemes: {', '.join(rounding.SCHEMES)}; classes not named "
                        "keep the first commit's) (default: first-commit: "
                        f"{', '.join(f'{k}={v}' for k, v in rounding.DEFAULT.items())})")
    p.add_argument("--int8-init", choices=INT8_INITS, default=None,
                   help="int8: NITI's weight initialization of a new run: xavier_normal (its first commit) or "
                        "xavier_uniform (its final version, mantissas spread evenly over +-127) (default: the tuned "
                        "one for the model, dataset and method, else xavier_normal)")
    p.add_argument("--log2-frac-bits", type=int, default=None,
                   help="int8-intonly: fractional bits of the integer loss comparison, up to 8; 0 is the paper's "
                        f"floor(log2) on integer exponents (default: {int8['log2_frac_bits']})")
    p.add_argument("--method", choices=METHODS,
                   help=f"which layers ZO trains, the paper's names (default: {d['method']})")
    p.add_argument("--zo-layers", type=int, default=None,
                   help="partition point C: ZO trains the first C parameter layers (overrides --method; "
                        "default: given by --method)")
    p.add_argument("--epochs", type=int, default=1,
                   help="train until this many epochs are done; 0 only evaluates the starting weights (default: 1)")
    p.add_argument("--train-samples", type=int, default=None,
                   help="train on N training samples drawn at random by --subset-seed, e.g. for quick trials or "
                        "the paper's fine-tuning subsets (default: all)")
    p.add_argument("--test-samples", type=int, default=None,
                   help="evaluate on N test samples drawn at random by --subset-seed (default: all)")
    p.add_argument("--subset-seed", type=int, default=None, metavar="S",
                   help="seed of the draw (without replacement, kept in file order) of --train-samples and "
                        "--test-samples, rotated or not: random, not the first N, since a dataset's file order is "
                        "not random (MNIST's first test images are other writers than its last); separate from "
                        f"--seed, so --seed varies the training only; recorded in the run for --resume and eval "
                        f"(default: {SUBSET_SEED})")
    p.add_argument("--angle", type=float, default=None,
                   help="rotate the train and test images by this many degrees, counter-clockwise (bilinear; the "
                        "rotated MNIST / Fashion-MNIST of the paper's fine-tuning, Table 2) (default: none)")
    p.add_argument("--init-from", metavar="FILE",
                   help="start from these weights instead of a random initialization: a .safetensors file, an "
                        "elasticzo checkpoint, or a PyTorch .pt state dict (needs torch); names and shapes as in "
                        "PyTorch (conv1.weight, ...); float weights for an int8 model are quantized (NITI) "
                        "(default: none)")
    p.add_argument("--init-drop-biases", action="store_true",
                   help="with --init-from: drop the file's biases for layers that have none (every INT8 layer) "
                        "instead of refusing the file; the model then computes something else than the source (default: off)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="minibatch size (default: the tuned one, 64 for LeNet-5, 32 for PointNet)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of the ZO part; for Full BP, its only rate (default: tuned per model, "
                        "dataset and method, see elasticzo.hparams)")
    p.add_argument("--lr-bp", type=float, default=None,
                   help="learning rate of the backprop part (default: tuned)")
    p.add_argument("--eps", type=float, default=None, help="perturbation scale epsilon (default: tuned)")
    p.add_argument("--clip", type=float, default=None,
                   help="clip of the projected gradient, 0 = none (default: tuned)")
    p.add_argument("--optimizer", choices=["sgd", "adam"],
                   help=f"optimizer of the backprop part (default: {d['optimizer']})")
    p.add_argument("--clean-bp-pass", action="store_true", default=None,
                   help="backprop from a third clean forward pass instead of the mean of the +/- passes "
                        "(default: off)")
    p.add_argument("--augment", choices=AUGMENTATIONS,
                   help="training augmentation: pointcloud = a random rotation about the up axis z and a small "
                        "jitter per point, drawn from (seed, epoch, batch) (default: none)")
    p.add_argument("--seed", type=int, help=f"seed of the initial weights, z and batch order (default: {d['seed']})")
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    p.add_argument("--isa", default=None,
                   help="force kernels: ref, avx2, avx512, neon, neon_dotprod (default: the best this CPU runs)")
    p.add_argument("--out", default=None,
                   help="run directory: metrics.jsonl, config.json and checkpoint.safetensors; locked while the "
                        "run uses it (default: none, nothing is saved)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint (default: off; see below for flags)")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="also checkpoint every N steps, 0 = at epoch ends only (default: 500)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line (default: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: show it)")
    p.add_argument("--memory-plan", default=None, choices=["static", "lifetime"],
                   help="static: every buffer for the whole step (the paper's model); lifetime: buffers whose "
                        "lifetimes do not overlap share memory (default: lifetime; same results bit for bit)")
    p.add_argument("--memory-budget", default=None, metavar="SIZE",
                   help="e.g. 3MiB: train the partition with the most backprop layers whose step fits, instead "
                        "of --method / --zo-layers (default: none)")


def _parser():
    parser = argparse.ArgumentParser(prog="elasticzo", description="ElasticZO: on-device training with ZO + backprop")
    parser.add_argument("--version", action="version", version=f"elasticzo {_core.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, ISA, kernels and threads in use")
    _add_train_args(sub.add_parser("train", help="train a model (ElasticZO, Algorithm 1)", epilog=RESUME_POLICY,
                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    add_memory_args(sub.add_parser("memory", help="memory of one training step: the paper's model, the plan, "
                                                  "and what a real step measures"))
    ev = sub.add_parser("eval", help="evaluate a checkpoint on a test set")
    ev.add_argument("--checkpoint", required=True, help="a checkpoint.safetensors (from train or ElasticZO.save)")
    ev.add_argument("--data-dir", default=None, help="folder with the dataset files (default: searched as in train)")
    ev.add_argument("--dataset", default=None,
                    help="test set (default: the checkpoint's dataset; needed when it names none)")
    ev.add_argument("--data", default=None, metavar="FILE.npz",
                    help="evaluate on this file's x_test, y_test (default: the run's own --data file, if any)")
    ev.add_argument("--angle", type=float, default=None,
                    help="rotate the test images by this many degrees (default: the run's --angle, if any)")
    ev.add_argument("--test-samples", type=int, default=None,
                    help="evaluate on N test samples drawn at random by --subset-seed (default: the run's "
                         "--test-samples, if any)")
    ev.add_argument("--subset-seed", type=int, default=None, metavar="S",
                    help="seed of the --test-samples draw (default: the run's; runs saved before subsets were "
                         f"drawn at random keep their first N; {SUBSET_SEED} for other checkpoints)")
    ev.add_argument("--batch-size", type=int, default=256, help="evaluation batch size (default: 256)")
    ev.add_argument("--json", action="store_true", help="print the result as JSON (default: off)")
    pl = sub.add_parser("plot", help="loss and accuracy curves and the time breakdown of a run (needs matplotlib)")
    pl.add_argument("run_dir", help="a run directory written by train --out")
    pl.add_argument("--output", default=None, help="image file to write (default: RUN_DIR/plot.png)")
    add_federated_args(sub.add_parser("federated", help="federated ElasticZO over Flower: seeds and scalars for the "
                                                        "ZO layers, FedAvg for the head (needs elasticzo[federated])"))
    return parser


def _fail(message: str, code: int = 2):
    print(f"elasticzo: error: {message}", file=sys.stderr)
    return code


def _run(args) -> int:
    if args.command == "info":
        print(json.dumps(build_info(), indent=2))
        return 0
    if args.command == "plot":
        from elasticzo.plot import plot_command

        return plot_command(args)
    if args.command == "federated":
        from elasticzo.federated_cli import federated_command

        return federated_command(args)
    if args.command == "memory":
        from elasticzo.memory_cli import memory_command

        return memory_command(args)
    from elasticzo.run import eval_command, train_command

    return train_command(args) if args.command == "train" else eval_command(args)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = _run(args)
        sys.stdout.flush()  # a closed pipe (`elasticzo info | head`) shows here, inside the handler below
        return code
    except BrokenPipeError:
        # The reader went away: stop quietly as other Unix tools do. Point stdout at /dev/null so the interpreter's
        # final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by SIGPIPE
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except (ValueError, OverflowError, RuntimeError) as exc:  # OverflowError: a size beyond what the core indexes
        return _fail(str(exc))
    except MemoryError as exc:  # the core's std::bad_alloc: a batch larger than the board's memory
        return _fail(f"out of memory ({exc or 'MemoryError'}); `elasticzo memory --batch-size N` tells what a step "
                     f"needs, and a smaller --batch-size needs less")
    except OSError as exc:  # --out unwritable, disk full, missing files: the file and the reason, no traceback
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")


if __name__ == "__main__":
    sys.exit(main())
