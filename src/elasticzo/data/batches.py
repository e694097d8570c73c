"""Minibatches in an order fixed by (seed, epoch), resumable from any batch index of the epoch."""

import numpy as np


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches per epoch over n samples."""
    batch_size = _check_int(batch_size, "batch_size", 1)
    return n // batch_size if drop_last else -(-n // batch_size)


def epoch_order(n: int, shuffle: bool, seed: int = 0, epoch: int = 0) -> np.ndarray:
    """Sample indices (int64) of one epoch: 0..n-1, or the permutation drawn by default_rng([seed, epoch]).

    Seeding with the pair, not seed + epoch, keeps (seed, epoch) and (seed + 1, epoch - 1) apart.
    """
    seed = _check_int(seed, "seed", 0)
    epoch = _check_int(epoch, "epoch", 0)
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


def _gather(dataset, order, batch_size, first, last):
    for b in range(first, last):
        idx = order[b * batch_size:(b + 1) * batch_size]
        # fresh C-contiguous arrays, converted from the stored dtype: the trainer may keep or modify them freely
        yield dataset.take(idx)


def batches(dataset, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
            drop_last: bool = False, start_batch: int = 0):
    """Yield (x float32, y int32) batches of one epoch, starting at batch index start_batch.

    The order depends only on (len(dataset), shuffle, seed, epoch), so a run stopped after batch k resumes
    with start_batch=k + 1 and sees exactly the batches it would have seen. The last batch is smaller unless
    drop_last. Arguments are checked here, before the first batch is requested.
    """
    total = num_batches(len(dataset), batch_size, drop_last)
    start_batch = _check_int(start_batch, "start_batch", 0)
    if start_batch > total:
        raise ValueError(f"start_batch {start_batch} is past the {total} batches of an epoch")
    order = epoch_order(len(dataset), shuffle, seed, epoch)
    return _gather(dataset, order, batch_size, start_batch, total)
