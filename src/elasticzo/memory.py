"""Memory of one training step, three ways: the paper's analytic model (SPEC §4, Eqs. 2-5 and 13-15), the plan the
engine allocates from, and the bytes the tracker measures while a real step runs; and the partition point C that
fits a memory budget.

Categories: parameters, activations, gradients, errors, optimizer, accumulators (int32 outputs of INT8 layers),
workspace (kernels' temporary space; the paper's model has none, so it is listed on its own).
"""

import math
import re
from pathlib import Path

import numpy as np

from elasticzo import _core, models
from elasticzo.checkpoint import atomic_write
from elasticzo.methods import METHODS, method_name, zo_layers_for

CATEGORIES = ("parameters", "activations", "gradients", "errors", "optimizer", "accumulators", "workspace")
PRECISIONS = ("fp32", "int8")
MEMORY_PLANS = ("static", "lifetime")
# lifetime: same results bit for bit and the same speed, 2.2x less memory for Full ZO LeNet-5 at batch 32
# (benchmarks/results/memory_plan.md), so it is the default; static is the paper's model.
DEFAULT_MEMORY_PLAN = "lifetime"
INPUT_SHAPES = {"lenet5": (1, 28, 28), "pointnet": (1024, 3)}
NUM_CLASSES = {"lenet5": 10, "pointnet": 40}
_BYTES_PER_VALUE = {"fp32": 4, "int8": 1}


def _check_choice(value, choices, what):
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def _bytes_dict(values: dict) -> dict:
    out = {c: int(values.get(c, 0)) for c in CATEGORIES}
    out["total"] = sum(out.values())
    return out


def _modules(model, input_shape):
    """(name, layer, input numel, output numel, counted output, parameter layer index or None) per module."""
    rows, shape, p = [], list(input_shape), -1
    for i in range(len(model)):
        name, layer = model[i]
        out = layer.output_shape(shape)
        has_params = layer.num_params > 0
        p += has_params
        # A view or in-place module shares its input's buffer (SPEC §4: flatten is a view; PointNet's in-place
        # ReLUs), except on the caller's model input.
        counted = not (layer.aliases_input and i > 0)
        rows.append((name, layer, math.prod(shape), math.prod(out), counted, p if has_params else None))
        shape = out
    return rows


def analytic_model(model, input_shape, zo_layers: int, precision: str = "fp32", optimizer: str = "sgd") -> dict:
    """Bytes per category of the paper's memory model (SPEC §4) for a step with input shape `input_shape` (batch
    first) and parameter layers [0, zo_layers) trained by ZO. Every buffer lives for the whole step."""
    _check_choice(precision, PRECISIONS, "precision")
    _check_choice(optimizer, ("sgd", "adam"), "optimizer")
    if not 0 <= zo_layers <= model.num_param_layers:
        raise ValueError(f"zo_layers must be in [0, {model.num_param_layers}], got {zo_layers}")
    rows = _modules(model, input_shape)
    bp_first = next((i for i, r in enumerate(rows) if r[5] is not None and r[5] >= zo_layers), len(rows))
    value = _BYTES_PER_VALUE[precision]
    params = sum(r[1].num_params for r in rows)
    bp_params = sum(r[1].num_params for r in rows[bp_first:])
    acts = sum(r[3] for r in rows if r[4])
    bp_errors = sum(r[3] for r in rows[bp_first:] if r[4])
    m = {"parameters": value * params, "activations": value * acts, "gradients": 0, "errors": 0, "optimizer": 0}
    if precision == "fp32":
        m["gradients"] = 4 * bp_params
        m["errors"] = 4 * bp_errors
        m["optimizer"] = 2 * 4 * bp_params if optimizer == "adam" else 0
    else:
        if optimizer != "sgd":
            raise ValueError("the INT8 method (SPEC §5) updates by integer SGD only; optimizer must be 'sgd'")
        # Eqs. 13-15: an int32 accumulator per conv/FC output; BP layers keep int8 + int32 weight gradients, int8
        # errors, and an int32 error for the input of every BP conv/FC layer but the first of them.
        m["accumulators"] = 4 * sum(r[3] for r in rows if r[5] is not None)
        m["gradients"] = 5 * bp_params
        bp_param_rows = [r for r in rows[bp_first:] if r[5] is not None]
        m["errors"] = bp_errors + 4 * sum(r[2] for r in bp_param_rows[1:])
    return _bytes_dict(m)


