"""The server side of federated ElasticZO, without Flower: it chooses the steps (their keys are (seed, step), the
same on every replica), averages the clients' projected gradients per step into one coefficient -η lr_zo g each, and
the clients' heads into one head (FedAvg, weighted by their sample counts; η, the server learning rate, scales both
moves, FedOpt-style, and is 1 for plain averaging), and keeps its own replica, the reference every client must match
bit for bit.

Catch-up: the server remembers the coefficients of the last `max_replay_steps` steps and the step each client's
replica is at. A client that is behind replays them (4 bytes per step) or, when that would cost more bytes than the
ZO weights themselves or the steps are no longer kept, pulls the ZO weights (`choose_catch_up`).
"""

import numpy as np

from elasticzo.federated.replica import Replica

def choose_catch_up(missed_steps: int, zo_bytes: int, policy: str, max_replay_steps: int, kept: bool,
                    coefficient_bytes: int = 4) -> str:
    """'none', 'replay' or 'pull' for a replica `missed_steps` behind; `kept`: the server still has those steps;
    a step's coefficient costs `coefficient_bytes` (float32; 1 for INT8's ternary gradient)."""
    if missed_steps == 0:
        return "none"
    if not kept or policy == "pull":
        return "pull"
    if policy == "replay":
        return "replay"
    cheaper = missed_steps * coefficient_bytes < zo_bytes
    return "replay" if cheaper and missed_steps <= max_replay_steps else "pull"


class FederatedServer:
    def __init__(self, spec, num_classes: int, sample_shape):
        self.spec = spec
        self.replica = Replica(spec, num_classes, sample_shape)
        self.history = np.empty(0, dtype=self.replica.coefficient_dtype)  # of steps [history_start, replica.step)
        self.history_start = 0
        self.synced = {}  # node -> the step its replica holds; a node never heard from is at 0 (the seed's model)
        self.rounds = []  # per round: nodes, catch-up modes, digests, losses (for logs, tests, benchmarks)

    @property
    def step(self) -> int:
        return self.replica.step

    def sync_message(self, node) -> tuple:
        """(config, arrays) that bring `node`'s replica to the server's step."""
        start = self.synced.get(node, 0)
        behind = self.step - start
        mode = choose_catch_up(behind, self.replica.zo_bytes, self.spec.catch_up, self.spec.max_replay_steps,
                               kept=start >= self.history_start,
                               coefficient_bytes=self.replica.coefficient_dtype.itemsize)
        config = {"catch_up": mode, "step": self.step, "digest": self.replica.digest()}
        arrays = {}
        if mode == "replay":
            config["catchup_from"] = start
            arrays["coefficients"] = self.history[start - self.history_start:]
        elif mode == "pull":
            arrays.update({f"zo/{n}": a for n, a in self.replica.arrays(self.replica.zo_names).items()})
        if behind:  # the head changed since (a replica at the server's step already holds this head)
            arrays.update({f"head/{n}": a for n, a in self.replica.arrays(self.replica.head_names).items()})
        return config, arrays

    def train_message(self, node, round_index: int) -> tuple:
        config, arrays = self.sync_message(node)
        lr_zo, lr_bp = self.spec.learning_rates(round_index)
        config.update(round=round_index, local_steps=self.spec.local_steps, batch_size=self.spec.value("batch_size"),
                      lr_zo=lr_zo, lr_bp=lr_bp)
        return config, arrays

    def sample(self, nodes, round_index: int) -> list:
        """The nodes of a round: `clients_per_round` of them (all when 0), drawn from (seed, round)."""
        nodes = sorted(nodes)
        count = min(self.spec.sampled_per_round, len(nodes))
        picked = np.random.default_rng([self.spec.seed, 0x5A, round_index]).choice(len(nodes), count, replace=False)
        return [nodes[i] for i in sorted(picked)]

    def aggregate(self, round_index: int, replies: dict, sent: dict) -> dict:
        """Applies a round from {node: (config, arrays)} (the replies that arrived); `sent` maps every node the round
        was sent to onto its catch-up mode. Returns the round's record."""
        first, steps = self.step, self.spec.local_steps
        for node, (config, _) in replies.items():
            if int(config["step"]) != first:
                raise RuntimeError(f"node {node} trained from step {config['step']}, the round is at step {first}")
        record = {"round": round_index + 1, "first_step": first, "sent": dict(sent),
                  "nodes": sorted(replies), "digests": {n: c["digest"] for n, (c, _) in replies.items()},
                  "server_digest_before": self.replica.digest()}
        for node in replies:
            self.synced[node] = first  # a client restores the weights it trained from: this step's
        if not replies:
            record["skipped"] = True  # nobody answered: the model stays where it is
            self.rounds.append(record)
            return record
        weights = np.array([float(c["num_examples"]) for c, _ in replies.values()])
        weights /= weights.sum()
        lr_zo, _ = self.spec.learning_rates(round_index)
        if self.replica.zo_names:
            grads = np.stack([np.asarray(a["grads"], dtype=np.float64) for _, a in replies.values()])
            if grads.shape[1] != steps:
                raise RuntimeError(f"a client returned {grads.shape[1]} projected gradients for {steps} steps")
            mean = weights @ grads
            if self.spec.int8:  # the weighted majority vote of the ternary gradients (signSGD with majority vote)
                coefficients = np.sign(mean).astype(np.int8)
            else:
                coefficients = (-self.spec.server_step * lr_zo * mean).astype(np.float32)
        else:
            mean = np.zeros(steps)
            coefficients = np.zeros(steps, dtype=self.replica.coefficient_dtype)  # Full BP: ZO moves nothing
        self.replica.apply(first, coefficients)
        if self.replica.head_names:
            self.replica.load(self._head_step(weights, replies))
        self.history = np.concatenate([self.history, coefficients])
        drop = max(len(self.history) - self.spec.max_replay_steps, 0)
        self.history, self.history_start = self.history[drop:], self.history_start + drop
        record.update(projected_grad_mean=[float(g) for g in mean],
                      train_loss=float(weights @ np.array([float(c["train_loss"]) for c, _ in replies.values()])),
                      server_digest_after=self.replica.digest())
        self.rounds.append(record)
        return record

    def _head_step(self, weights, replies) -> dict:
        """The head after the round: the clients' heads averaged (FedAvg), or with a server learning rate η the
        server's head moved η times the way to that average (exactly the average for η = 1). INT8 heads are mantissas
        at one fixed exponent: averaged the same way, then rounded to the nearest integer (ties to even) in range."""
        step = self.spec.server_step
        heads = {}
        for name in self.replica.head_names:
            mean = sum(w * np.asarray(a[f"head/{name}"], dtype=np.float64) for w, (_, a) in zip(weights, replies.values()))
            if step != 1.0:
                own = self.replica.model.parameter(name).astype(np.float64)
                mean = own + step * (mean - own)
            heads[name] = (np.clip(np.rint(mean), -127, 127).astype(np.int8) if name in self.replica.exponents
                           else mean.astype(np.float32))
        return heads

    def confirm(self, node, step: int) -> None:
        """`node` reported its replica at `step` (an evaluate reply)."""
        self.synced[node] = int(step)
