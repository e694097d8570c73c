"""The `elasticzo` command: `info`, `train` and `eval`."""

import argparse
import json
import sys

from elasticzo.info import build_info
from elasticzo.methods import METHODS


def _add_train_args(p):
    p.add_argument("--model", default="lenet5", choices=["lenet5", "pointnet"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "modelnet40"])
    p.add_argument("--data-dir", default=None,
                   help="folder with the dataset files (default: $ELASTICZO_DATA, ./data/<name>, the clone's "
                        "data/<name>, ~/.cache/elasticzo/<name>)")
    p.add_argument("--method", default="zo-feat-cls1", choices=METHODS)
    p.add_argument("--zo-layers", type=int, default=None, help="partition point C (overrides --method)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-samples", type=int, default=None,
                   help="train on the first N training samples only (quick trials)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate of the ZO part; for Full BP, its only rate (tuned default)")
    p.add_argument("--lr-bp", type=float, default=None, help="learning rate of the backprop part (tuned default)")
    p.add_argument("--eps", type=float, default=None, help="perturbation scale epsilon (tuned default)")
    p.add_argument("--clip", type=float, default=None, help="clip of the projected gradient, 0 = none")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"], help="optimizer of the backprop part")
    p.add_argument("--clean-bp-pass", action="store_true",
                   help="backprop from a third clean forward pass instead of the mean of the +/- passes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    p.add_argument("--isa", default=None, help="force kernels: ref, avx2, avx512, neon, neon_dotprod")
    p.add_argument("--out", default=None, help="run directory: metrics.jsonl and checkpoint.safetensors")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--checkpoint-every", type=int, default=500, help="also checkpoint every N steps (0 = epochs only)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.add_argument("--no-progress", action="store_true")


def _parser():
    parser = argparse.ArgumentParser(prog="elasticzo", description="ElasticZO: on-device training with ZO + backprop")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, ISA, kernels and threads in use")
    _add_train_args(sub.add_parser("train", help="train a model (ElasticZO, Algorithm 1)"))
    ev = sub.add_parser("eval", help="evaluate a checkpoint on a test set")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--data-dir", default=None)
    ev.add_argument("--dataset", default=None, help="default: the checkpoint's dataset")
    ev.add_argument("--batch-size", type=int, default=256)
    ev.add_argument("--json", action="store_true")
    return parser


def _fail(message: str, code: int = 2):
    print(f"elasticzo: error: {message}", file=sys.stderr)
    return code


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "info":
            print(json.dumps(build_info(), indent=2))
            return 0
        if args.command == "train":
            from elasticzo.run import train_command

            return train_command(args)
        from elasticzo.run import eval_command

        return eval_command(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
