"""Validation sweep of ElasticZO-INT8's fine-tuning settings for Table 2 (INT8), never touching the test split.

With --subset-seed S the data are drawn as paper_table2.py draws them (SPEC §7): the --train-samples training images
its fine-tuning run takes (`rotated_subset(train, angle, N, S)`) fine-tune the pretrained INT8 LeNet-5 (a finished
`elasticzo train --precision int8 --method full-bp` run) for --epochs epochs, and --val other training images, drawn
from the rest with the same seed and rotated alike, validate it. Without --subset-seed, the first --train-samples
training images (the table's subset until it drew at random) are split by `_common.validation_split` into --val for
validation and the rest for fine-tuning: the experiment of results/sweep_table2_int8.md, kept so its logged runs stay
readable as what they were. One run per
setting given with --grid (range r, fixed p_zero, the paper's schedule or other values per phase, the BP part's
first mu, batch size, the ZO update's bit-width b_zo, the epochs where the schedules step, seed).
After every epoch a run records its validation accuracy, the share of ZO steps whose ternary gradient g was 0 / +1,
and per parameter layer the share of weights whose mantissa changed during the epoch: the evidence of how the ZO
part moves. Runs append to OUT/runs.jsonl (a finished setting is skipped when the script is started again); the
Markdown summary goes to --table.
"""

import argparse
import itertools
import os
import time
from pathlib import Path

import numpy as np

import elasticzo
from elasticzo.data import rotated_subset
from _common import (RESULTS_DIR, add_runtime_args, append_jsonl, load_split, read_jsonl, subset_seed,
                     validation_split, write_atomic)

NAMES = {"full-zo": "Full ZO", "zo-feat-cls2": "ZO-Feat-Cls2", "zo-feat-cls1": "ZO-Feat-Cls1"}


PAPER_PHASES = (20, 50)  # the epochs where the paper's mu and p_zero schedules step (SPEC §5)
DEFAULTS = {"r": 16, "p": None, "mu": 5, "b": 64, "bz": 1, "ph": PAPER_PHASES, "s": 0}


def _p_zero(v):
    return None if v == "sched" else [float(x) for x in v.split("/")] if "/" in v else float(v)


def _phases(v):
    a, b = (int(x) for x in v.split("/"))
    if not 0 < a <= b:
        raise ValueError(f"phase epochs A/B need 0 < A <= B, got {v!r}")
    return (a, b)


def parse_grid(text):
    """'r=16,32 p=sched,0.5 mu=5 b=64 bz=1,2 ph=20/50,10/25 s=0,1' -> the settings (dicts), every combination."""
    keys = {"r": int, "p": _p_zero, "mu": int, "b": int, "bz": int, "ph": _phases, "s": int}
    axes = {k: [v] for k, v in DEFAULTS.items()}
    for part in text.split():
        k, _, values = part.partition("=")
        if k not in keys or not values:
            raise SystemExit(f"--grid: {part!r} is not one of {' '.join(f'{k}=..' for k in keys)} "
                             "(comma-separated values)")
        try:
            axes[k] = [keys[k](v) for v in values.split(",")]
        except ValueError as exc:
            raise SystemExit(f"--grid: {part!r}: {exc}") from None
    return [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]


def _text(p):
    return "sched" if p is None else "/".join(f"{x:g}" for x in p) if isinstance(p, list) else f"{p:g}"


def key_of(dataset, angle, method, s, subset_seed=None):
    """The run's name in runs.jsonl; settings added after the first sweep (bz, ph, s, the subset seed) appear only
    when they differ from their defaults, so the first sweep's runs keep their names."""
    s = {**DEFAULTS, **s}
    extra = "".join(f"/{k}{v}" for k, v in (("bz", s["bz"]), ("s", s["s"])) if v != DEFAULTS[k])
    if tuple(s["ph"]) != PAPER_PHASES:
        extra += f"/ph{s['ph'][0]}-{s['ph'][1]}"
    if subset_seed is not None:
        extra += f"/ss{subset_seed}"
    return f"{dataset}/{angle:g}/{method}/r{s['r']}/p{_text(s['p'])}/mu{s['mu']}/b{s['b']}{extra}"


