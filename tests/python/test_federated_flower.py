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


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_messages_round_trip_and_the_zo_part_costs_under_100_bytes_per_step(precision):
    import numpy as np

    from elasticzo.federated.flower import from_records, message_bytes, to_records
    from elasticzo.federated.local import run_local

    spec = FederationSpec(method="full-zo", precision=precision, num_clients=2, num_rounds=2, local_steps=10,
                          batch_size=16, train_samples=400)
    sizes = []

    def note(kind, node, direction, config, arrays):
        content = to_records(config, arrays)
        back_config, back_arrays = from_records(content)
        assert back_config == config and back_arrays.keys() == arrays.keys()
        assert all(np.array_equal(back_arrays[k], arrays[k]) and back_arrays[k].dtype == arrays[k].dtype
                   for k in arrays)
        if kind == "train" and node == 0:
            sizes.append(message_bytes(content))

    run_local(spec, on_message=note)
    down, up = sizes[2], sizes[3]  # round 2: the client replays round 1's 10 steps and returns 10 scalars
    assert (down + up) / spec.local_steps < 100, (down, up)


def _free_port_prefix() -> str:
    """A 4-digit prefix P whose ports P0..P2 (SuperNodes) and P9 (SuperLink) are free on the loopback interface."""
    import random
    import socket

    for _ in range(50):
        prefix = str(random.randrange(2000, 6000))
        try:
            for port in (0, 1, 2, 9):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", int(f"{prefix}{port}")))
        except OSError:
            continue
        return prefix
    raise RuntimeError("no free ports on 127.0.0.1")


def test_readme_fleet_runs_as_written_on_the_deployment_engine(tmp_path, mnist_test):
    # The README's fleet block, verbatim but for the port numbers: a SuperLink and three SuperNodes as separate
    # processes on the loopback interface, `flwr run` of the app `elasticzo federated app` writes, no network.
    import json
    import os
    import signal
    import subprocess
    import sys

    from elasticzo import ElasticZO
    from test_newcomer import code_blocks, readme_section

    blocks = code_blocks(readme_section("Many boards: federated training over Flower"), "bash")
    fleet = next(b for b in blocks if "flower-superlink" in b)
    prefix = _free_port_prefix()
    script = fleet.replace("9091", f"{prefix}9").replace("910$i", f"{prefix}$i")
    env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    log = tmp_path / "fleet.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=tmp_path, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=600)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)  # whatever the block left running (it stops its own jobs)
            except ProcessLookupError:
                pass
    assert proc.returncode == 0, log.read_text()[-4000:]
    summary_file = tmp_path / "fleet" / "out" / "summary.json"
    assert summary_file.is_file(), log.read_text()[-4000:]
    summary = json.loads(summary_file.read_text())
    assert summary["errors"] == [] and summary["replicas_identical"], summary
    assert sorted(f["partition_id"] for f in summary["final"].values()) == [0, 1, 2]
    assert summary["steps"] == 30 and summary["test"]["accuracy"] > 0.1
    trainer = ElasticZO.load(tmp_path / "fleet" / "out" / "checkpoint.safetensors")  # the server's model
    assert trainer.evaluate(mnist_test)["accuracy"] == summary["test"]["accuracy"]
