"""The same federation in one process, without Flower: the server and the clients exchange exactly the (config,
arrays) payloads the Flower apps put in their messages. For benchmarks (many clients, no message transport) and for
tests of the mechanism on machines without Flower."""

from elasticzo.federated import client as fed_client
from elasticzo.federated.data import client_shard, split_of
from elasticzo.federated.replica import Replica
from elasticzo.federated.server import FederatedServer


def run_local(spec, choose_nodes=None, on_message=None, test=None) -> dict:
    """Runs spec.num_rounds rounds with spec.num_clients in-process clients (nodes 0..N-1, node i = partition i),
    then brings every client up to date. on_message(kind, node, direction, config, arrays) sees every payload (byte
    counting); `test`: a Dataset evaluated with the server's replica after the rounds spec.evaluate_every asks for.
    Returns {"server", "clients", "rounds"}."""
    from elasticzo.trainer import evaluate

    whole = split_of(spec.dataset, spec.data_dir, "train", spec.train_samples)
    server = FederatedServer(spec, whole.num_classes, whole.sample_shape)
    nodes = list(range(spec.num_clients))
    clients = {n: Replica(spec, whole.num_classes, whole.sample_shape) for n in nodes}
    shards = {n: client_shard(spec, n) for n in nodes}
    note = on_message or (lambda *args: None)
    for r in range(spec.num_rounds):
        chosen = list(choose_nodes(r, nodes)) if choose_nodes else server.sample(nodes, r)
        replies, sent = {}, {}
        for node in chosen:
            config, arrays = server.train_message(node, r)
            sent[node] = config["catch_up"]
            note("train", node, "down", config, arrays)
            fed_client.catch_up(clients[node], config, arrays)
            replies[node] = fed_client.train(clients[node], shards[node], config, node)
            note("train", node, "up", *replies[node])
        record = server.aggregate(r, replies, sent)
        if test is not None and ((spec.evaluate_every and (r + 1) % spec.evaluate_every == 0)
                                 or r + 1 == spec.num_rounds):
            record["test"] = evaluate(server.replica.model, test)
    for node in nodes:
        config, arrays = server.sync_message(node)
        note("evaluate", node, "down", config, arrays)
        fed_client.catch_up(clients[node], config, arrays)
        server.confirm(node, clients[node].step)
    return {"server": server, "clients": clients, "rounds": server.rounds}