def setting_name(s):
    """A setting without its seed: runs with the same name differ only in the training seed."""
    return (f"r={s['r']} p={_text(s['p'])} mu={s['mu']} b={s['b']} bz={s['bz']} "
            f"ph={_phase_text(s)}")


def split(full, args):
    """(fine-tuning set, validation set), both rotated by args.angle (see the module's docstring)."""
    if args.subset_seed is None:
        return validation_split(rotated_subset(full.subset(range(args.train_samples)), args.angle), args.val)
    taken = full.sample_indices(args.train_samples, args.subset_seed)
    rest = full.subset(np.setdiff1d(np.arange(len(full)), taken), name=f"{full.name}-rest")
    return (rotated_subset(full, args.angle, args.train_samples, args.subset_seed),
            rotated_subset(rest, args.angle, args.val, args.subset_seed))


def phase_of(epoch, phases):
    """0, 1 or 2: the phase of the schedule `epoch` (0-based) falls in."""
    return sum(epoch >= e for e in phases)


def finetune(pretrained, train, val, method, s, epochs):
    model = elasticzo.from_torch(pretrained, elasticzo.models.lenet5(precision="int8"))
    trainer = elasticzo.ElasticZO(model, method=method, seed=s["s"], zo_range=s["r"], zo_p_zero=s["p"],
                                  gradient_bits=s["mu"], zo_update_bits=s["bz"])
    names = model.parameter_names()
    curve = []
    for epoch in range(epochs):
        before = {n: model.state_dict()[n].copy() for n in names}
        trainer.start_epoch(epoch)
        if tuple(s["ph"]) != PAPER_PHASES:  # the same schedules, stepping at other epochs
            paper_epoch = (0, *PAPER_PHASES)[phase_of(epoch, s["ph"])]
            trainer.core.gradient_bits = trainer.gradient_bits(paper_epoch)
            trainer.core.zo_p_zero = trainer.zo_sparsity(paper_epoch)
        g, losses = [], []
        for x, y in trainer.training_batches(train, s["b"], epoch):
            out = trainer.core.step(x, y)
            g.append(out.get("projected_grad", 0.0))
            losses.append(out["loss"])
        trainer.epoch += 1
        after = model.state_dict()
        g = np.sign(np.array(g))
        curve.append(dict(
            epoch=epoch + 1, mu=trainer.core.gradient_bits, p_zero=trainer.core.zo_p_zero,
            train_loss=float(np.mean(losses)),
            val_accuracy=elasticzo.evaluate(model, val, batch_size=s["b"])["accuracy"],
            g_zero=float((g == 0).mean()), g_plus=float((g > 0).mean()),
            changed={n.split(".")[0]: float((after[n] != before[n]).mean()) for n in names},
            mean_abs={n.split(".")[0]: float(np.abs(after[n].astype(np.int32)).mean()) for n in names}))
    return curve


def _last5(record):
    return float(np.mean([e["val_accuracy"] * 100 for e in record["curve"][-5:]]))


def _phase_text(s):
    return "/".join(str(e) for e in s["ph"])


def _data_text(args):
    if args.subset_seed is None:
        return (f"{args.train_samples - args.val} of the first {args.train_samples} rotated training images, "
                f"validated on the other {args.val} (`_common.validation_split`)")
    return (f"the {args.train_samples} rotated training images paper_table2.py's fine-tuning run draws (subset seed "
            f"{args.subset_seed}), validated on {args.val} other rotated training images drawn from the rest with the "
            "same seed")


