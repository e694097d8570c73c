"""Each client's share of the data, computed the same way wherever it is asked for (partition.py)."""

import functools

import numpy as np

from elasticzo.data import load_dataset
from elasticzo.federated import partition


@functools.lru_cache(maxsize=4)
def split_of(dataset: str, data_dir: str, split: str, samples: int):
    """A split of a bundled dataset, its first `samples` samples when samples > 0 (loaded once per process)."""
    ds = load_dataset(dataset, data_dir or None, split)
    if samples and samples < len(ds):
        ds = ds.subset(np.arange(samples))
    return ds


def client_shard(spec, partition_id: int, split: str = "train"):
    """Client `partition_id`'s samples: its share of the training split under spec.partition, or an IID share of
    the test split (its local evaluation data)."""
    if isinstance(partition_id, bool) or not 0 <= int(partition_id) < spec.num_clients:
        raise ValueError(f"partition-id must be in [0, {spec.num_clients}), got {partition_id!r} (the SuperNode's "
                         "--node-config \"partition-id=N num-partitions=M\" must agree with the run's num-clients)")
    samples = spec.train_samples if split == "train" else spec.test_samples
    ds = split_of(spec.dataset, spec.data_dir, split, samples)
    scheme = spec.partition if split == "train" else "iid"
    shards = partition.split(scheme, ds.y, spec.num_clients, alpha=spec.alpha, seed=spec.seed)
    return ds.subset(shards[int(partition_id)], name=f"{ds.name}[client {int(partition_id)}]")
