"""PointNet on ModelNet40, one epoch-equivalent of Full ZO, ZO-Feat-Cls1 and Full BP: elasticzo against PyTorch.

PyTorch is written the natural way, twice: the per-point layers as nn.Linear over (B, N, C) and as nn.Conv1d with
kernel 1 over (B, C, N); the faster of the two is the anchor. The algorithm is zo_epoch_vs_torch.py's
(TorchElasticZO: the MeZO seed trick, torch.no_grad forwards through the ZO part, autograd for the BP part with half
of each pass's loss, torch.optim.SGD); all three start from the same weights and see the same batches.
--steps N steps are timed after one untimed step (the first allocates the buffers and faults their pages in, once
per run, so it is not an epoch's 308th part) and scaled to the epoch (9,843 shapes at batch 32: 308 steps; a step of
PyTorch's Full BP takes seconds). The FLOP bound is the epoch's floating-point operations of the layers' GEMMs
(forward 2*MACs; a backward pass twice that, less the first layer's input gradient) at --peak-gflops, the FMA-loop
peak that `build/benchmarks/bench_kernels pointnet` prints (236 GFLOP/s with AVX-512 on the 2 cores of this machine,
an AMD EPYC VM; 444 on the Sapphire Rapids host it ran on before).
No environment variable is set; the machine's load is printed beside the figures.
"""

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import numpy as np
import torch

import elasticzo
from elasticzo import hparams
from elasticzo.data import batches, training_batches_per_epoch
from _common import add_runtime_args, load_split, train_steps
from zo_epoch_vs_torch import TorchElasticZO

BATCH = 32
METHODS = ("full-zo", "zo-feat-cls1", "full-bp")
ZO_LAYERS = {"full-zo": 8, "zo-feat-cls1": 6, "full-bp": 0}
WIDTHS = (3, 64, 64, 64, 128, 1024)
HEAD = (1024, 512, 256, 40)
NAMES = [f"mlp{i}" for i in range(1, 6)] + ["fc1", "fc2", "fc3"]


class MaxOverPoints(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.amax(dim=self.dim)


def torch_pointnet(ez_model, per_point):
    """PointNet in torch (per_point 'linear': input (B, N, 3), or 'conv1d': input (B, 3, N)) holding a copy of an
    elasticzo model's parameters."""
    layers = []
    for i in range(5):
        if per_point == "linear":
            layers.append(torch.nn.Linear(WIDTHS[i], WIDTHS[i + 1]))
        else:
            layers.append(torch.nn.Conv1d(WIDTHS[i], WIDTHS[i + 1], 1))
        layers.append(torch.nn.ReLU())
    layers.append(MaxOverPoints(1 if per_point == "linear" else 2))
    for i in range(3):
        layers.append(torch.nn.Linear(HEAD[i], HEAD[i + 1]))
        if i < 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    params = [m for m in net if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d))]
    state = ez_model.state_dict()
    with torch.no_grad():
        for name, layer in zip(NAMES, params):
            layer.weight.copy_(torch.from_numpy(state[name + ".weight"]).reshape(layer.weight.shape))
            layer.bias.copy_(torch.from_numpy(state[name + ".bias"]))
    return net, params


def step_flops(method, batch, points):
    """Floating-point operations of one step's layer GEMMs (the ReLU, max-pool, loss and z are left out)."""
    macs = [batch * points * a * b for a, b in zip(WIDTHS, WIDTHS[1:])] + [batch * a * b for a, b in zip(HEAD, HEAD[1:])]
    forward = 2 * sum(macs)
    c = ZO_LAYERS[method]
    # backward: weight gradient of every BP layer, input gradient of every BP layer but the network's first
    backward = sum(2 * 2 * m for m in macs[c:]) - (2 * macs[0] if c == 0 else 0)
    if c == 0:
        return forward + backward
    return 2 * forward + 2 * backward  # two passes; the BP part backpropagates both (their mean gradient)


class Clock:
    """Wall and CPU time from start() to stop()."""

    def start(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self):
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def run_elasticzo(method, hp, train, steps):
    tr = elasticzo.ElasticZO(elasticzo.models.pointnet(seed=0), method=method, lr_zo=hp.lr_zo, lr_bp=hp.lr_bp,
                             eps=hp.eps, grad_clip=hp.grad_clip, seed=0)
    clock = Clock()
    stats = train_steps(tr, train, hp.batch_size, steps + 1, on_checkpoint=lambda k, loss: clock.start(),
                        checkpoints=(1,))
    seconds, cpu = clock.stop()
    return dict(seconds=seconds, cpu_seconds=cpu, train_loss=float(np.mean([s["loss"] for s in stats[1:]])))


