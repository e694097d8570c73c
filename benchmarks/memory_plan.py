"""The two memory plans side by side: seconds per LeNet-5 step and the bytes one step holds, per method.

For each method, the same steps (same batches, same initial weights) run under `static` (every buffer for the
whole step, the paper's model) and `lifetime` (buffers whose lifetimes do not overlap share memory), in alternating
rounds; the time is the best round, the memory what the tracker measured while the step ran. The final weights of
the two plans are compared bit for bit. This is what chose `lifetime` as the default.
"""

import argparse
import json
import os
import time

import numpy as np

import elasticzo
from elasticzo import memory
from _common import METHODS, add_runtime_args, load_split


def run(method, plan, batches_, seed=0):
    model = elasticzo.models.lenet5(seed=seed)
    trainer = elasticzo.ElasticZO(model, method=method, memory_plan=plan)
    trainer.core.step(*batches_[0])  # plans and allocates; not timed
    start = time.perf_counter()
    for x, y in batches_[1:]:
        trainer.core.step(x, y)
    seconds = (time.perf_counter() - start) / (len(batches_) - 1)
    return seconds, model.state_dict()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    add_runtime_args(parser)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    elasticzo.set_num_threads(args.threads)
    train = load_split(parser, "mnist", args.data_dir, "train")
    data = [(train.x[i:i + args.batch_size], train.y[i:i + args.batch_size])
            for i in range(0, (args.steps + 1) * args.batch_size, args.batch_size)]
    load_before = os.getloadavg()
    rows = []
    for method in METHODS:
        best = {p: float("inf") for p in memory.MEMORY_PLANS}
        weights = {}
        for _ in range(args.rounds):
            for plan in memory.MEMORY_PLANS:
                seconds, weights[plan] = run(method, plan, data)
                best[plan] = min(best[plan], seconds)
        identical = all(np.array_equal(weights["static"][k], weights["lifetime"][k]) for k in weights["static"])
        mem = {p: memory.memory_report("lenet5", args.batch_size, method, memory_plan=p) for p in memory.MEMORY_PLANS}
        rows.append({
            "method": method, "ms_per_step": {p: 1e3 * best[p] for p in best},
            "lifetime_over_static_time": best["lifetime"] / best["static"],
            "model_bytes": mem["static"]["model"]["total"],
            "measured_bytes": {p: mem[p]["measured"]["total"] for p in mem},
            "static_model_over_lifetime": mem["static"]["model"]["total"] / mem["lifetime"]["measured"]["total"],
            "bit_identical": identical,
        })
    info = {"batch_size": args.batch_size, "threads": args.threads, "isa": elasticzo.active_isa(),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    if args.json:
        print(json.dumps({"info": info, "rows": rows}))
        return
    print(f"LeNet-5, batch {args.batch_size}, {args.threads} threads, {info['isa']}; load average "
          f"{load_before[0]:.1f} before, {info['loadavg_after'][0]:.1f} after")
    print("| method | ms/step static | ms/step lifetime | lifetime/static time | static model | measured static | "
          "measured lifetime | model/lifetime | bit-identical |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['ms_per_step']['static']:.2f} | {r['ms_per_step']['lifetime']:.2f} | "
              f"{r['lifetime_over_static_time']:.3f} | {r['model_bytes']:,} | {r['measured_bytes']['static']:,} | "
              f"{r['measured_bytes']['lifetime']:,} | {r['static_model_over_lifetime']:.2f}x | "
              f"{'yes' if r['bit_identical'] else 'NO'} |")


if __name__ == "__main__":
    main()
