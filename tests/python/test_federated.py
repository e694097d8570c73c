"""Federated ElasticZO's mechanism without Flower (elasticzo.federated): partitions, the run spec, and replicas that
stay bit-identical when every client trains, skips rounds, replays the steps it missed or pulls the weights."""

import sys

import numpy as np
import pytest

from elasticzo.federated import FederationSpec, choose_catch_up, dirichlet, iid
from elasticzo.federated import client as fed_client
from elasticzo.federated.local import run_local
from elasticzo.federated.replica import Replica

# A small federation: 3 clients on 900 MNIST images, a few steps per round (seconds in total).
SMALL = dict(num_clients=3, num_rounds=4, local_steps=3, batch_size=16, train_samples=900, test_samples=200)


def _state(replica):
    return replica.model.state_dict()


def _assert_identical(a, b, what):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        assert np.array_equal(sa[name], sb[name]), f"{what}: {name} differs"
    assert a.step == b.step and a.digest() == b.digest(), what


def test_iid_shards_cover_every_sample_once_with_balanced_sizes():
    shards = iid(1003, 10, seed=3)
    joined = np.concatenate(shards)
    assert np.array_equal(np.sort(joined), np.arange(1003))
    assert {len(s) for s in shards} == {100, 101}
    assert all(np.array_equal(a, b) for a, b in zip(shards, iid(1003, 10, seed=3)))  # deterministic


def test_dirichlet_shards_are_disjoint_and_skewed_by_alpha():
    labels = np.repeat(np.arange(10), 200)
    skewed = dirichlet(labels, 10, alpha=0.1, seed=0)
    near_iid = dirichlet(labels, 10, alpha=100.0, seed=0)
    for shards in (skewed, near_iid):
        assert np.array_equal(np.sort(np.concatenate(shards)), np.arange(len(labels)))
        assert min(len(s) for s in shards) >= 1

    def classes_per_client(shards):  # classes holding 90% of a client's samples
        counts = [np.sort(np.bincount(labels[s], minlength=10))[::-1] for s in shards]
        return np.mean([np.searchsorted(np.cumsum(c) / c.sum(), 0.9) + 1 for c in counts])

    assert classes_per_client(skewed) < 4 < 8 < classes_per_client(near_iid)


@pytest.mark.parametrize("call, message", [
    (lambda: iid(5, 6), "cannot be split"),
    (lambda: iid(5, 0), "num_clients"),
    (lambda: dirichlet(np.zeros(10, int), 2, alpha=0.0), "alpha"),
    (lambda: dirichlet(np.zeros(10, int), 2, alpha=float("nan")), "alpha"),
])
def test_bad_partitions_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_spec_round_trips_through_a_flower_run_config_and_refuses_unknown_keys():
    spec = FederationSpec(method="full-zo", partition="dirichlet", alpha=0.3, num_rounds=7, lr_zo=1e-4)
    assert FederationSpec.from_run_config(spec.to_run_config()) == spec
    assert FederationSpec.from_run_config({"num-rounds": 2.0}).num_rounds == 2  # TOML may give floats
    with pytest.raises(ValueError, match="unknown run-config key 'num-round'"):
        FederationSpec.from_run_config({"num-round": 2})
    for bad in (dict(method="zo"), dict(partition="shards"), dict(catch_up="never"), dict(num_clients=0),
                dict(clients_per_round=4, num_clients=3), dict(local_steps=True)):
        with pytest.raises(ValueError):
            FederationSpec(**bad)
    tuned = FederationSpec(method="full-zo")
    assert tuned.value("lr_zo") > 0 and tuned.value("batch_size") > 0  # filled from elasticzo.hparams
    decayed = FederationSpec(lr_zo=1e-3, lr_bp=0.1, lr_decay=0.5, lr_decay_every=2)
    assert decayed.learning_rates(1) == (1e-3, 0.1) and decayed.learning_rates(5) == (1e-3 / 4, 0.1 / 4)
    with pytest.raises(ValueError, match="reply_timeout"):
        FederationSpec(reply_timeout=0.0)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="server_lr"):
            FederationSpec(server_lr=bad)
    assert FederationSpec(server_lr=3.0).server_step == 3.0
    assert FederationSpec(method="full-zo").server_step == 4.0  # tuned (SERVER_LR); plain averaging elsewhere
    assert FederationSpec(method="zo-feat-cls1").server_step == 1.0


def test_catch_up_replays_while_cheaper_than_the_weights_then_pulls():
    assert choose_catch_up(0, 1000, "auto", 100, kept=True) == "none"
    assert choose_catch_up(10, 1000, "auto", 100, kept=True) == "replay"
    assert choose_catch_up(250, 1000, "auto", 1000, kept=True) == "pull"  # 1000 bytes of coefficients
    assert choose_catch_up(101, 10 ** 6, "auto", 100, kept=True) == "pull"  # more steps than the server keeps
    assert choose_catch_up(10, 1000, "replay", 100, kept=False) == "pull"
    assert choose_catch_up(10, 1000, "pull", 100, kept=True) == "pull"


