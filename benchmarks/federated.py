"""Federated ElasticZO (issue 17): bytes per client per round against FedAvg, accuracy after the same number of
total steps against centralized training (IID and Dirichlet splits), the catch-up (replay vs pull) and the memory of
a client process. Needs elasticzo[federated] (bytes are counted as Flower serializes the messages).

The federation runs in one process (elasticzo.federated.local: the same payloads the Flower apps send, without the
transport), so the figures are the mechanism's, not Ray's or gRPC's. Prints a markdown report (and --json lines);
the machine's load average is printed beside every timing.

  python benchmarks/federated.py --threads 1                       # all sections, MNIST, 10 clients
  python benchmarks/federated.py --sections bytes,memory           # the quick ones
  python benchmarks/federated.py --sections server-lr --methods full-zo --rounds 200   # the server-lr sweep
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import numpy as np

from elasticzo import _core
from elasticzo.federated import FederationSpec, Replica
from elasticzo.federated.data import split_of
from elasticzo.federated.local import run_local
from elasticzo.trainer import evaluate

METHODS = ("full-zo", "zo-feat-cls2", "zo-feat-cls1", "full-bp")


def load() -> str:
    return "load average %.1f %.1f %.1f" % os.getloadavg()


def message_sizes(config, arrays):
    """(total, head) bytes of one message as Flower serializes it; head: what its head/* and zo/* arrays add."""
    from elasticzo.federated.flower import message_bytes, to_records

    total = message_bytes(to_records(config, arrays))
    light = {k: v for k, v in arrays.items() if not k.startswith(("head/", "zo/"))}
    return total, total - message_bytes(to_records(config, light))


def bytes_section(args):
    """Bytes of the second round (a client that took part in the first: it replays the first round's steps)."""
    rows = []
    for method in METHODS:
        spec = FederationSpec(method=method, precision=args.precision, num_clients=args.clients, num_rounds=2,
                              local_steps=args.local_steps,
                              dataset=args.dataset, train_samples=2000, seed=args.seed)
        seen = {}

        def note(kind, node, direction, config, arrays):
            if kind == "train" and node == 0:
                seen.setdefault(direction, []).append(message_sizes(config, arrays))

        run_local(spec, on_message=note)
        (down, down_head), (up, up_head) = seen["down"][1], seen["up"][1]
        rows.append(dict(method=method, local_steps=spec.local_steps, down=down, up=up, down_head=down_head,
                         up_head=up_head, zo_per_step=(down - down_head + up - up_head) / spec.local_steps))
    fedavg = next(r for r in rows if r["method"] == "full-bp")
    lines = [f"### Bytes per client per round ({args.dataset}, LeNet-5, {args.local_steps} local steps, round 2)", "",
             "| method | down | up | of which head (down / up) | ZO part per step, both ways, all overhead | "
             "vs FedAvg (down + up) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['down']:,} | {r['up']:,} | {r['down_head']:,} / {r['up_head']:,} | "
                     f"{r['zo_per_step']:.1f} | {(r['down'] + r['up']) / (fedavg['down'] + fedavg['up']):.4f}x |")
    lines += ["", "full-bp is FedAvg of the whole model (every layer is the head). The ZO part per step counts "
              "everything but the head, divided by the local steps: Flower's object headers, the config record "
              "(catch-up mode, step, digest, learning rates...) and the coefficients / projected gradients "
              "(4 bytes per step each way; 1 in INT8, the ternary gradient)."]
    return lines, rows


def _percent(fraction) -> str:
    return "not run" if np.isnan(fraction) else f"{100 * fraction:.2f}%"


def centralized(spec, steps, test):
    """The same model, hyperparameters and number of steps on the whole training split, one minibatch per step."""
    train = split_of(spec.dataset, spec.data_dir, "train", spec.train_samples)
    replica = Replica(spec, train.num_classes, train.sample_shape)
    core = replica.trainer.core
    rng = np.random.default_rng([spec.seed, 0xCE])
    batch = spec.value("batch_size")
    for step in range(steps):
        core.set_learning_rates(*spec.learning_rates(step // spec.local_steps))
        core.step(*train.take(rng.choice(len(train), batch, replace=False)))
    return evaluate(replica.model, test)


def accuracy_section(args):
    """Federated against centralized with as many updates (R x K steps) and with as much computation (N x R x K
    steps: every client step of the federation); the centralized runs do not depend on the split."""
    test = split_of(args.dataset, "", "test", 0)
    rows = []
    for method in args.methods.split(","):
        central = {}
        for partition in args.partitions.split(","):
            spec = FederationSpec(method=method, precision=args.precision, num_clients=args.clients,
                                  num_rounds=args.rounds,
                                  local_steps=args.local_steps, dataset=args.dataset, partition=partition,
                                  alpha=args.alpha, seed=args.seed)
            steps = args.rounds * args.local_steps
            for label, count in (("same_updates", steps), ("same_compute", steps * args.clients)):
                if label == "same_compute" and args.no_same_compute:
                    central[label] = (float("nan"), 0.0)
                elif label not in central:
                    t0 = time.perf_counter()
                    central[label] = (centralized(spec, count, test)["accuracy"], time.perf_counter() - t0)
            t0 = time.perf_counter()
            fed = run_local(spec, test=test)
            rows.append(dict(method=method, partition=partition, steps=steps,
                             federated=fed["rounds"][-1]["test"]["accuracy"],
                             centralized=central["same_updates"][0], centralized_same_compute=central["same_compute"][0],
                             fed_seconds=time.perf_counter() - t0, central_seconds=central["same_updates"][1],
                             central_compute_seconds=central["same_compute"][1], load=load()))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    lines = [f"### Test accuracy after the same number of steps ({args.dataset}, full test set, {args.clients} "
             f"clients, all sampled, {args.rounds} rounds x {args.local_steps} local steps; centralized: one "
             "minibatch per step on the whole training split, same hyperparameters)", "",
             "| method | split | federated (R x K updates) | centralized, R x K steps | difference (points) | "
             "centralized, N x R x K steps | seconds fed / central | machine |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        part = r["partition"] if r["partition"] == "iid" else f"dirichlet a={args.alpha}"
        lines.append(f"| {r['method']} | {part} | {100 * r['federated']:.2f}% ({r['steps']}) | "
                     f"{100 * r['centralized']:.2f}% | {100 * (r['federated'] - r['centralized']):+.2f} | "
                     f"{_percent(r['centralized_same_compute'])} | {r['fed_seconds']:.0f} / "
                     f"{r['central_seconds']:.0f} | {r['load']} |")
    return lines, rows


def server_lr_section(args):
    """The server learning-rate sweep behind spec.SERVER_LR: the federation trains on all but the last
    --validation training samples and is scored on those (never on the test split), against centralized training
    with as many updates on the same samples."""
    whole = split_of(args.dataset, "", "train", 0)
    keep = len(whole) - args.validation
    validation = whole.subset(np.arange(keep, len(whole)), name=f"{whole.name}[validation]")
    rows = []
    for method in args.methods.split(","):
        base = FederationSpec(method=method, precision=args.precision, num_clients=args.clients,
                              num_rounds=args.rounds,
                              local_steps=args.local_steps, dataset=args.dataset, partition="iid",
                              seed=args.seed, train_samples=keep)
        central = centralized(base, args.rounds * args.local_steps, validation)["accuracy"]
        for value in (float(v) for v in args.server_lrs.split(",")):
            spec = dataclasses.replace(base, server_lr=value)
            t0 = time.perf_counter()
            fed = run_local(spec, test=validation)["rounds"][-1]["test"]["accuracy"]
            rows.append(dict(method=method, server_lr=value, federated=fed, centralized=central,
                             seconds=time.perf_counter() - t0, load=load()))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    lines = [f"### Server learning rate ({args.dataset}, validation: the last {args.validation} training samples, "
             f"{args.clients} IID clients on the rest, {args.rounds} rounds x {args.local_steps} local steps; "
             "centralized: as many updates on the same samples)", "",
             "| method | server lr | federated | centralized | difference (points) | seconds | machine |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['server_lr']:g} | {100 * r['federated']:.2f}% | "
                     f"{100 * r['centralized']:.2f}% | {100 * (r['federated'] - r['centralized']):+.2f} | "
                     f"{r['seconds']:.0f} | {r['load']} |")
    return lines, rows


def catch_up_section(args):
    lines = ["### Catch-up: replay the missed steps or pull the ZO weights", "",
             "| method | ZO weights (pull) | replay: bytes per step | break-even (steps) | replay ms per step | "
             "replay of the break-even | machine |", "|---|---|---|---|---|---|---|"]
    rows = []
    for method in ("full-zo", "zo-feat-cls2", "zo-feat-cls1"):
        replica = Replica(FederationSpec(method=method, precision=args.precision, num_clients=1), 10, (1, 28, 28))
        n = 300
        size = replica.coefficient_dtype.itemsize  # INT8: a ternary gradient per step (+1: a move each step)
        t0 = time.perf_counter()
        replica.apply(0, np.full(n, 1 if replica.spec.int8 else 1e-6, dtype=replica.coefficient_dtype))
        ms = (time.perf_counter() - t0) / n * 1e3
        even = replica.zo_bytes // size
        rows.append(dict(method=method, zo_bytes=replica.zo_bytes, replay_ms=ms, break_even=even, load=load()))
        lines.append(f"| {method} | {replica.zo_bytes:,} | {size} | {even:,} | {ms:.3f} | {even * ms / 1e3:.1f} s | "
                     f"{load()} |")
    lines += ["", "`--catch-up auto` replays while the steps' bytes < the ZO weights' bytes and the server keeps the steps "
              "(`--max-replay-steps`, default 4096, which bounds the replay time: 4096 x the ms per step above); "
              "beyond that it pulls."]
    return lines, rows


CLIENT_PROBE = r"""
import sys, numpy as np
if sys.argv[1] == "flower":
    import elasticzo.federated.flower  # what a ClientApp process imports
from elasticzo.federated import FederationSpec, Replica
from elasticzo.federated import client
from elasticzo.federated.data import client_shard
from elasticzo.peak_rss import peak_rss_bytes
spec = FederationSpec(method=sys.argv[2], num_clients=10, local_steps=10)
shard = client_shard(spec, 0)
replica = Replica(spec, 10, (1, 28, 28))
config = dict(step=0, local_steps=10, batch_size=spec.value("batch_size"), lr_zo=spec.value("lr_zo"),
              lr_bp=spec.value("lr_bp"))
client.train(replica, shard, config, 0)
print(peak_rss_bytes())
"""


def memory_section(args):
    lines = ["### Peak resident memory of a client process (one round of 10 local steps, MNIST shard of 1/10)", "",
             "| method | elasticzo only | with Flower imported (a ClientApp process) |", "|---|---|---|"]
    rows = []
    for method in ("full-zo", "zo-feat-cls1"):
        got = {}
        for mode in ("plain", "flower"):
            out = subprocess.run([sys.executable, "-c", CLIENT_PROBE, mode, method], capture_output=True, text=True,
                                 check=True)
            got[mode] = int(out.stdout.split()[-1])
        rows.append(dict(method=method, **got))
        lines.append(f"| {method} | {got['plain'] / 2**20:.1f} MiB | {got['flower'] / 2**20:.1f} MiB |")
    lines += ["", "The whole MNIST training split (47 MB of uint8) is loaded before the shard is cut out of it; a "
              "board that holds only its own shard needs about 42 MB less."]
    return lines, rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="bytes,catch-up,memory,accuracy")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--precision", default="fp32", choices=("fp32", "int8", "int8-intonly"))
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--local-steps", type=int, default=10)
    p.add_argument("--methods", default="full-zo,zo-feat-cls1", help="for the accuracy section")
    p.add_argument("--partitions", default="iid,dirichlet")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-same-compute", action="store_true",
                   help="accuracy: skip the centralized run with as many steps as all clients together")
    p.add_argument("--server-lrs", default="1,2,4,8", help="for the server-lr section")
    p.add_argument("--validation", type=int, default=5000,
                   help="server-lr section: training samples held out for validation")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", action="store_true", help="also print each section's rows as JSON")
    args = p.parse_args()
    if args.threads:
        _core.set_num_threads(args.threads)
    sections = {"bytes": bytes_section, "catch-up": catch_up_section, "memory": memory_section,
                "accuracy": accuracy_section, "server-lr": server_lr_section}
    print(f"# Federated ElasticZO: {' '.join(sys.argv[1:])}\n\n{load()} at the start, "
          f"{_core.num_threads()} threads\n")
    for name in args.sections.split(","):
        lines, rows = sections[name](args)
        print("\n".join(lines) + "\n", flush=True)
        if args.json:
            print(json.dumps({name: rows}), flush=True)
    print(f"{load()} at the end")


if __name__ == "__main__":
    main()