def _resolve(model, num_classes, seed, precision="fp32"):
    if isinstance(model, str):
        if model not in models.MODELS:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(sorted(models.MODELS))}")
        classes = NUM_CLASSES[model] if num_classes is None else num_classes
        return models.build(model, classes, seed=seed, precision=precision), INPUT_SHAPES[model], classes
    return model, None, num_classes


def _partition(model, method, zo_layers):
    if (method is None) == (zo_layers is None):
        raise ValueError("give exactly one of method (a name) or zo_layers (C)")
    c = zo_layers_for(method, model.num_param_layers) if method is not None else int(zo_layers)
    if not 0 <= c <= model.num_param_layers:
        raise ValueError(f"zo_layers must be in [0, {model.num_param_layers}], got {c}")
    return c


def planned_bytes(model, input_shape, zo_layers: int, memory_plan: str, optimizer: str = "sgd") -> dict:
    """Bytes per category the engine allocates for such a step under `memory_plan`: the model's plan (activations,
    errors, gradients, workspace), its parameters, and Adam's moments when the optimizer is Adam."""
    _check_choice(memory_plan, MEMORY_PLANS, "memory plan")
    plan = model.plan(list(input_shape), zo_layers, memory_plan)["bytes"]
    rows = _modules(model, input_shape)
    plan["parameters"] = _BYTES_PER_VALUE[model.precision] * sum(r[1].num_params for r in rows)
    if optimizer == "adam":
        plan["optimizer"] = 2 * 4 * sum(r[1].num_params for r in rows if r[5] is not None and r[5] >= zo_layers)
    return _bytes_dict(plan)


def measure_step(model, input_shape, zo_layers: int, memory_plan: str, num_classes: int, optimizer: str = "sgd",
                 seed: int = 0) -> dict:
    """Peak bytes per category of `model`'s memory while one real ElasticZO step (random inputs and labels) runs
    with that partition and plan, as the memory tracker counts them (an int8 model's ZO part by ElasticZO-INT8).
    The model's parameters are put back after."""
    _check_choice(memory_plan, MEMORY_PLANS, "memory plan")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(tuple(input_shape), dtype=np.float32)
    y = rng.integers(0, num_classes, size=input_shape[0]).astype(np.int32)
    saved = model.state_dict()
    model.release_buffers()  # buffers of an earlier plan would count in this step's peak
    try:
        trainer = _core.ElasticZO(model, zo_layers, **{**_core.default_config(), "optimizer": optimizer,
                                                       "seed": seed}, memory_plan=memory_plan)
        model.reset_peak_memory()
        trainer.step(x, y)
        del trainer
        peak = model.memory_stats()["peak"]
    finally:
        model.load_state_dict(saved)
        model.release_buffers()
    return {c: peak[c] for c in CATEGORIES} | {"total": peak["total"]}


def memory_report(model="lenet5", batch_size: int = 32, method=None, *, zo_layers=None, precision: str = "fp32",
                  memory_plan: str = DEFAULT_MEMORY_PLAN, optimizer: str = "sgd", num_classes=None,
                  input_shape=None, seed: int = 0) -> dict:
    """The memory of one training step: {'model', 'planned', 'measured'}, each category -> bytes plus 'total',
    and the configuration. `model` is 'lenet5', 'pointnet' or a Sequential (then give input_shape of one sample
    and num_classes). Without method or zo_layers, ZO-Feat-Cls1."""
    _check_choice(precision, PRECISIONS, "precision")
    _check_choice(memory_plan, MEMORY_PLANS, "memory plan")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    net, sample_shape, classes = _resolve(model, num_classes, seed, precision)
    sample_shape = tuple(input_shape) if input_shape is not None else sample_shape
    if sample_shape is None or classes is None:
        raise ValueError("for a custom model give input_shape (one sample's shape) and num_classes")
    if method is None and zo_layers is None:
        method = "zo-feat-cls1"
    if net.precision != precision:
        raise ValueError(f"precision {precision!r} but the model computes in {net.precision!r}")
    c = _partition(net, method, zo_layers)
    shape = (batch_size, *sample_shape)
    report = {
        "config": {"model": model if isinstance(model, str) else "custom", "batch_size": batch_size,
                   "method": method_name(c, net.num_param_layers), "zo_layers": c, "precision": precision,
                   "memory_plan": memory_plan, "optimizer": optimizer, "threads": _core.num_threads(),
                   "isa": _core.active_isa()},
        "model": analytic_model(net, shape, c, precision, optimizer),
    }
    report["planned"] = planned_bytes(net, shape, c, memory_plan, optimizer)
    report["measured"] = measure_step(net, shape, c, memory_plan, classes, optimizer, seed)
    report["config"]["measured_by"] = "training step"
    return report


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "k": 2**10, "m": 2**20, "g": 2**30}


