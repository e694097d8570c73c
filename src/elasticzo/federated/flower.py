"""Federated ElasticZO as Flower apps (Message API): a ServerApp that runs the rounds of server.FederatedServer and a
ClientApp that answers them with client.py, for the Simulation Engine (run_simulation, `flwr run` on a local
simulation) and the deployment engine (flower-superlink + one flower-supernode per board, `flwr run`).

What each message carries (records of a RecordDict):
  server -> client, "train" and "evaluate": ConfigRecord "config" (catch_up mode, the server's step and replica
    digest; for train also round, local_steps, batch_size, lr_zo, lr_bp; for a replay "catchup_from" and
    "coefficients", one per missed step: float32, or INT8's ternary gradient as int8); ArrayRecord "arrays", only
    when weights travel: "zo/<param>" (the ZO weights, when pulling them is cheaper than replaying) and, if the
    client is behind, "head/<param>" (the averaged backprop head). In Full ZO no weights travel at all: 4 bytes per
    step each way (1 in INT8) plus the config.
  client -> server, "train": "config" (num_examples, train_loss, partition_id, digest, step, "grads": the projected
    gradient of each local step, float32 or INT8's int8) and "arrays": "head/<param>" (its locally trained head);
    "evaluate": "config" (num_examples, loss, accuracy, partition_id, digest, step).
The client keeps its replica (the global weights at its last step) in the node's Context.state between messages.
"""

import json
import os
import time
from pathlib import Path

from logging import INFO

import numpy as np

try:
    from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MessageType, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.common.logger import log
    from flwr.serverapp import Grid, ServerApp
except ImportError as missing:  # Flower is an optional extra, never a dependency of elasticzo itself
    raise ImportError("federated training needs Flower: pip install \"elasticzo[federated]\" "
                      f"(flwr with its Simulation Engine); importing it failed: {missing}") from missing

from elasticzo.federated import client as fed_client
from elasticzo.federated.data import client_shard, split_of
from elasticzo.federated.replica import Replica
from elasticzo.federated.server import FederatedServer
from elasticzo.federated.spec import FederationSpec

NODE_WAIT_SECONDS = float(os.environ.get("ELASTICZO_FEDERATED_NODE_WAIT", "120"))


# Per-step vectors travel as raw little-endian bytes inside the config record: an ArrayRecord costs about 500 bytes
# of object headers per message (measured with message_bytes), 50 bytes per step at 10 local steps. The first byte
# is numpy's type code: 'f' float32 (FP32 coefficients and projected gradients), 'b' int8 (INT8's ternary ones).
VECTORS = ("coefficients", "grads")
VECTOR_DTYPES = {"f": np.dtype("<f4"), "b": np.dtype("i1")}


def _vector_bytes(value) -> bytes:
    value = np.asarray(value)
    code = value.dtype.char if value.dtype.char in VECTOR_DTYPES else "f"
    return code.encode() + np.ascontiguousarray(value, dtype=VECTOR_DTYPES[code]).tobytes()


def _vector(raw: bytes, key: str) -> np.ndarray:
    code = chr(raw[0]) if raw else ""
    if code not in VECTOR_DTYPES:
        raise ValueError(f"message vector {key!r} has an unknown type code {code!r}")
    return np.frombuffer(raw[1:], dtype=VECTOR_DTYPES[code]).astype(VECTOR_DTYPES[code].newbyteorder("="))


def to_records(config: dict, arrays: dict) -> RecordDict:
    config = dict(config)
    weights = {}
    for key, value in arrays.items():
        if key in VECTORS:
            config[key] = _vector_bytes(value)
        else:
            weights[key] = Array(np.ascontiguousarray(value))
    records = {"config": ConfigRecord(config)}
    if weights:
        records["arrays"] = ArrayRecord(weights)
    return RecordDict(records)


def from_records(content: RecordDict) -> tuple:
    config = dict(content["config"])
    arrays = {k: v.numpy() for k, v in content["arrays"].items()} if "arrays" in content else {}
    for key in VECTORS:
        if key in config:
            arrays[key] = _vector(config.pop(key), key)
    return config, arrays


def message_bytes(content: RecordDict) -> int:
    """Bytes of a message's records as Flower serializes them (every record and array object, headers included)."""
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects

    return sum(len(obj.deflate()) for obj in get_all_nested_objects(content).values())


# ---- client -----------------------------------------------------------------------------------------------------

def _client_replica(context: Context, spec: FederationSpec) -> Replica:
    # The model's outputs come from the whole split: a non-IID shard may lack classes.
    whole = split_of(spec.dataset, spec.data_dir, "train", spec.train_samples)
    replica = Replica(spec, whole.num_classes, whole.sample_shape)
    if "replica" in context.state:
        replica.load({k: v.numpy() for k, v in context.state["replica"].items()})
        replica.step = int(context.state["replica-step"]["step"])
    return replica


def _save_replica(context: Context, replica: Replica) -> None:
    state = replica.arrays(replica.model.parameter_names())
    context.state["replica"] = ArrayRecord({k: Array(v) for k, v in state.items()})
    context.state["replica-step"] = ConfigRecord({"step": replica.step})


def _answer(msg: Message, context: Context, spec, kind: str) -> Message:
    spec = spec or FederationSpec.from_run_config(context.run_config)
    node_config = context.node_config
    pid = int(node_config.get("partition-id", -1))
    parts = int(node_config.get("num-partitions", spec.num_clients))
    if parts != spec.num_clients:
        raise ValueError(f"this node is partition {pid} of {parts}, the run has num-clients = {spec.num_clients}")
    train = client_shard(spec, pid, "train")
    replica = _client_replica(context, spec)
    config, arrays = from_records(msg.content)
    fed_client.catch_up(replica, config, arrays)
    if kind == "train":
        reply = fed_client.train(replica, train, config, pid)
    else:
        reply = fed_client.evaluate(replica, client_shard(spec, pid, "test"), pid)
    _save_replica(context, replica)
    return Message(to_records(*reply), reply_to=msg)