def decision(records, incumbent):
    """The decision rule, fixed before the results of the session-8 sweep existed: for each method, every setting
    run on each (dataset, angle, seed) the incumbent was run on is scored by the mean over those runs of last5; the
    setting changes only if the best score is another setting's and beats the incumbent's."""
    want = setting_name({**DEFAULTS, **incumbent})
    lines = ["", f"Decision rule (fixed before the results existed): score = mean over cells and seeds of last5, over "
                 f"the cells and seeds the incumbent ({want}) was run on; change only if another setting's score "
                 "beats the incumbent's.", ""]
    for method in NAMES:
        runs = {}
        for r in records:
            if r["method"] == method:
                runs.setdefault(setting_name(r["setting"]), {})[(r["dataset"], r["angle"], r["setting"]["s"])] = \
                    _last5(r)
        if want not in runs:
            continue
        cells = sorted(runs[want])
        scored = sorted(((float(np.mean([v[c] for c in cells])), name, v) for name, v in runs.items()
                         if all(c in v for c in cells)), key=lambda t: -t[0])
        heads = sorted({c[:2] for c in cells})
        lines += [f"{NAMES[method]}, {len(cells)} runs per setting (cells {', '.join(f'{d} {a:g}' for d, a in heads)}; "
                  f"seeds {' '.join(str(s) for s in sorted({c[2] for c in cells}))}):", "",
                  "| setting | score | " + " | ".join(f"{d} {a:g}" for d, a in heads) + " |",
                  "|---|---|" + "---|" * len(heads)]
        for score, name, v in scored:
            per_cell = [np.mean([v[c] for c in cells if c[:2] == h]) for h in heads]
            mark = " (incumbent)" if name == want else ""
            lines.append(f"| {name}{mark} | {score:.2f} | " + " | ".join(f"{x:.2f}" for x in per_cell) + " |")
        best_score, best, _ = scored[0]
        incumbent_score = next(sc for sc, name, _ in scored if name == want)
        verdict = (f"**change to {best}** ({best_score:.2f} > {incumbent_score:.2f})"
                   if best != want and best_score > incumbent_score else
                   f"**keep {want}** ({incumbent_score:.2f}; best other "
                   f"{next((f'{n} {sc:.2f}' for sc, n, _ in scored if n != want), 'none')})")
        lines += ["", f"{NAMES[method]}: {verdict}.", ""]
    return lines


