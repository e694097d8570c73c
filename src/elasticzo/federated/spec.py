"""What defines a federated ElasticZO run: one FederationSpec, read from Flower's run config (`flwr run
--run-config`, the app's pyproject.toml) or built in Python, and identical on the server and every client.

Every replica builds the same initial model from `seed`, so no weights travel before the first round.
"""

import dataclasses
from dataclasses import dataclass, field

from elasticzo import hparams
from elasticzo.federated.partition import SCHEMES
from elasticzo.methods import METHODS

PRECISIONS = ("fp32", "int8", "int8-intonly")

CATCH_UP = ("auto", "replay", "pull")

# Tuned server learning rates (`benchmarks/federated.py --sections server-lr`, MNIST validation split, 200 rounds x
# 10 steps; benchmarks/results/federated.md): one federated update averages the projected gradients of every sampled
# client, a larger batch than one local step's, and can take a larger step. Full ZO: 4 (validation 67.8% with 10
# clients, 74.2% with 3, against 27.1% / 25.3% (centralized) at 1; 8 was best with 10 clients but fell to 52.0% with
# 3, and 16 diverged). ZO-Feat-Cls1 stays at 1 (91.9%; 2: 87.2%, 4: 21.1%: its averaged backprop head does not take
# larger steps). Methods not listed (Cls2 unswept, Full BP) average plainly (1.0).
SERVER_LR = {"full-zo": 4.0}


@dataclass(frozen=True)
class FederationSpec:
    dataset: str = "mnist"
    data_dir: str = ""            # "" : the bundled MNIST / $ELASTICZO_DATA, as elsewhere in elasticzo
    model: str = "lenet5"
    method: str = "zo-feat-cls1"
    precision: str = "fp32"       # fp32, or ElasticZO-INT8: int8 (sign from the float loss) / int8-intonly
    partition: str = "iid"        # how the training split is cut across the clients: iid or dirichlet
    alpha: float = 0.5            # Dirichlet concentration (partition = dirichlet)
    num_clients: int = 3          # partitions; the server waits for this many nodes
    clients_per_round: int = 0    # sampled per round; 0: all
    num_rounds: int = 3
    local_steps: int = 5          # ZO/BP steps each sampled client takes per round
    batch_size: int = 0           # 0: the tuned default of model, dataset and method (elasticzo.hparams)
    lr_zo: float = 0.0            # 0: tuned default
    lr_bp: float = 0.0            # 0: tuned default
    eps: float = 0.0              # 0: tuned default
    grad_clip: float = -1.0       # < 0: tuned default; 0 disables clipping
    server_lr: float = 0.0        # the server's step on the round's averaged update (FedOpt's server learning rate;
                                  # 1.0: plain averaging, FedAvg); 0: the tuned default (SERVER_LR)
    lr_decay: float = 1.0         # both learning rates times lr_decay every lr_decay_every rounds (1.0: none)
    lr_decay_every: int = 1
    seed: int = 0                 # initial weights, ZO perturbation keys, client sampling, partition
    train_samples: int = 0        # use the first N training samples only (0: all), for quick runs
    test_samples: int = 0         # evaluate on the first N test samples only (0: all)
    catch_up: str = "auto"        # a client that missed steps: replay their (step, coefficient) pairs or pull weights
    max_replay_steps: int = 4096  # auto: replay at most this many steps (and only while cheaper than the weights)
    evaluate_every: int = 0       # server-side test accuracy every N rounds (0: after the last round only)
    reply_timeout: float = 600.0  # seconds the server waits for a round's replies; a client later than that is
                                  # left out of the round (and catches up at its next message)
    out: str = ""                 # the server writes summary.json and checkpoint.safetensors here
    tuned: dict = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        for name, options in (("method", METHODS), ("precision", PRECISIONS), ("partition", SCHEMES),
                              ("catch_up", CATCH_UP)):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {', '.join(options)}, got {getattr(self, name)!r}")
        for name in ("num_clients", "num_rounds", "local_steps", "lr_decay_every", "max_replay_steps"):
            _check_int(self, name, 1)
        for name in ("clients_per_round", "batch_size", "seed", "train_samples", "test_samples", "evaluate_every"):
            _check_int(self, name, 0)
        if not self.server_lr >= 0:
            raise ValueError(f"server_lr must be >= 0 (0: the tuned default), got {self.server_lr!r}")
        if not self.reply_timeout > 0:
            raise ValueError(f"reply_timeout must be > 0 seconds, got {self.reply_timeout!r}")
        if self.clients_per_round > self.num_clients:
            raise ValueError(f"clients_per_round ({self.clients_per_round}) exceeds num_clients ({self.num_clients})")
        tuned = hparams.defaults(self.model, self.dataset, self.method, self.precision)
        object.__setattr__(self, "tuned", tuned)

    @property
    def sampled_per_round(self) -> int:
        return self.clients_per_round or self.num_clients

    def value(self, name):
        """A hyperparameter with its tuned default filled in (batch_size, lr_zo, lr_bp, eps, grad_clip)."""
        given = getattr(self, name)
        unset = given < 0 if name == "grad_clip" else given == 0
        return getattr(self.tuned, name) if unset else given

    @property
    def int8(self) -> bool:
        return self.precision != "fp32"

    def steps_per_epoch(self, train_size: int) -> int:
        """Federation steps per epoch, for INT8's per-epoch schedules (mu, p_zero): the steps after which the sampled
        clients together have taken as many samples as the training split holds."""
        per_step = self.value("batch_size") * self.sampled_per_round
        return max(-(-train_size // per_step), 1)

    @property
    def server_step(self) -> float:
        """The server learning rate in use: the given one, or the tuned default of the method."""
        return self.server_lr or SERVER_LR.get(self.method, 1.0)

    def learning_rates(self, round_index: int):
        """(lr_zo, lr_bp) of 0-based round `round_index`."""
        decay = self.lr_decay ** (round_index // self.lr_decay_every)
        return self.value("lr_zo") * decay, self.value("lr_bp") * decay

    def to_run_config(self) -> dict:
        """The spec as Flower run-config entries (dashes, like Flower's own keys)."""
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "tuned"}

    @classmethod
    def from_run_config(cls, run_config) -> "FederationSpec":
        """The spec from Flower's run config; unknown keys are refused by name (a typo must not go unnoticed)."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "tuned"}
        values = {}
        for key, value in dict(run_config).items():
            name = key.replace("-", "_")
            if name not in fields:
                raise ValueError(f"unknown run-config key {key!r}; known: {', '.join(sorted(cls().to_run_config()))}")
            kind = type(fields[name].default)
            values[name] = kind(value) if kind is not int else _as_int(key, value)
        return cls(**values)


def _as_int(key, value):
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"run-config {key!r} must be an integer, got {value!r}")
    return int(value)


def _check_int(spec, name, minimum):
    value = getattr(spec, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