def make_client_app(spec: FederationSpec = None) -> ClientApp:
    """The ClientApp; without `spec` it reads the FederationSpec from the run config (flwr run)."""
    app = ClientApp()

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return _answer(msg, context, spec, "train")

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        return _answer(msg, context, spec, "evaluate")

    return app


# ---- server -----------------------------------------------------------------------------------------------------

def _wait_for_nodes(grid: Grid, count: int) -> list:
    deadline = time.monotonic() + NODE_WAIT_SECONDS
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= count:
            return nodes
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(nodes)} of {count} SuperNodes connected after {NODE_WAIT_SECONDS:.0f} s")
        time.sleep(0.2)


def _exchange(grid, server, nodes, kind, build):
    """Sends one message per node and returns ({node: (config, arrays)}, {node: error}, {node: (down, up bytes)})."""
    messages, sent = [], {}
    for node in nodes:
        config, arrays = build(node)
        sent[node] = config["catch_up"]
        messages.append(Message(to_records(config, arrays), dst_node_id=node, message_type=kind))
    traffic = {m.metadata.dst_node_id: [message_bytes(m.content), 0] for m in messages}
    replies, errors = {}, {}
    for reply in grid.send_and_receive(messages, timeout=server.spec.reply_timeout):
        node = reply.metadata.src_node_id
        if reply.has_error():
            errors[node] = reply.error.reason
            continue
        replies[node] = from_records(reply.content)
        traffic[node][1] = message_bytes(reply.content)
    for node in set(nodes) - set(replies) - set(errors):
        errors[node] = "no reply"
    return replies, errors, sent, traffic


def run_server(grid: Grid, spec: FederationSpec, choose_nodes=None) -> dict:
    """The rounds, then a final evaluate message to every node (each catches up and reports its digest and test
    accuracy). choose_nodes(round_index, nodes) overrides the seeded sampling (tests)."""
    from elasticzo.trainer import evaluate

    train = split_of(spec.dataset, spec.data_dir, "train", spec.train_samples)
    test = split_of(spec.dataset, spec.data_dir, "test", spec.test_samples)
    server = FederatedServer(spec, train.num_classes, train.sample_shape)
    nodes = _wait_for_nodes(grid, spec.num_clients)
    # Flower's logger: `flwr run --stream` shows these lines
    log(INFO, "federated ElasticZO: %s, %d nodes, %d rounds of %d steps", spec.method, len(nodes), spec.num_rounds,
        spec.local_steps)
    errors = []
    for r in range(spec.num_rounds):
        chosen = list(choose_nodes(r, nodes)) if choose_nodes else server.sample(nodes, r)
        replies, failed, sent, traffic = _exchange(grid, server, chosen, MessageType.TRAIN,
                                                   lambda n: server.train_message(n, r))
        record = server.aggregate(r, replies, sent)
        record.update(errors=failed, bytes={n: {"down": d, "up": u} for n, (d, u) in traffic.items()})
        errors += [f"round {r + 1}, node {n}: {e}" for n, e in failed.items()]
        if (spec.evaluate_every and (r + 1) % spec.evaluate_every == 0) or r + 1 == spec.num_rounds:
            record["test"] = evaluate(server.replica.model, test)
        log(INFO, "round %d: %d/%d replies, train loss %s, test %s", r + 1, len(replies), len(chosen),
            record.get("train_loss"), record.get("test"))
    replies, failed, sent, traffic = _exchange(grid, server, nodes, MessageType.EVALUATE, server.sync_message)
    errors += [f"final evaluate, node {n}: {e}" for n, e in failed.items()]
    for node, (config, _) in replies.items():
        server.confirm(node, config["step"])
    digest = server.replica.digest()
    log(INFO, "after %d steps: %d replicas report the server's digest %s, %d errors", server.step,
        sum(c["digest"] == digest for c, _ in replies.values()), digest, len(errors))
    summary = {
        "spec": spec.to_run_config(), "steps": server.step, "server_digest": digest,
        "final": {n: {k: c[k] for k in ("partition_id", "digest", "accuracy", "loss", "num_examples")}
                  for n, (c, _) in replies.items()},
        "final_catch_up": sent, "final_bytes": {n: {"down": d, "up": u} for n, (d, u) in traffic.items()},
        "replicas_identical": bool(replies) and all(c["digest"] == digest for c, _ in replies.values()),
        "test": server.rounds[-1].get("test") if server.rounds else None,
        "rounds": server.rounds, "errors": errors,
    }
    if spec.out:
        _write(Path(spec.out), summary, server)
    if errors or not summary["replicas_identical"]:
        raise RuntimeError("federated run finished with errors: " + "; ".join(errors or ["replicas differ"]))
    return summary


def _write(out: Path, summary: dict, server: FederatedServer) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=str))
    os.replace(tmp, out / "summary.json")
    server.replica.trainer.save(out / "checkpoint.safetensors", dataset=server.spec.dataset, federated=True)


def make_server_app(spec: FederationSpec = None, choose_nodes=None, on_summary=None) -> ServerApp:
    """The ServerApp; without `spec` it reads the FederationSpec from the run config (flwr run)."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        summary = run_server(grid, spec or FederationSpec.from_run_config(context.run_config), choose_nodes)
        if on_summary is not None:
            on_summary(summary)

    return app


# The apps `flwr run` loads (pyproject.toml of the app: elasticzo.federated.flower:server_app / :client_app).
server_app = make_server_app()
client_app = make_client_app()
