"""`elasticzo federated`: run federated ElasticZO on Flower's Simulation Engine (`simulate`), or write the Flower
app that `flwr run` starts on a SuperLink and its SuperNodes (`app`). Both need the extra elasticzo[federated]."""

import dataclasses
import json
import sys
from pathlib import Path

from elasticzo.federated.spec import FederationSpec

HELP = {
    "method": "which layers ZO trains (full-zo, zo-feat-cls2, zo-feat-cls1, full-bp: plain FedAvg)",
    "precision": "fp32, or ElasticZO-INT8: int8 (the sign from the float loss) or int8-intonly (integer only); "
                 "INT8 ZO steps travel as one byte (the majority vote of the clients' ternary gradients)",
    "partition": "split of the training data across the clients: iid or dirichlet (label skew, see --alpha)",
    "catch_up": "a client that missed steps: auto (replay while cheaper than the ZO weights), replay or pull",
    "batch_size": "minibatch of a local step (0: the tuned default)",
    "lr_zo": "ZO learning rate (0: the tuned default)",
    "lr_bp": "backprop learning rate (0: the tuned default)",
    "eps": "perturbation scale (0: the tuned default)",
    "grad_clip": "clip of the projected gradient (-1: the tuned default; 0: none)",
    "server_lr": "the server's step on each round's averaged update, ZO and head (1: plain averaging; 0: the tuned "
                 "default)",
    "out": "folder for summary.json and checkpoint.safetensors (the server's model; `elasticzo eval` reads it)",
}


def add_spec_args(p) -> None:
    for f in dataclasses.fields(FederationSpec):
        if f.name == "tuned":
            continue
        p.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                       help=f"{HELP.get(f.name, f.name.replace('_', ' '))} (default: {f.default!r})")


def add_federated_args(p) -> None:
    sub = p.add_subparsers(dest="federated_command", required=True)
    sim = sub.add_parser("simulate", help="N virtual clients on this machine (Flower's Simulation Engine, Ray)")
    add_spec_args(sim)
    sim.add_argument("--json", action="store_true", help="print the whole summary as JSON (default: a table)")
    app = sub.add_parser("app", help="write a Flower app folder for `flwr run` on a SuperLink with SuperNodes")
    app.add_argument("dir", help="folder to write (pyproject.toml with the run config)")
    add_spec_args(app)


def _spec(args) -> FederationSpec:
    return FederationSpec(**{f.name: getattr(args, f.name) for f in dataclasses.fields(FederationSpec)
                             if f.name != "tuned"})


def simulate(spec: FederationSpec, choose_nodes=None) -> dict:
    """Runs the federation on Flower's Simulation Engine with spec.num_clients virtual SuperNodes (one CPU each, at
    most two at a time); returns the server's summary."""
    from elasticzo.federated.flower import make_client_app, make_server_app
    from flwr.simulation import run_simulation

    result = {}
    server = make_server_app(spec, choose_nodes, on_summary=result.update)
    run_simulation(server, make_client_app(spec), num_supernodes=spec.num_clients,
                   backend_config={"client_resources": {"num_cpus": 1}, "init_args": {"num_cpus": 2}})
    if not result:
        raise RuntimeError("the simulation ended without a summary from the server (see Flower's log above)")
    return result


def app_pyproject(spec: FederationSpec) -> str:
    """The pyproject.toml of a Flower app whose components are elasticzo's and whose run config is `spec`."""
    import tomli_w  # a dependency of flwr

    doc = {
        "build-system": {"requires": ["hatchling"], "build-backend": "hatchling.build"},
        "project": {"name": "elasticzo-federated", "version": "1.0.0",
                    "description": "Federated ElasticZO (seeds and scalars) on Flower",
                    "dependencies": ["flwr>=1.42", "elasticzo"]},
        "tool": {"flwr": {"app": {
            "publisher": "elasticzo",
            "components": {"serverapp": "elasticzo.federated.flower:server_app",
                           "clientapp": "elasticzo.federated.flower:client_app"},
            "config": spec.to_run_config()}}},
    }
    return tomli_w.dumps(doc)


def federated_command(args) -> int:
    try:
        return _command(args)
    except ImportError as missing:  # Flower or ray absent: the install command, not a traceback
        raise RuntimeError(str(missing)) from None


def _command(args) -> int:
    spec = _spec(args)
    if args.federated_command == "app":
        out = Path(args.dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "pyproject.toml").write_text(app_pyproject(spec))
        print(f"wrote {out / 'pyproject.toml'}; start it with `flwr run {out} <superlink connection> --stream`")
        return 0
    summary = simulate(spec)
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    for record in summary["rounds"]:
        test = record.get("test")
        print(f"round {record['round']:>3}: {len(record['nodes'])} clients, train loss {record.get('train_loss', 0):.4f}"
              + (f", test accuracy {test['accuracy']:.4f}" if test else ""))
    print(f"{summary['steps']} steps; all {len(summary['final'])} replicas identical to the server's: "
          f"{summary['replicas_identical']}", file=sys.stdout)
    return 0