def summary_table(records, args):
    lines = [
        "# Table 2 (INT8) fine-tuning settings, validation sweep",
        "",
        f"Validation accuracy (%) of the INT8 LeNet-5 fine-tuned {args.epochs} epochs on {_data_text(args)}; the test "
        "split is never used. Settings: r (ZO range), p "
        "(p_zero, 'sched' = the paper's 0.33 / 0.5 / 0.9, A/B/C = other values per phase), mu (the BP part's first "
        "gradient bit-width), b (batch size), bz (b_zo, the ZO update's bit-width: the ZO step is about "
        "bz-1 doublings larger), ph (the epochs where both schedules step, mu down by one and p_zero to its next "
        "phase: the paper's 20/50, so a 50-epoch fine-tune never reaches the third phase), seed. 'last5' = mean "
        "validation accuracy of the last 5 epochs (the selection figure: a single epoch's figure moves by ~1 point); "
        "'changed per epoch' = share of each layer's weight mantissas that differ after an epoch from before it, "
        "averaged over the run (ZO and BP layers alike); 'g=0' = share of ZO steps with a zero ternary gradient.",
        "",
        "| dataset | angle | method | r | p | mu | b | bz | ph | seed | val % last | last5 | best (epoch) | g=0 | "
        "changed per epoch (conv1 conv2 fc1 fc2 fc3) | s/run | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        c = r["curve"]
        acc = [e["val_accuracy"] * 100 for e in c]
        best = int(np.argmax(acc))
        layers = " ".join(f"{np.mean([e['changed'][n] for e in c]):.2f}" for n in c[0]["changed"])
        s = r["setting"]
        lines.append(
            f"| {r['dataset']} | {r['angle']:g} | {NAMES[r['method']]} | {s['r']} | {_text(s['p'])} | {s['mu']} | "
            f"{s['b']} | {s['bz']} | {_phase_text(s)} | {s['s']} | {acc[-1]:.2f} | {_last5(r):.2f} | "
            f"{acc[best]:.2f} ({best + 1}) | {np.mean([e['g_zero'] for e in c]):.2f} | {layers} | "
            f"{r['seconds']:.0f} | {r['load']:.1f} |")
    groups = {}
    for r in records:
        groups.setdefault(r["key"].replace(f"/s{r['setting']['s']}", ""), []).append(r)
    lines += ["", "Settings run with more than one seed: mean of the seeds' last5 (each seed's in brackets).", "",
              "| dataset | angle | method | r | p | mu | b | bz | ph | seeds | mean last5 | per seed |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for group in groups.values():
        if len(group) < 2:
            continue
        r, s = group[0], group[0]["setting"]
        per_seed = sorted((g["setting"]["s"], _last5(g)) for g in group)
        lines.append(
            f"| {r['dataset']} | {r['angle']:g} | {NAMES[r['method']]} | {s['r']} | {_text(s['p'])} | {s['mu']} | "
            f"{s['b']} | {s['bz']} | {_phase_text(s)} | {len(group)} | {np.mean([v for _, v in per_seed]):.2f} | "
            f"{' '.join(f'{v:.2f}' for _, v in per_seed)} |")
    if args.incumbent:
        lines += decision(records, args.incumbent)
    lines += ["", f"Every run in `{args.out}/runs.jsonl`; last rewritten by `python benchmarks/sweep_table2_int8.py "
                  f"{' '.join(args.argv)}`."]
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrained", required=True, help="a finished INT8 Full BP run directory (its checkpoint)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], required=True)
    p.add_argument("--angle", type=float, required=True)
    p.add_argument("--methods", nargs="+", choices=list(NAMES), default=["zo-feat-cls2"])
    p.add_argument("--grid", default="", help="settings, e.g. 'r=8,16,32 p=sched,0.5,0.33/0.5/0.9 mu=5 b=64 bz=1,2 "
                                              "ph=20/50,10/25 s=0,1' (each axis defaults to the library's value: "
                                              "r=16 p=sched mu=5 b=64 bz=1 ph=20/50 s=0)")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--train-samples", type=int, default=4096, help="the fine-tuning training subset (as the table)")
    p.add_argument("--val", type=int, default=1024, help="images of it held out for validation")
    p.add_argument("--subset-seed", type=subset_seed, default=None,
                   help="draw as paper_table2.py does with this subset seed (see above); without it, the first "
                        "--train-samples images split into fine-tuning and validation images (the older sweep)")
    p.add_argument("--incumbent", default=None,
                   help="the setting in use, in --grid's form with one value per axis (e.g. 'r=64 bz=2'): the table "
                        "ends with the decision rule's verdict against it")
    p.add_argument("--out", default="runs/sweep_table2_int8", help="where runs.jsonl is kept")
    p.add_argument("--table", default=str(RESULTS_DIR / "sweep_table2_int8.md"))
    add_runtime_args(p)
    args = p.parse_args()
    args.argv = [a if " " not in a else f"'{a}'" for a in os.sys.argv[1:]]
    if args.incumbent is not None:
        incumbent = parse_grid(args.incumbent)
        if len(incumbent) != 1:
            p.error(f"--incumbent: one value per axis, got {args.incumbent!r}")
        args.incumbent = incumbent[0]
    elasticzo.set_num_threads(args.threads)
    full = load_split(p, args.dataset, args.data_dir, "train")
    try:
        train, val = split(full, args)
    except ValueError as exc:  # more images asked for than the training split holds
        p.error(str(exc))
    pretrained = Path(args.pretrained) / "checkpoint.safetensors"
    log = Path(args.out) / "runs.jsonl"
    done = {r["key"] for r in read_jsonl(log)} if log.exists() else set()
    for method in args.methods:
        for s in parse_grid(args.grid):
            key = key_of(args.dataset, args.angle, method, s, args.subset_seed)
            if key in done:
                continue
            load, t0 = os.getloadavg()[0], time.perf_counter()
            curve = finetune(pretrained, train, val, method, s, args.epochs)
            rec = dict(key=key, dataset=args.dataset, angle=args.angle, method=method, setting=s,
                       subset_seed=args.subset_seed, curve=curve,
                       seconds=time.perf_counter() - t0, load=max(load, os.getloadavg()[0]))
            append_jsonl(log, rec)
            print(key, f"val {curve[-1]['val_accuracy'] * 100:.2f}", flush=True)
    order = list(NAMES)
    records = [dict(r, setting={**DEFAULTS, **r["setting"]}) for r in read_jsonl(log)]  # first sweep: no bz/ph/s
    records.sort(key=lambda r: (r["dataset"], r["angle"], order.index(r["method"]), r["setting"]["r"],
                                _text(r["setting"]["p"]), r["setting"]["mu"], r["setting"]["b"], r["setting"]["bz"],
                                tuple(r["setting"]["ph"]), r["setting"]["s"]))
    write_atomic(Path(args.table), summary_table(records, args))


if __name__ == "__main__":
    main()
