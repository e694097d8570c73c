"""ElasticZO-INT8 against FP32 (issue 12, item 7): LeNet-5 ZO-Feat-Cls1 for one MNIST epoch in FP32, INT8 and
INT8* in one run, at each batch size: seconds per epoch, the time per phase (the paper's Fig. 7 bars) and the
measured peak of the tracked training buffers (parameters, activations, accumulators, gradients, errors and kernel
scratch: the quantity of the paper's memory model, Eqs. 2-5 and 13-15). Ratios are FP32 / INT8, from the same run.
Every precision runs under the same --memory-plan: lifetime (default: buffers whose lifetimes do not overlap share
memory, and an INT8 layer keeps the int32 sums of a chunk of samples instead of the batch's) or static (the paper's
model: every buffer for the whole step); SPEC §4's model figures are printed beside the measured ones.

The three precisions run one after the other, --repeats times in turn (fp32, int8, int8*, fp32, ...), and each
figure is the best epoch of its repeats, so a burst of load elsewhere costs one repeat, not the comparison; the
load average before and after is printed. Sets no environment variable.
"""

import argparse
import json
import os
import sys

from _common import add_runtime_args, load_split

import elasticzo
from elasticzo import _core, memory
from elasticzo.memory import DEFAULT_MEMORY_PLAN, MEMORY_PLANS
from elasticzo.models import arithmetic, lenet5

PRECISIONS = ("fp32", "int8", "int8-intonly")
PHASES = ("forward", "backward", "zo_perturb", "zo_update", "loss", "data", "other")


def one_epoch(train, precision, batch_size, seed, memory_plan):
    trainer = elasticzo.ElasticZO(lenet5(seed=seed, precision=arithmetic(precision)), method="zo-feat-cls1",
                                  seed=seed, precision=precision, memory_plan=memory_plan)
    m = trainer.train_epoch(train, batch_size)
    return {"seconds": m["seconds"], "peak_memory_bytes": m["peak_memory_bytes"],
            "breakdown": m["time_breakdown"], "sign_agreement": m.get("sign_agreement")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-sizes", default="32,256", help="comma-separated (default 32,256)")
    p.add_argument("--train-samples", type=int, default=None, help="first N training samples (default: all)")
    p.add_argument("--repeats", type=int, default=1, help="epochs per precision and batch size (default 1)")
    p.add_argument("--memory-plan", choices=MEMORY_PLANS, default=DEFAULT_MEMORY_PLAN,
                   help=f"buffer layout: static (the paper's model: every buffer lives for the whole step) or "
                        f"lifetime (default: {DEFAULT_MEMORY_PLAN})")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    add_runtime_args(p)
    args = p.parse_args(argv)
    _core.set_num_threads(args.threads)
    train = load_split(p, "mnist", args.data_dir, "train")
    if args.train_samples is not None:
        train = train.subset(range(args.train_samples))
    load_before = os.getloadavg()
    print(f"LeNet-5 ZO-Feat-Cls1, {len(train)} MNIST samples, {args.threads} thread(s), ISA {_core.active_isa()}, "
          f"{args.memory_plan} memory plan, load average before {load_before[0]:.1f}", file=sys.stderr)
    results = {}
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        runs = {q: [] for q in PRECISIONS}
        for _ in range(args.repeats):
            for q in PRECISIONS:
                runs[q].append(one_epoch(train, q, batch, 0, args.memory_plan))
                print(f"  batch {batch} {q}: {runs[q][-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
        best = {q: min(r, key=lambda x: x["seconds"]) for q, r in runs.items()}
        fp = best["fp32"]
        print(f"\nbatch {batch}: | precision | s/epoch | speed-up | peak buffers (KiB) | FP32 / this | "
              + " | ".join(f"{ph} %" for ph in PHASES) + " |")
        for q, r in best.items():
            total = sum(r["breakdown"].values()) or 1.0
            print(f"| {q} | {r['seconds']:.2f} | {fp['seconds'] / r['seconds']:.2f}x | "
                  f"{r['peak_memory_bytes'] / 1024:.1f} | {fp['peak_memory_bytes'] / r['peak_memory_bytes']:.2f}x | "
                  + " | ".join(f"{100 * r['breakdown'][ph] / total:.1f}" for ph in PHASES) + " |")
        # Same plan for every precision (measured above); beside it, SPEC §4's model (every buffer for the whole step).
        shape = (batch, 1, 28, 28)
        model = {q: memory.analytic_model(lenet5(seed=0, precision=arithmetic(q)), shape, 3, arithmetic(q))["total"]
                 for q in ("fp32", "int8")}
        print(f"measured under the {args.memory_plan} plan for every precision; SPEC §4's model (the static plan): "
              f"FP32 {model['fp32'] / 1024:.1f} KiB, INT8 {model['int8'] / 1024:.1f} KiB, "
              f"FP32 / INT8 {model['fp32'] / model['int8']:.2f}x")
        results[batch] = {**best, "spec_model_bytes": model}
        if best["int8-intonly"]["sign_agreement"] is not None:
            print(f"INT8* integer sign agreed with the floating-point sign on "
                  f"{100 * best['int8-intonly']['sign_agreement']:.1f}% of steps")
    load_after = os.getloadavg()
    print(f"load average after {load_after[0]:.1f}", file=sys.stderr)
    if args.json:
        print(json.dumps({"threads": args.threads, "isa": _core.active_isa(), "samples": len(train),
                          "memory_plan": args.memory_plan,
                          "load_before": load_before, "load_after": load_after, "results": results}))


if __name__ == "__main__":
    main()
