"""How much does one ElasticZO-INT8 step know, per method, when fine-tuning a pretrained INT8 LeNet-5 (Table 2)?

For --pairs random sparse perturbations zeta (uniform on [-r, r], a fraction p_zero zeroed; numpy's generator, the
same law as the library's) of the ZO layers of each method, on training batches of the rotated fine-tuning subset
(the part `sweep_table2_int8.py` trains on, never the test split), it compares the ternary gradient the INT8 step uses,
g = sign(L(w + zeta) - L(w - zeta)) from the int8 forward pass, with the sign of the directional derivative of the
FP32 loss of the same dequantized weights along zeta (PyTorch autograd on a float twin): the share of steps whose g
points downhill. It also prints each ZO layer's share of |grad . zeta| (which layer's perturbation the sign is mostly
about; the other layers then move at random) and the agreement of g with the FP32 finite difference at the same
+-zeta (what int8 requantization alone costs). PyTorch is only the oracle here.
"""

import argparse
import os
from pathlib import Path

import numpy as np
import torch

import elasticzo
from elasticzo.data import rotated_subset
from elasticzo.methods import zo_layers_for
from lenet_forward_vs_torch import torch_lenet5
from zo_int8_signs import endless_batches, xent
from _common import RESULTS_DIR, add_runtime_args, load_split, validation_split, write_atomic

NAMES = {"full-zo": "Full ZO", "zo-feat-cls2": "ZO-Feat-Cls2", "zo-feat-cls1": "ZO-Feat-Cls1"}


def measure(model, twin, train, method, pairs, r, p_zero, batch, seed):
    names = model.parameter_names()[:zo_layers_for(method, model.num_param_layers)]
    state = model.state_dict()
    base = {n: state[n].astype(np.int32) for n in names}
    exps = {n: int(state[n + ".exponent"]) for n in names}
    params = dict(twin.named_parameters())
    rng = np.random.default_rng(seed)
    downhill = fd_agree = 0
    share = {n: 0.0 for n in names}
    it = endless_batches(train, batch, seed)
    try:
        for _ in range(pairs):
            x, y = next(it)
            twin.zero_grad()
            torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y).long()).backward()
            zeta = {n: np.where(rng.random(w.shape) < p_zero, 0, rng.integers(-r, r + 1, w.shape))
                    for n, w in base.items()}
            dots = {n: float((params[n].grad.numpy().astype(np.float64) * np.ldexp(zeta[n], exps[n])).sum())
                    for n in names}
            losses, twin_losses = [], []
            for sign in (1, -1):
                for n, w in base.items():
                    moved = np.clip(w + sign * zeta[n], -127, 127).astype(np.int8)
                    model.set_parameter(n, moved, exps[n])
                    with torch.no_grad():
                        params[n].copy_(torch.from_numpy(np.ldexp(moved.astype(np.float32), exps[n])))
                losses.append(xent(model.forward(x), y))
                with torch.no_grad():
                    twin_losses.append(xent(twin(torch.from_numpy(x)).numpy(), y))
                for n, w in base.items():  # the twin's gradient is taken at the unperturbed weights
                    with torch.no_grad():
                        params[n].copy_(torch.from_numpy(np.ldexp(w.astype(np.float32), exps[n])))
            g = np.sign(losses[0] - losses[1])
            downhill += g == np.sign(sum(dots.values()))
            fd_agree += g == np.sign(twin_losses[0] - twin_losses[1])
            total = sum(abs(d) for d in dots.values()) or 1.0
            for n in names:
                share[n] += abs(dots[n]) / total / pairs
    finally:
        for n, w in base.items():
            model.set_parameter(n, w.astype(np.int8), exps[n])
    return downhill / pairs, fd_agree / pairs, share


def twin_of(model):
    """A PyTorch LeNet-5 (zero biases) holding the INT8 model's dequantized weights."""
    float_model = elasticzo.models.lenet5()
    for name, value in float_model.state_dict().items():
        if name.endswith("bias"):
            float_model.set_parameter(name, np.zeros_like(value))
    float_model.load_state_dict(model.state_dict(), strict=False)  # mantissas and exponents: their values
    return torch_lenet5(float_model)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", nargs=3, action="append", required=True, metavar=("DATASET", "ANGLE", "RUN_DIR"),
                   help="a dataset, an angle and its pretrained INT8 Full BP run directory (repeatable)")
    p.add_argument("--methods", nargs="+", choices=list(NAMES), default=list(NAMES))
    p.add_argument("--pairs", type=int, default=300, help="perturbation pairs per method (default 300)")
    p.add_argument("--range", type=int, default=16, help="perturbation range r (default 16, the library's)")
    p.add_argument("--p-zero", type=float, default=0.33, help="fraction of zeta zeroed (default 0.33)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--train-samples", type=int, default=4096)
    p.add_argument("--val", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--table", default=str(RESULTS_DIR / "table2_int8_signs.md"), help="Markdown output")
    add_runtime_args(p)
    args = p.parse_args()
    elasticzo.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rows = ["| dataset | angle | method | g downhill % | g = FP32 finite-difference sign % | share of |grad . zeta| "
            "per ZO layer (%) |", "|---|---|---|---|---|---|"]
    load = os.getloadavg()[0]
    for dataset, angle, run_dir in args.cell:
        angle = float(angle)
        full = load_split(p, dataset, args.data_dir, "train")
        train, _ = validation_split(rotated_subset(full.subset(range(args.train_samples)), angle), args.val)
        model = elasticzo.from_torch(Path(run_dir) / "checkpoint.safetensors",
                                     elasticzo.models.lenet5(precision="int8"))
        twin = twin_of(model)
        for method in args.methods:
            down, fd, share = measure(model, twin, train, method, args.pairs, args.range, args.p_zero, args.batch,
                                      args.seed)
            layers = ", ".join(f"{k.split('.')[0]} {100 * v:.0f}" for k, v in share.items())
            rows.append(f"| {dataset} | {angle:g} | {NAMES[method]} | {100 * down:.1f} | {100 * fd:.1f} | {layers} |")
            print(rows[-1], flush=True)
    text = (f"# ElasticZO-INT8 fine-tuning: does the ternary gradient point downhill?\n\n{args.pairs} perturbation "
            f"pairs per row, r = {args.range}, p_zero = {args.p_zero}, batch {args.batch}; the pretrained INT8 model "
            f"(before fine-tuning) on the rotated training images; load average {load:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end.\n\n" + "\n".join(rows) + "\n")
    write_atomic(args.table, text)


if __name__ == "__main__":
    main()
