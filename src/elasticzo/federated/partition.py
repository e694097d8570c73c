"""How a dataset is split across the clients of a federation: IID shards or Dirichlet non-IID label skew.

Both are deterministic functions of (labels, number of clients, seed), so the server, every client and a benchmark
compute the same split without exchanging it.
"""

import numpy as np

SCHEMES = ("iid", "dirichlet")


def iid(num_samples: int, num_clients: int, seed: int = 0) -> list:
    """A random permutation of the samples cut into `num_clients` shards whose sizes differ by at most one."""
    _check(num_samples, num_clients)
    order = np.random.default_rng([seed, 0x11D]).permutation(num_samples)
    return [np.sort(part) for part in np.array_split(order, num_clients)]


def dirichlet(labels, num_clients: int, alpha: float, seed: int = 0, min_samples: int = 1) -> list:
    """Label-skewed shards: the samples of each class go to the clients in proportions drawn from Dirichlet(alpha)
    (small alpha: each client sees few classes; large alpha: close to IID). Redrawn until every client holds at
    least `min_samples` samples (the usual practice), with a clear error if that does not happen in 100 draws."""
    labels = np.asarray(labels)
    _check(len(labels), num_clients)
    if not (alpha > 0 and np.isfinite(alpha)):
        raise ValueError(f"alpha must be a positive finite number, got {alpha!r}")
    if num_clients * min_samples > len(labels):
        raise ValueError(f"{len(labels)} samples cannot give {num_clients} clients {min_samples} each")
    rng = np.random.default_rng([seed, 0xD1])
    for _ in range(100):
        parts = [[] for _ in range(num_clients)]
        for cls in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == cls))
            cuts = (np.cumsum(rng.dirichlet(np.full(num_clients, float(alpha)))) * len(members)).astype(np.int64)
            for client, chunk in enumerate(np.split(members, cuts[:-1])):
                parts[client].append(chunk)
        shards = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(s) for s in shards) >= min_samples:
            return shards
    raise ValueError(f"Dirichlet(alpha={alpha}) left a client with fewer than {min_samples} samples in 100 draws: "
                     "raise alpha or use fewer clients")


def split(scheme: str, labels, num_clients: int, *, alpha: float = 0.5, seed: int = 0) -> list:
    """The index shards of `scheme` ('iid' or 'dirichlet'), one per client."""
    if scheme == "iid":
        return iid(len(labels), num_clients, seed)
    if scheme == "dirichlet":
        return dirichlet(labels, num_clients, alpha, seed)
    raise ValueError(f"unknown partition {scheme!r}; choose one of {', '.join(SCHEMES)}")


def _check(num_samples, num_clients):
    if isinstance(num_clients, bool) or not isinstance(num_clients, (int, np.integer)) or num_clients < 1:
        raise ValueError(f"num_clients must be an int >= 1, got {num_clients!r}")
    if num_clients > num_samples:
        raise ValueError(f"{num_samples} samples cannot be split across {num_clients} clients")