@pytest.mark.parametrize("method, precision", [("zo-feat-cls1", "fp32"), ("full-zo", "fp32"), ("full-bp", "fp32"),
                                               ("zo-feat-cls1", "int8"), ("full-zo", "int8-intonly")])
def test_replicas_stay_bit_identical_when_clients_skip_rounds(method, precision):
    # Client 2 misses rounds 2 and 3 (replay at round 4: 9 steps), client 1 misses round 4 (catches up at the end).
    spec = FederationSpec(method=method, precision=precision, **SMALL)
    schedule = {0: [0, 1, 2], 1: [0, 1], 2: [0, 1], 3: [0, 2]}
    fed = run_local(spec, choose_nodes=lambda r, nodes: schedule[r])
    server = fed["server"]
    for node, replica in fed["clients"].items():
        _assert_identical(replica, server.replica, f"{method}: client {node}")
    assert server.step == spec.num_rounds * spec.local_steps
    expected = "replay" if method != "full-bp" else "pull"  # Full BP has no ZO part: the head is the model
    assert fed["rounds"][3]["sent"][2] == expected
    for record in fed["rounds"]:  # every client trained from the server's weights of that round
        assert set(record["digests"].values()) == {record["server_digest_before"]}
    # the server's model moved (the updates were applied), and is not the seed's model any more
    assert server.replica.digest() != Replica(spec, 10, (1, 28, 28)).digest()


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_pulled_weights_and_replayed_steps_give_the_same_replica(precision):
    base = dict(SMALL, method="zo-feat-cls1", precision=precision)
    schedule = {0: [0, 1, 2], 1: [0, 1], 2: [0, 1], 3: [0, 1, 2]}
    replayed = run_local(FederationSpec(**base, catch_up="replay"), choose_nodes=lambda r, n: schedule[r])
    pulled = run_local(FederationSpec(**base, catch_up="auto", max_replay_steps=4),
                       choose_nodes=lambda r, n: schedule[r])
    assert replayed["rounds"][3]["sent"][2] == "replay" and pulled["rounds"][3]["sent"][2] == "pull"
    _assert_identical(replayed["clients"][2], pulled["clients"][2], "client 2, replay vs pull")
    _assert_identical(pulled["clients"][2], pulled["server"].replica, "client 2 pulled vs server")


@pytest.mark.parametrize("server_lr", [1.0, 2.5])
def test_averaged_scalars_equal_fedavg_of_the_clients_local_weights(mnist_train, assert_close, server_lr):
    # One round: the server's ZO update sum_k -lr mean_i(g_ik) z_k is FedAvg of the clients' locally trained ZO
    # weights (up to float rounding), and its head is FedAvg of their heads; a server learning rate scales both moves.
    spec = FederationSpec(method="zo-feat-cls1", num_clients=3, num_rounds=1, local_steps=4, batch_size=16,
                          train_samples=901, server_lr=server_lr)  # shards of 301, 300, 300: unequal weights
    fed = run_local(spec)
    from elasticzo.federated.data import client_shard

    config = fed["server"].train_message("fresh", 0)[0]  # the round's settings, as sent
    config["step"] = 0
    locals_, sizes = [], []
    for pid in range(3):
        replica = Replica(spec, 10, (1, 28, 28))
        shard = client_shard(spec, pid)
        fed_client.local_steps(replica, shard, config, pid)
        locals_.append(_state(replica))
        sizes.append(len(shard))
    w = np.array(sizes) / sum(sizes)
    server = _state(fed["server"].replica)
    start = _state(Replica(spec, 10, (1, 28, 28)))
    for name in server:
        fedavg = sum(wi * s[name].astype(np.float64) for wi, s in zip(w, locals_))
        assert_close(server[name] - start[name], server_lr * (fedavg - start[name]), 1e-4,
                     f"{name}: update vs FedAvg")


