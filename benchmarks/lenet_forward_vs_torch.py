"""LeNet-5 forward: elasticzo vs torch.nn.Sequential with the same weights, same thread count, float32.

Each repetition times a loop of forwards (long enough to dwarf the timer) of both engines back to back, so load
from elsewhere hits both alike; the table shows per-forward medians and torch_time / elasticzo_time (the issue's
target is >= 1.5 at batch 64; this script reports, it does not judge).

    python benchmarks/lenet_forward_vs_torch.py [--batches 32 64 256] [--repeats 15] [--threads 2 [1 ...]] [--json]

On a machine that is busy elsewhere PyTorch's OpenMP team waits for its descheduled thread at every parallel region
(elasticzo's pool does not: benchmarks/busy_board.py), so compare with --threads 1 before trusting a 2-thread figure.
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np
import torch

from elasticzo import _core
from elasticzo.models import lenet5


def torch_lenet5(model):
    tn = torch.nn
    net = tn.Sequential()
    for name, module in [
            ("conv1", tn.Conv2d(1, 6, 5, padding=2)), ("relu1", tn.ReLU()), ("pool1", tn.MaxPool2d(2)),
            ("conv2", tn.Conv2d(6, 16, 5, padding=2)), ("relu2", tn.ReLU()), ("pool2", tn.MaxPool2d(2)),
            ("flatten", tn.Flatten()), ("fc1", tn.Linear(784, 120)), ("relu3", tn.ReLU()),
            ("fc2", tn.Linear(120, 84)), ("relu4", tn.ReLU()), ("fc3", tn.Linear(84, 10))]:
        net.add_module(name, module)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()}, strict=True)
    return net.eval()


def loop_time(fn, count):
    start = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - start) / count


def measure(batch, threads, repeats, warmup, min_loop_s):
    torch.set_num_threads(threads)
    _core.set_num_threads(threads)
    model = lenet5(seed=0)
    net = torch_lenet5(model)
    x = np.random.default_rng(batch).random((batch, 1, 28, 28), dtype=np.float32)
    xt = torch.from_numpy(x)

    def ours():
        return model.forward(x)

    def theirs():
        with torch.no_grad():
            return net(xt)

    gap = np.max(np.abs(ours() - theirs().numpy()))
    if not gap <= 1e-4:
        raise SystemExit(f"outputs differ by {gap} at batch {batch}: not the same network")
    for _ in range(warmup):
        ours(), theirs()
    # Enough forwards per repetition that each loop lasts min_loop_s for the slower engine.
    count = max(1, int(np.ceil(min_loop_s / max(loop_time(ours, 3), loop_time(theirs, 3)))))
    t_ours, t_torch = [], []
    for _ in range(repeats):
        t_ours.append(loop_time(ours, count))
        t_torch.append(loop_time(theirs, count))
    ez, tt = statistics.median(t_ours), statistics.median(t_torch)
    return {"batch": batch, "threads": threads, "elasticzo_ms": ez * 1e3, "torch_ms": tt * 1e3, "ratio": tt / ez,
            "forwards_per_repeat": count, "repeats": repeats}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 64, 256])
    ap.add_argument("--repeats", type=int, default=15, help="timed repetitions per batch (median is reported)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed forwards of each engine first")
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="threads for both engines (each count)")
    ap.add_argument("--min-loop", type=float, default=0.05, help="seconds per timed loop (sets forwards per repeat)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args(argv)

    rows = [measure(b, t, args.repeats, args.warmup, args.min_loop) for t in args.threads for b in args.batches]
    info = {"isa": _core.active_isa(), "torch": torch.__version__, "elasticzo": _core.__version__, "rows": rows}
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        print()
        return
    print(f"LeNet-5 forward, float32; elasticzo {info['elasticzo']} ({info['isa']}), torch {info['torch']}; "
          f"median of {args.repeats} repetitions")
    print(f"{'threads':>7} {'batch':>6} {'elasticzo ms':>13} {'torch ms':>10} {'torch/elasticzo':>16}")
    for r in rows:
        print(f"{r['threads']:>7} {r['batch']:>6} {r['elasticzo_ms']:>13.3f} {r['torch_ms']:>10.3f} "
              f"{r['ratio']:>16.2f}")
    print("target: torch/elasticzo >= 1.5 at batch 64")


if __name__ == "__main__":
    main()
