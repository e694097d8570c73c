"""Federated ElasticZO through Flower: a small federation on the Simulation Engine (Ray) keeps every client replica
bit-identical to the server's, including clients that skipped rounds and replayed or pulled what they missed.
Needs the extra elasticzo[federated] (CI installs it; the emulated arm64 run does not, and skips this file)."""

import pytest

pytest.importorskip("flwr", reason="Flower is the optional extra elasticzo[federated]")
pytest.importorskip("ray", reason="Flower's Simulation Engine needs ray (elasticzo[federated])")

from elasticzo.federated import FederationSpec  # noqa: E402

pytestmark = pytest.mark.training


def test_simulated_federation_keeps_every_replica_bit_identical(monkeypatch):
    from elasticzo.federated_cli import simulate

    monkeypatch.setenv("FLWR_TELEMETRY_ENABLED", "0")
    # 3 clients, 4 rounds of 3 steps. The third client misses rounds 2 and 3 (9 steps behind at round 4: more than
    # the 7 the server keeps, so it pulls the ZO weights); the second misses round 4 (replays at the end).
    spec = FederationSpec(method="zo-feat-cls1", num_clients=3, num_rounds=4, local_steps=3, batch_size=16,
                          train_samples=900, test_samples=200, max_replay_steps=7)
    schedule = {0: [0, 1, 2], 1: [0, 1], 2: [0, 1], 3: [0, 2]}
    summary = simulate(spec, choose_nodes=lambda r, nodes: [nodes[i] for i in schedule[r]])
    nodes = sorted(summary["final"])
    assert summary["errors"] == [] and summary["steps"] == 12
    for record in summary["rounds"]:  # each client trained from the server's replica of that round
        assert sorted(record["digests"]) == [nodes[i] for i in schedule[record["round"] - 1]]
        assert set(record["digests"].values()) == {record["server_digest_before"]}
    assert summary["rounds"][3]["sent"][nodes[2]] == "pull"
    assert summary["rounds"][1]["sent"][nodes[0]] == "replay"
    assert summary["final_catch_up"][nodes[1]] == "replay"
    # after the last round every replica, the skippers included, holds the server's bits
    assert summary["replicas_identical"]
    assert {f["digest"] for f in summary["final"].values()} == {summary["server_digest"]}
    # round 1 sends no arrays at all (every replica builds the seed's model); later rounds send the coefficients
    # (4 bytes per step) and the averaged head
    assert all(b["down"] < 1024 for b in summary["rounds"][0]["bytes"].values())