def test_int8_steps_are_the_clients_majority_vote_and_travel_as_one_byte():
    # INT8: each client returns its ternary gradients; the server applies sign(sum of the sample-weighted votes) per
    # step, exactly as a training step applies its own g; the head is the clients' int8 mantissas averaged, rounded.
    spec = FederationSpec(method="zo-feat-cls1", precision="int8", num_clients=3, num_rounds=1, local_steps=6,
                          batch_size=16, train_samples=901)
    seen = {}
    fed = run_local(spec, on_message=lambda kind, node, way, config, arrays: seen.setdefault((node, way), arrays))
    grads = np.stack([seen[(n, "up")]["grads"] for n in range(3)])
    assert grads.dtype == np.int8 and set(np.unique(grads)) <= {-1, 0, 1}
    sizes = np.array([301, 300, 300])
    votes = np.sign(sizes @ grads.astype(np.int64)).astype(np.int8)
    server = fed["server"]
    assert np.array_equal(server.history, votes) and server.history.dtype == np.int8
    fresh = Replica(spec, 10, (1, 28, 28))
    fresh.apply(0, votes)
    heads = [seen[(n, "up")] for n in range(3)]
    for name in fresh.head_names:
        mean = sum(w * h[f"head/{name}"].astype(np.float64) for w, h in zip(sizes / sizes.sum(), heads))
        assert np.array_equal(server.replica.model.parameter(name), np.clip(np.rint(mean), -127, 127))
        fresh.load({name: server.replica.model.parameter(name)})
    _assert_identical(fresh, server.replica, "votes replayed on a fresh replica")
    with pytest.raises(ValueError, match="ternary"):
        fresh.trainer.core.apply_zo_update(6, 0.5)
    with pytest.raises(ValueError, match="cannot hold exactly"):
        fresh.load({fresh.head_names[0]: np.full(fresh.model.parameter(fresh.head_names[0]).shape, 0.5)})


def test_a_damaged_replica_is_detected_when_it_catches_up():
    spec = FederationSpec(method="full-zo", **SMALL)
    server = run_local(spec)["server"]
    client = Replica(spec, 10, (1, 28, 28))
    w = client.model.parameter("conv1.weight")
    w.flat[7] = np.nextafter(w.flat[7], np.float32(1))  # one bit
    client.model.set_parameter("conv1.weight", w)
    config, arrays = server.sync_message("new node")
    assert config["catch_up"] == "replay"
    with pytest.raises(fed_client.ReplicaDiverged, match="digest"):
        fed_client.catch_up(client, config, arrays)


def test_without_flower_the_apps_say_how_to_install_it(monkeypatch):
    for name in ["flwr"] + [m for m in sys.modules if m.startswith("flwr.")]:
        monkeypatch.setitem(sys.modules, name, None)  # as if Flower were not installed (even if imported before)
    monkeypatch.delitem(sys.modules, "elasticzo.federated.flower", raising=False)
    with pytest.raises(ImportError, match=r'pip install "elasticzo\[federated\]"'):
        import elasticzo.federated.flower  # noqa: F401


def test_apply_zo_update_moves_only_the_zo_layers_along_the_steps_z_on_every_isa(isa, assert_close):
    from elasticzo import _core

    spec = FederationSpec(method="zo-feat-cls1", num_clients=1)
    replica = Replica(spec, 10, (1, 28, 28))
    before = _state(replica)
    replica.trainer.core.apply_zo_update(5, -0.25)
    after = _state(replica)
    key = _core.step_key(spec.seed, 5)
    for p, layer in enumerate(replica.model.param_layer_names()):
        w, b = f"{layer}.weight", f"{layer}.bias"
        if w in replica.head_names:
            assert np.array_equal(after[w], before[w]) and np.array_equal(after[b], before[b]), layer
            continue
        z = _core.gaussian(before[w].size + before[b].size, key, p)  # weight then bias share the layer's stream
        moved = np.concatenate([after[w].ravel(), after[b].ravel()])
        start = np.concatenate([before[w].ravel(), before[b].ravel()])
        assert_close(moved, start - 0.25 * z, 1e-6, f"{layer} on {isa}")
    _core.set_isa("ref")  # the same bits from the reference kernel
    reference = Replica(spec, 10, (1, 28, 28))
    reference.trainer.core.apply_zo_update(5, -0.25)
    assert reference.digest() == replica.digest()
    with pytest.raises(ValueError, match="not finite"):
        replica.trainer.core.apply_zo_update(6, float("nan"))


# SHA-256 of the ZO weights of test_replayed_updates_give_the_same_bits_on_every_architecture, recorded on x86_64
# (AVX-512, AVX2 and ref alike). The emulated arm64 run checks NEON gives the same: a server on one architecture and
# boards on another hold the same replica.
GOLDEN_REPLAY_SHA256 = "594b8c177e1da464b1306b99f10f0e1239433a4a80f12bcbb202ab65918f8a97"


def test_replayed_updates_give_the_same_bits_on_every_architecture():
    import hashlib

    replica = Replica(FederationSpec(method="full-zo", num_clients=1), 10, (1, 28, 28))
    replica.load({n: np.full_like(replica.model.parameter(n), 0.125) for n in replica.zo_names})
    replica.apply(0, np.array([0.01, -0.02, 0.005, 1e-4], dtype=np.float32))
    h = hashlib.sha256()
    for name in replica.zo_names:
        h.update(replica.model.parameter(name).tobytes())
    assert h.hexdigest() == GOLDEN_REPLAY_SHA256