def run_torch(method, hp, train, steps, per_point):
    torch.manual_seed(0)
    net, params = torch_pointnet(elasticzo.models.pointnet(seed=0), per_point)
    trainer = TorchElasticZO(net, params, ZO_LAYERS[method], hp)

    clock = Clock()
    losses = []
    for x, y in batches(train, hp.batch_size, shuffle=True, seed=0, epoch=0):
        x = torch.from_numpy(x)
        if per_point == "conv1d":
            x = x.transpose(1, 2).contiguous()  # the channels-first layout Conv1d reads
        losses.append(trainer.step(x, torch.from_numpy(y.astype(np.int64))))
        if len(losses) == 1:
            clock.start()  # after the untimed first step, as for elasticzo
        if len(losses) == steps + 1:
            break
    seconds, cpu = clock.stop()
    return dict(seconds=seconds, cpu_seconds=cpu, train_loss=float(np.mean(losses[1:])))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_args(p)
    p.add_argument("--steps", type=int, default=10, help="steps timed per method and side (default 10)")
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    p.add_argument("--peak-gflops", type=float, default=None,
                   help="FMA-loop peak of the machine at --threads (default 118 per thread: `bench_kernels pointnet`, "
                        "AVX-512, on this machine's cores; 236 on 2)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    if any(m not in METHODS for m in methods) or args.steps < 1:
        p.error(f"--methods takes names from {', '.join(METHODS)}; --steps must be >= 1")
    args.peak_gflops = args.peak_gflops or 118.0 * args.threads
    elasticzo.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    train = load_split(p, "modelnet40", args.data_dir, "train")
    points = train.sample_shape[0]

    results = {"threads": args.threads, "isa": elasticzo.active_isa(), "torch": torch.__version__,
               "load_before": os.getloadavg(), "steps": args.steps, "methods": {}}
    for m in methods:
        # every method at batch 32, the comparison the issue set (the ZO-Feat methods' tuned batch is 16)
        hp = replace(hparams.defaults("pointnet", "modelnet40", m), batch_size=BATCH)
        per_epoch = training_batches_per_epoch(len(train), hp.batch_size)
        scale = per_epoch / args.steps
        ez = run_elasticzo(m, hp, train, args.steps)
        th = {pp: run_torch(m, hp, train, args.steps, pp) for pp in ("linear", "conv1d")}
        anchor = min(th, key=lambda k: th[k]["seconds"])
        flops = step_flops(m, hp.batch_size, points) * per_epoch
        bound = flops / (args.peak_gflops * 1e9)
        r = dict(steps_per_epoch=per_epoch, epoch_gflop=flops / 1e9, flop_bound_seconds=bound,
                 elasticzo_epoch_seconds=ez["seconds"] * scale, elasticzo=ez, torch=th, anchor=anchor,
                 torch_epoch_seconds={k: v["seconds"] * scale for k, v in th.items()},
                 ratio=th[anchor]["seconds"] / ez["seconds"], cpu_ratio=th[anchor]["cpu_seconds"] / ez["cpu_seconds"],
                 over_bound=ez["seconds"] * scale / bound)
        results["methods"][m] = r
        if not args.json:
            target = " (target >= 4x)" if m == "zo-feat-cls1" else ""
            print(f"{m}: epoch-equivalent ({per_epoch} steps of batch {hp.batch_size}, from {args.steps} timed, "
                  f"{args.threads} threads): elasticzo {r['elasticzo_epoch_seconds']:.1f} s, torch Linear "
                  f"{r['torch_epoch_seconds']['linear']:.1f} s, torch Conv1d {r['torch_epoch_seconds']['conv1d']:.1f} s;"
                  f" torch ({anchor}) / elasticzo {r['ratio']:.2f}x{target}")
            print(f"  FLOP bound: {r['epoch_gflop']:.0f} GFLOP at {args.peak_gflops:g} GFLOP/s = {bound:.1f} s; "
                  f"elasticzo is {r['over_bound']:.2f}x above it ({flops / 1e9 / r['elasticzo_epoch_seconds']:.0f} "
                  f"GFLOP/s); CPU time of the timed steps elasticzo {ez['cpu_seconds']:.2f} s, torch "
                  f"{th[anchor]['cpu_seconds']:.2f} s ({r['cpu_ratio']:.2f}x); "
                  f"train loss {ez['train_loss']:.4f} / {th[anchor]['train_loss']:.4f}")
    results["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(results))
    else:
        print(f"isa {results['isa']}, torch {results['torch']}, load average (1, 5, 15 min) "
              f"{', '.join(f'{v:.1f}' for v in results['load_before'])} before, "
              f"{', '.join(f'{v:.1f}' for v in results['load_after'])} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
