"""One epoch (or --steps N) of LeNet-5 on MNIST: elasticzo against a plain PyTorch CPU version of the same algorithm.

PyTorch side, written the natural way: the MeZO seed trick (torch.manual_seed(s), then torch.randn_like per ZO
parameter) for +eps, -2 eps and the fused restore+update; torch.no_grad forwards through the ZO layers; autograd for
the BP layers with half of each pass's loss, so their gradient is the mean of the two passes; torch.optim.SGD.
Full BP is plain PyTorch SGD. Both sides start from the same initial weights and see the same batches.
Each method runs --rounds times on both sides, alternated, and the ratio printed is the median of the rounds' ratios:
on this shared VM one side's epoch time swings by up to 1.5x between runs minutes apart.
Also reports the cost of one elasticzo ZO step relative to one forward pass of the same batch.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

import elasticzo
from elasticzo import hparams
from elasticzo.data import batches, training_batches_per_epoch
from _common import add_runtime_args, load_split, train_steps

METHODS = ("full-zo", "zo-feat-cls1", "full-bp")
ZO_LAYERS = {"full-zo": 5, "zo-feat-cls1": 3, "full-bp": 0}


def torch_lenet5(ez_model):
    """torch LeNet-5 (SPEC §1) holding a copy of an elasticzo model's parameters."""
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(784, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(), torch.nn.Linear(84, 10))
    names = ("conv1", "conv2", "fc1", "fc2", "fc3")
    state = ez_model.state_dict()
    params = [m for m in net if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        for name, layer in zip(names, params):
            layer.weight.copy_(torch.from_numpy(state[name + ".weight"]))
            layer.bias.copy_(torch.from_numpy(state[name + ".bias"]))
    return net, params


class TorchElasticZO:
    """Algorithm 1 in PyTorch: parameter layers [0, C) by SPSA with seed-regenerated z, the rest by SGD."""

    def __init__(self, net, param_layers, zo_layers, hp, seed=0):
        cut = list(net).index(param_layers[zo_layers]) if zo_layers < len(param_layers) else len(net)
        self.zo_part, self.bp_part = net[:cut], net[cut:]
        self.zo_params = [p for layer in param_layers[:zo_layers] for p in layer.parameters()]
        bp_params = [p for layer in param_layers[zo_layers:] for p in layer.parameters()]
        for p in self.zo_params:
            p.requires_grad_(False)
        self.opt = torch.optim.SGD(bp_params, lr=hp.lr_bp) if bp_params else None
        self.hp = hp
        self.seeds = np.random.default_rng(seed)
        self.times = dict(forward=0.0, backward=0.0, zo_perturb=0.0, zo_update=0.0)

    def _perturb(self, seed, scale, phase):
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        for p in self.zo_params:
            p.add_(torch.randn_like(p), alpha=scale)
        self.times[phase] += time.perf_counter() - t0

    def _loss(self, x, y):
        t0 = time.perf_counter()
        with torch.no_grad():
            features = self.zo_part(x)
        loss = F.cross_entropy(self.bp_part(features), y)
        self.times["forward"] += time.perf_counter() - t0
        if self.opt is not None:
            t0 = time.perf_counter()
            (0.5 * loss).backward()  # half of each pass: the BP gradient is the mean of the two
            self.times["backward"] += time.perf_counter() - t0
        return loss.item()

    def step(self, x, y):
        eps, hp = self.hp.eps, self.hp
        if not self.zo_params:
            t0 = time.perf_counter()
            loss = F.cross_entropy(self.bp_part(x), y)
            self.times["forward"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.times["backward"] += time.perf_counter() - t0
            return loss.item()
        seed = int(self.seeds.integers(2**62))
        if self.opt is not None:
            self.opt.zero_grad()
        self._perturb(seed, eps, "zo_perturb")
        loss_plus = self._loss(x, y)
        self._perturb(seed, -2 * eps, "zo_perturb")
        loss_minus = self._loss(x, y)
        g = (loss_plus - loss_minus) / (2 * eps)
        if hp.grad_clip > 0:
            g = min(max(g, -hp.grad_clip), hp.grad_clip)
        self._perturb(seed, eps - hp.lr_zo * g, "zo_update")  # restore and update in one pass over z
        if self.opt is not None:
            t0 = time.perf_counter()
            self.opt.step()
            self.times["backward"] += time.perf_counter() - t0
        return 0.5 * (loss_plus + loss_minus)


def torch_accuracy(net, test):
    with torch.no_grad():
        correct = sum(int((net(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
                      for x, y in batches(test, 256, shuffle=False))
    return correct / len(test)


def run_torch(method, hp, train, test, steps, evaluate_after):
    torch.manual_seed(0)
    net, params = torch_lenet5(elasticzo.models.lenet5(seed=0))
    trainer = TorchElasticZO(net, params, ZO_LAYERS[method], hp)
    losses = []
    start, cpu = time.perf_counter(), time.process_time()
    for x, y in batches(train, hp.batch_size, shuffle=True, seed=0, epoch=0):
        losses.append(trainer.step(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))))
        if len(losses) == steps:
            break
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = dict(seconds=seconds, cpu_seconds=cpu, steps=len(losses), train_loss=float(np.mean(losses)),
               phases=trainer.times)
    if evaluate_after:
        out["test_accuracy"] = torch_accuracy(net, test)
    return out


def lenet5_trainer(method, hp):
    """An elasticzo trainer of a fresh LeNet-5 (seed 0, its model is trainer.model) with the hyperparameters hp."""
    return elasticzo.ElasticZO(elasticzo.models.lenet5(seed=0), method=method, lr_zo=hp.lr_zo, lr_bp=hp.lr_bp,
                               eps=hp.eps, grad_clip=hp.grad_clip, seed=0)


def run_elasticzo(method, hp, train, test, steps, evaluate_after):
    tr = lenet5_trainer(method, hp)
    start, cpu = time.perf_counter(), time.process_time()
    stats = train_steps(tr, train, hp.batch_size, steps)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    times = tr.core.times()
    phases = {p: times[p] for p in ("forward", "zo_perturb", "zo_update", "loss")}
    phases["backward"] = times["backward"] + times["optimizer"]
    out = dict(seconds=seconds, cpu_seconds=cpu, steps=len(stats),
               train_loss=float(np.mean([s["loss"] for s in stats])), phases=phases)
    if evaluate_after:
        out["test_accuracy"] = tr.evaluate(test)["accuracy"]
    return out


def step_vs_forward(method, hp, train, repeats):
    """One elasticzo step and one forward pass on the same batch, after a warm-up: the fastest wall seconds of each
    and the ratio of their total CPU seconds. On a shared machine the fastest repeat is the least disturbed one,
    and CPU time leaves out the time spent waiting for a core (the pool's threads spin at most 50 us, then sleep).
    """
    tr = lenet5_trainer(method, hp)
    model = tr.model
    x, y = next(batches(train, hp.batch_size, shuffle=True, seed=0, epoch=0))
    for _ in range(3):
        tr.core.step(x, y)
        model.forward(x)
    step_t, fwd_t, step_cpu, fwd_cpu = [], [], 0.0, 0.0
    for _ in range(repeats):  # interleaved, so both see the same machine load
        t0, c0 = time.perf_counter(), time.process_time()
        tr.core.step(x, y)
        t1, c1 = time.perf_counter(), time.process_time()
        model.forward(x)
        t2, c2 = time.perf_counter(), time.process_time()
        step_t.append(t1 - t0)
        fwd_t.append(t2 - t1)
        step_cpu += c1 - c0
        fwd_cpu += c2 - c1
    return min(step_t), min(fwd_t), step_cpu / fwd_cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runtime_args(p)
    p.add_argument("--steps", type=int, default=None, help="time this many steps instead of a full epoch")
    p.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    p.add_argument("--repeats", type=int, default=200, help="repeats of the step/forward timing")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternated elasticzo/PyTorch runs per method; the ratio printed is their median")
    p.add_argument("--lr-zo", type=float, default=None, help="override the tuned default (ZO methods)")
    p.add_argument("--lr-bp", type=float, default=None, help="override the tuned default (methods with BP layers)")
    p.add_argument("--eps", type=float, default=None, help="override the tuned default")
    p.add_argument("--clip", type=float, default=None, help="override the tuned default (ZO methods)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON line")
    args = p.parse_args(argv)
    methods = args.methods.split(",")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if any(m not in METHODS for m in methods):
        p.error(f"--methods takes names from {', '.join(METHODS)}")
    elasticzo.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    train = load_split(p, "mnist", args.data_dir, "train")
    test = load_split(p, "mnist", args.data_dir, "test")

    # Timings on a shared machine mean little without its load. No environment variable is set: both libraries
    # run as a user gets them.
    results = {"threads": args.threads, "isa": elasticzo.active_isa(), "torch": torch.__version__,
               "load_before": os.getloadavg()[0], "methods": {}}
    for m in methods:
        hp = hparams.defaults("lenet5", "mnist", m)
        overrides = {"lr_zo": args.lr_zo if m != "full-bp" else None, "lr_bp": args.lr_bp if m != "full-zo" else None,
                     "eps": args.eps, "grad_clip": args.clip if m != "full-bp" else None}
        hp = dataclasses.replace(hp, **{k: v for k, v in overrides.items() if v is not None})
        steps = args.steps or training_batches_per_epoch(len(train), hp.batch_size)
        full = args.steps is None
        rounds = []
        for k in range(args.rounds):
            # Alternated, and the side that goes first swaps each round: the VM's speed drifts by tens of percent
            # within a minute, and a drift must not favour one side. Test accuracy after the first round only.
            order = ("ez", "th") if k % 2 == 0 else ("th", "ez")
            run = {"ez": lambda: run_elasticzo(m, hp, train, test, steps, full and k == 0),
                   "th": lambda: run_torch(m, hp, train, test, steps, full and k == 0)}
            rounds.append({side: run[side]() for side in order})
        ez, th = rounds[0]["ez"], rounds[0]["th"]
        ratios = [r_["th"]["seconds"] / r_["ez"]["seconds"] for r_ in rounds]
        cpu_ratios = [r_["th"]["cpu_seconds"] / r_["ez"]["cpu_seconds"] for r_ in rounds]
        r = dict(hparams=hp.as_dict(), steps=steps, elasticzo=ez, torch=th, ratio=float(np.median(ratios)),
                 cpu_ratio=float(np.median(cpu_ratios)), round_ratios=ratios,
                 round_seconds=[(r_["ez"]["seconds"], r_["th"]["seconds"]) for r_ in rounds])
        if m != "full-bp":
            step_s, fwd_s, cpu_ratio = step_vs_forward(m, hp, train, args.repeats)
            r.update(step_seconds=step_s, forward_seconds=fwd_s, step_over_forward=step_s / fwd_s,
                     step_over_forward_cpu=cpu_ratio)
        results["methods"][m] = r
        if not args.json:
            target = " (target >= 7x)" if m == "zo-feat-cls1" else ""
            rounds_s = "; ".join(f"{e:.2f} s / {t:.2f} s = {t / e:.2f}x" for e, t in r["round_seconds"])
            print(f"{m} ({steps} steps, batch {hp.batch_size}, {args.threads} threads), torch/elasticzo median of "
                  f"{args.rounds} alternated rounds {r['ratio']:.2f}x{target} (CPU time {r['cpu_ratio']:.2f}x); "
                  f"rounds (elasticzo / torch): {rounds_s}")
            for side, res in (("elasticzo", ez), ("torch", th)):  # the first round
                phases = ", ".join(f"{k} {v:.2f}" for k, v in res["phases"].items())
                acc = f", test accuracy {100 * res['test_accuracy']:.2f}%" if "test_accuracy" in res else ""
                print(f"  {side:9s}: train loss {res['train_loss']:.4f}{acc}; phases (s): {phases}")
            if "step_over_forward" in r:
                print(f"  elasticzo step / forward (target <= 2.1x): fastest {1e3 * r['step_seconds']:.2f} ms / "
                      f"{1e3 * r['forward_seconds']:.2f} ms = {r['step_over_forward']:.2f}x, CPU time "
                      f"{r['step_over_forward_cpu']:.2f}x")
    results["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(results))
    else:
        print(f"isa {results['isa']}, torch {results['torch']}, "
              f"1-minute load {results['load_before']:.1f} before, {results['load_after']:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
