"""How reliable is ElasticZO-INT8's ternary gradient g = sign(l+ - l-)? Two measurements on MNIST batches, each
over --pairs random sparse perturbations (zeta uniform on [-r, r], a fraction p_zero zeroed; the ZO layers of
ZO-Feat-Cls1) of an INT8 LeNet-5: freshly initialized, then loaded from each checkpoint given.

1. The integer-only sign (INT8*, SPEC §6) against the floating-point sign of the same int8 logits, for F = 0 (the
   paper's floor(log2 S_i) summed over the batch) and F = 8 fractional bits: agree, tie (the integer sums are
   equal, so g = 0 where the floating-point sign is not) or wrong (the opposite sign). The paper reports its
   floor(log2) as right "around 95%" of the time.
2. Where F = 0 loses the sign, from the same logits (NumPy, double precision; diagnostics, not training code):
   "integer alpha, exact log2" keeps the paper's integer exponents alpha_j = floor((v_j - v_y) 47274 2^e / 2^15)
   but takes log2 S_i exactly (what the alphas alone lose), "exact alpha, floor(log2)" takes the exponents exactly
   but floors each sample's log2 S_i (what the floor alone loses: ties and wrong signs).
3. The sign of the int8 forward pass (dequantized logits, the paper's INT8 column) against the sign of an FP32
   forward pass of the same dequantized weights: how much the requantization of activations perturbs g.

Prints a Markdown table (and writes it to --table).
"""

import argparse
import os

import numpy as np

import elasticzo
from elasticzo import _core
from elasticzo.data import batches
from _common import RESULTS_DIR, add_runtime_args, load_split, write_atomic


def mantissas(x):
    """(int8 mantissas, exponent) of an int8 model's output x = v * 2^e (the smallest exponent that is exact)."""
    for e in range(-64, 64):
        v = np.ldexp(x.astype(np.float64), -e)
        if np.abs(v).max() <= 127 and np.array_equal(v, np.round(v)):
            return v.astype(np.int8), e
    raise ValueError("the output is not an int8 tensor times a power of two")


def xent(o, y):
    o = o.astype(np.float64) - o.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(o).sum(axis=1)) - o[np.arange(len(y)), y]))


def _log2_sums(v, e, y, exact_alpha):
    """log2 S_i per row of int8 logits v * 2^e: S_i = sum_j 2^alpha_j, alpha_j = (v_j - v_y) log2(e) 2^e exactly,
    or floored as the integer computation does (47274 / 2^15 for log2 e, an exact product, then floor)."""
    d = v.astype(np.int64) - v[np.arange(len(y)), y][:, None].astype(np.int64)
    alpha = d * np.log2(np.e) * 2.0 ** e if exact_alpha else np.floor(d * 47274 * 2.0 ** e / 2 ** 15)
    top = alpha.max(axis=1)
    return top + np.log2(np.exp2(alpha - top[:, None]).sum(axis=1))


def float_twin(model):
    """An FP32 LeNet-5 (zero biases) holding model's dequantized weights."""
    twin = elasticzo.models.lenet5()
    for name, value in twin.state_dict().items():
        if name.endswith("bias"):
            twin.set_parameter(name, np.zeros_like(value))
    return twin


def endless_batches(train, batch, seed):
    epoch = 0
    while True:
        yield from batches(train, batch, shuffle=True, seed=seed, epoch=epoch)
        epoch += 1


