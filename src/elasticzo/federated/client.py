"""The client side of a round, without Flower: catch up to the server's step, take the local steps, and return one
scalar per ZO step plus the backprop head; then go back to the global weights it started the round from.

A client's replica between messages always holds the global weights of some step (`replica.step`): local training
moves a copy forward and is undone (the ZO weights and head are restored from a copy kept for the round: 4 bytes per
parameter, LeNet-5's 431 KB, the price of exact agreement: a completed step writes its FP32 update in place,
and subtracting it again is not exact).
"""

import numpy as np

from elasticzo.federated.replica import Replica


class ReplicaDiverged(RuntimeError):
    """A client's replica does not match the server's after catching up (it was damaged, or the run changed)."""


def catch_up(replica: Replica, config: dict, arrays: dict) -> str:
    """Brings `replica` to the server's step from a message: replays the coefficients from `catchup_from` (skipping
    those it already applied), or loads the pulled ZO weights; then takes the head. Checks the digest."""
    mode = config["catch_up"]
    if mode == "replay":
        start = int(config["catchup_from"])
        coefficients = arrays["coefficients"]
        if not start <= replica.step <= start + len(coefficients):
            raise ReplicaDiverged(f"replica at step {replica.step}; the server's replay covers steps "
                                  f"{start}..{start + len(coefficients)}")
        replica.apply(replica.step, coefficients[replica.step - start:])
    elif mode == "pull":
        replica.load({n[3:]: a for n, a in arrays.items() if n.startswith("zo/")})
        replica.step = int(config["step"])
    replica.load({n[5:]: a for n, a in arrays.items() if n.startswith("head/")})
    if replica.step != int(config["step"]) or replica.digest() != config["digest"]:
        raise ReplicaDiverged(f"after catching up ({mode}) the replica is at step {replica.step}, digest "
                              f"{replica.digest()}; the server's is step {config['step']}, digest {config['digest']}")
    return mode


def local_steps(replica: Replica, shard, config: dict, partition_id: int):
    """Takes the round's local steps on `shard` (a Dataset), moving the replica's weights; returns (projected
    gradients, losses). Step k draws z from (seed, step + k), the same on every client and the server; the batches
    from (seed, partition, step)."""
    first, steps, batch = int(config["step"]), int(config["local_steps"]), int(config["batch_size"])
    core = replica.trainer.core
    core.set_learning_rates(float(config["lr_zo"]), float(config["lr_bp"]))
    core.steps_done = first
    rng = np.random.default_rng([replica.spec.seed, int(partition_id), first])
    grads = np.empty(steps, dtype=replica.coefficient_dtype)  # INT8: the ternary gradient, one byte
    losses = np.empty(steps)
    for k in range(steps):
        x, y = shard.take(rng.choice(len(shard), size=min(batch, len(shard)), replace=False))
        replica.at_step(first + k)
        stats = core.step(x, y)
        grads[k], losses[k] = stats["projected_grad"], stats["loss"]
    return grads, losses


def train(replica: Replica, shard, config: dict, partition_id: int):
    """The reply to a train message: the local steps' projected gradients and head, computed on a copy of the
    round's starting weights that is then undone, so the replica stays at the server's step."""
    before = replica.arrays(replica.zo_names + replica.head_names)
    try:
        grads, losses = local_steps(replica, shard, config, partition_id)
        head = replica.arrays(replica.head_names)
    finally:
        replica.load(before)  # back to the global weights of the round's step, also when a step failed
    reply_arrays = {f"head/{n}": a for n, a in head.items()}
    if replica.zo_names:
        reply_arrays["grads"] = grads
    reply_config = {"num_examples": len(shard), "train_loss": float(losses.mean()), "partition_id": int(partition_id),
                    "digest": replica.digest(), "step": replica.step}
    return reply_config, reply_arrays


def evaluate(replica: Replica, shard, partition_id: int):
    """The reply to an evaluate message: the (caught-up) replica's digest and its accuracy on the local test shard."""
    from elasticzo.trainer import evaluate as evaluate_model

    result = evaluate_model(replica.model, shard)
    return {"num_examples": len(shard), "loss": result["loss"], "accuracy": result["accuracy"],
            "partition_id": int(partition_id), "digest": replica.digest(), "step": replica.step}, {}
