"""Data layer: verified MNIST / Fashion-MNIST / ModelNet40 loading, deterministic batches, rotated subsets."""

from elasticzo.data.arrays import as_dataset
from elasticzo.data.batches import (batches, drops_small_last, epoch_order, num_batches,
                                    training_batches_per_epoch)
from elasticzo.data.dataset import Dataset, load_dataset, normalize_images
from elasticzo.data.download import download_dataset
from elasticzo.data.errors import ChecksumError, DatasetFormatError, DatasetNotFoundError, DownloadError
from elasticzo.data.idx import read_idx_images, read_idx_labels
from elasticzo.data.locate import ENV_VAR, search_dirs
from elasticzo.data.npz import load_npz
from elasticzo.data.registry import DATASETS, dataset_info
from elasticzo.data.rotate import PAPER_ROTATED_TEST_COUNT, rotate_images, rotated_subset

__all__ = [
    "as_dataset", "load_npz",
    "batches", "drops_small_last", "epoch_order", "num_batches", "training_batches_per_epoch",
    "Dataset", "load_dataset", "normalize_images",
    "download_dataset",
    "ChecksumError", "DatasetFormatError", "DatasetNotFoundError", "DownloadError",
    "read_idx_images", "read_idx_labels",
    "ENV_VAR", "search_dirs",
    "DATASETS", "dataset_info",
    "PAPER_ROTATED_TEST_COUNT", "rotate_images", "rotated_subset",
]
