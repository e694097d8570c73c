"""`elasticzo memory`: the analytic model, the plan and the measured bytes of one training step."""

import json
import sys

from elasticzo import _core
from elasticzo.memory import CATEGORIES, memory_report, plot_methods
from elasticzo.methods import METHODS


def add_memory_args(p):
    p.add_argument("--model", default="lenet5", choices=["lenet5", "pointnet"], help="network (default: lenet5)")
    p.add_argument("--batch-size", type=int, default=32, help="minibatch size of the step (default: 32)")
    p.add_argument("--method", default=None, choices=METHODS, help="which layers ZO trains (default: zo-feat-cls1)")
    p.add_argument("--zo-layers", type=int, default=None,
                   help="partition point C, instead of --method (default: given by --method)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8"],
                   help="number format: fp32, or int8 (NITI; SPEC §4's Eqs. 13-15; a step with both a ZO and a "
                        "backprop part is not measured yet) (default: fp32)")
    p.add_argument("--memory-plan", default=None, choices=["static", "lifetime"],
                   help="static: every buffer for the whole step (the paper's model); lifetime: buffers whose "
                        "lifetimes do not overlap share memory (default: lifetime)")
    p.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"],
                   help="optimizer of the backprop part (default: sgd)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads; the workspace depends on them (default: all cores)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: model, planned, measured, config (default: a table)")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="also draw stacked bars of the four methods, model and measured, like the paper's "
                        "Figs. 4-6 (default: none)")


def _table(report) -> str:
    cfg = report["config"]
    lines = [f"{cfg['model']}, batch {cfg['batch_size']}, {cfg['method']} (C={cfg['zo_layers']}), "
             f"{cfg['precision']}, {cfg['memory_plan']} plan, {cfg['threads']} threads, {cfg['isa']}",
             f"{'bytes':<14}{'model (SPEC §4)':>18}{'planned':>14}{'measured':>14}"]
    for key in (*CATEGORIES, "total"):
        lines.append(f"{key:<14}" + "".join(f"{report[src][key]:>{w},}" for src, w in
                                            (("model", 18), ("planned", 14), ("measured", 14))))
    mib = {src: report[src]["total"] / 2**20 for src in ("model", "planned", "measured")}
    lines.append(f"{'total MiB':<14}{mib['model']:>18.2f}{mib['planned']:>14.2f}{mib['measured']:>14.2f}")
    lines.append("The model counts no workspace (kernels' temporary space): it is listed on its own.")
    return "\n".join(lines)


def memory_command(args) -> int:
    if args.threads is not None:
        _core.set_num_threads(args.threads)
    if args.method is not None and args.zo_layers is not None:
        raise ValueError("give --method or --zo-layers, not both")
    kw = dict(precision=args.precision, optimizer=args.optimizer)
    if args.memory_plan is not None:
        kw["memory_plan"] = args.memory_plan
    report = memory_report(args.model, args.batch_size, args.method, zo_layers=args.zo_layers, **kw)
    if args.plot:
        plot_methods({m: memory_report(args.model, args.batch_size, m, **kw) for m in METHODS}, args.plot)
    if args.json:
        print(json.dumps({k: report[k] for k in ("model", "planned", "measured", "config")}))
    else:
        print(_table(report))
    if args.plot:
        print(f"elasticzo: wrote {args.plot}", file=sys.stderr)
    return 0