def parse_bytes(text) -> int:
    """'3MiB', '2.5 MB', '512KiB', '3000000' -> bytes (KiB/MiB/GiB and K/M/G are powers of 2, kB/MB/GB of 10)."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
        if not match or match.group(2).lower() not in _UNITS:
            raise ValueError(f"memory budget {text!r} is not a size like 3MiB, 2.5MB, 512KiB or 3000000")
        value, unit = float(match.group(1)), match.group(2).lower()
    size = value * _UNITS[unit]
    if not math.isfinite(size) or size <= 0:
        raise ValueError(f"memory budget must be a positive size, got {text!r}")
    return int(size)


def format_bytes(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def choose_partition(model, input_shape, budget, *, num_classes: int, memory_plan: str = DEFAULT_MEMORY_PLAN,
                     optimizer: str = "sgd") -> dict:
    """The partition point C with the most backprop layers whose step, measured, fits `budget` (bytes or a size
    string) for inputs of `input_shape` (batch first). Returns {'zo_layers', 'method', 'bytes', 'budget',
    'reason', 'tried'}; raises ValueError, saying what Full ZO needs, when nothing fits."""
    limit = parse_bytes(budget)
    layers = model.num_param_layers
    names = model.param_layer_names()
    tried = {}
    for c in range(layers + 1):  # C = 0 (Full BP) has the most backprop layers
        tried[c] = measure_step(model, input_shape, c, memory_plan, num_classes, optimizer)["total"]
        if tried[c] <= limit:
            method = method_name(c, layers)
            bp = ", ".join(names[c:]) or "none"
            reason = (f"memory budget {format_bytes(limit)}: {method} (C={c}, backprop for {bp}) needs "
                      f"{format_bytes(tried[c])} for a step of batch {input_shape[0]} ({memory_plan} plan)")
            if c > 0:
                reason += (f"; C={c - 1} ({method_name(c - 1, layers)}) would need {format_bytes(tried[c - 1])}")
            return {"zo_layers": c, "method": method, "bytes": tried[c], "budget": limit, "reason": reason,
                    "tried": tried}
    hint = "" if memory_plan == "lifetime" else ", or the lifetime memory plan"
    raise ValueError(f"memory budget {format_bytes(limit)} is too small: even Full ZO needs "
                     f"{format_bytes(tried[layers])} for a step of batch {input_shape[0]} ({memory_plan} plan); "
                     f"try a smaller batch size{hint}")


def plot_methods(reports: dict, path) -> None:
    """Stacked bars per method (the paper's Figs. 4-6): the analytic model beside the measured bytes."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib (pip install 'elasticzo[plot]')") from exc
    methods = list(reports)
    fig, ax = plt.subplots(figsize=(1.8 * len(methods) + 2, 4.5))
    colors = plt.get_cmap("tab10").colors
    for k, source in enumerate(("model", "measured")):
        bottom = np.zeros(len(methods))
        xs = np.arange(len(methods)) + (k - 0.5) * 0.38
        for j, cat in enumerate(CATEGORIES):  # an unmeasured step (None) has no bar
            heights = np.array([(reports[m][source] or {}).get(cat, 0) for m in methods]) / 2**20
            ax.bar(xs, heights, 0.36, bottom=bottom, color=colors[j], hatch="//" if source == "model" else None,
                   edgecolor="white", label=cat if k == 1 and heights.any() else None)
            bottom += heights
    first = next(iter(reports.values()))["config"]
    ax.set_xticks(np.arange(len(methods)), [f"{m}\nmodel | measured" for m in methods], fontsize=8)
    ax.set_ylabel("MiB")
    ax.set_title(f"{first['model']}, batch {first['batch_size']}, {first['precision']}, "
                 f"{first['memory_plan']} plan")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    plt.close(fig)


__all__ = ["CATEGORIES", "DEFAULT_MEMORY_PLAN", "METHODS", "analytic_model", "choose_partition", "memory_report",
           "measure_step", "parse_bytes", "planned_bytes", "plot_methods"]