def measure(model, train, batch, pairs, r, p_zero, zo_layers, seed):
    names = model.parameter_names()[:zo_layers]
    state = model.state_dict()
    base = {n: state[n].astype(np.int32) for n in names}
    exps = {n: int(state[n + ".exponent"]) for n in names}
    twin = float_twin(model)
    for n in model.parameter_names():
        twin.set_parameter(n, np.ldexp(state[n].astype(np.float32), int(state[n + ".exponent"])))
    rng = np.random.default_rng(seed)
    it = endless_batches(train, batch, seed)
    counts = {f"{f}_{k}": 0 for f in ("F0", "F8", "int_alpha", "floor_log") for k in ("agree", "tie", "wrong")}
    forward_agree = 0
    try:
        for _ in range(pairs):
            x, y = next(it)
            zeta = {n: np.where(rng.random(w.shape) < p_zero, 0, rng.integers(-r, r + 1, w.shape))
                    for n, w in base.items()}
            logits, twin_loss = [], []
            for sign in (1, -1):
                for n, w in base.items():
                    moved = np.clip(w + sign * zeta[n], -127, 127).astype(np.int8)
                    model.set_parameter(n, moved, exps[n])
                    twin.set_parameter(n, np.ldexp(moved.astype(np.float32), exps[n]))
                logits.append(mantissas(model.forward(x)))
                twin_loss.append(xent(twin.forward(x), y))
            (vp, ep), (vm, em) = logits
            fp = _core.int8_zo_sign(vp, ep, vm, em, y, method="fp32")
            signs = {f"F{f}": _core.int8_zo_sign(vp, ep, vm, em, y, method="int", frac_bits=f) for f in (0, 8)}
            signs["int_alpha"] = np.sign(_log2_sums(vp, ep, y, False).sum() - _log2_sums(vm, em, y, False).sum())
            signs["floor_log"] = np.sign(np.floor(_log2_sums(vp, ep, y, True)).sum() -
                                         np.floor(_log2_sums(vm, em, y, True)).sum())
            for f, g in signs.items():
                counts[f"{f}_" + ("agree" if g == fp else "tie" if g == 0 else "wrong")] += 1
            forward_agree += fp == np.sign(twin_loss[0] - twin_loss[1])
    finally:
        for n, w in base.items():
            model.set_parameter(n, w.astype(np.int8), exps[n])
    return {k: v / pairs for k, v in counts.items()} | {"forward_agree": forward_agree / pairs}


def _pct(m, *keys):
    return " / ".join(f"{100 * m[k]:.1f}" for k in keys)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="*", help="INT8 LeNet-5 checkpoints (a run's checkpoint.safetensors), "
                   "measured after a freshly initialized model")
    p.add_argument("--batches", default="32,64,256", help="batch sizes (default 32,64,256)")
    p.add_argument("--pairs", type=int, default=400, help="perturbation pairs per cell (default 400)")
    p.add_argument("--range", type=int, default=3, help="perturbation range r (default 3)")
    p.add_argument("--p-zero", type=float, default=0.33, help="fraction of zeta zeroed (default 0.33)")
    p.add_argument("--zo-layers", type=int, default=3, help="parameter layers perturbed (default 3: ZO-Feat-Cls1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the perturbations and the batch order (default 0)")
    p.add_argument("--table", default=str(RESULTS_DIR / "zo_int8_signs.md"), help="Markdown output")
    add_runtime_args(p)
    args = p.parse_args()
    train = load_split(p, "mnist", args.data_dir, "train")
    elasticzo.set_num_threads(args.threads)
    states = [("fresh (seed 0)", elasticzo.models.lenet5(seed=0, precision="int8"))]
    states += [(os.path.relpath(c), elasticzo.ElasticZO.load(c).model) for c in args.checkpoints]
    rows = ["| model | batch | F=0 agree | F=0 tie | F=0 wrong | F=0 agree where decided | F=8 agree | F=8 tie | "
            "F=8 wrong | integer alpha, exact log2: agree / wrong | exact alpha, floor(log2): agree / tie / wrong | "
            "int8 vs FP32 forward agree |", "|---" * 12 + "|"]
    for label, model in states:
        for batch in (int(b) for b in args.batches.split(",")):
            m = measure(model, train, batch, args.pairs, args.range, args.p_zero, args.zo_layers, args.seed)
            decided = m["F0_agree"] + m["F0_wrong"]
            cells = [label, str(batch), _pct(m, "F0_agree"), _pct(m, "F0_tie"), _pct(m, "F0_wrong"),
                     f"{100 * m['F0_agree'] / decided:.1f}" if decided else "–", _pct(m, "F8_agree"),
                     _pct(m, "F8_tie"), _pct(m, "F8_wrong"), _pct(m, "int_alpha_agree", "int_alpha_wrong"),
                     _pct(m, "floor_log_agree", "floor_log_tie", "floor_log_wrong"), _pct(m, "forward_agree")]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    text = (f"# ElasticZO-INT8: reliability of the ternary gradient\n\n{args.pairs} perturbation pairs per row, "
            f"r = {args.range}, p_zero = {args.p_zero}, the first {args.zo_layers} parameter layers perturbed; "
            f"percent of pairs. Load average {load:.1f}.\n\n" + "\n".join(rows) + "\n")
    write_atomic(args.table, text)


if __name__ == "__main__":
    main()
