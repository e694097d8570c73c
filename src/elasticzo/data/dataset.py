"""Dataset (x, y, classes) and load_dataset(): verified files -> uint8 NCHW pixels or float16 points, int32 labels;
float32 model inputs one batch at a time."""

import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from elasticzo.data.errors import DatasetFormatError, corrupt
from elasticzo.data.idx import read_idx_images, read_idx_labels
from elasticzo.data.integrity import verify_file
from elasticzo.data.locate import find_files
from elasticzo.data.modelnet import read_modelnet40
from elasticzo.data.registry import check_split, dataset_info

IMAGE_SIZE = (28, 28)
_FLOATS = (np.float16, np.float32, np.float64)
_FINITE_CHUNK = 1 << 20  # values checked at a time, so the check's temporaries stay small
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Samples x in their compact stored dtype (first axis = sample) and labels y (int32, 0 <= y < len(classes)).

    A split is held once, as its file stores it; `take` converts one batch at a time to the float32 the model
    reads. uint8 x holds pixels and becomes (pixel/255 - mean) / std, so the background (pixel 0) is
    (0 - mean) / std; float16/float32/float64 x becomes float32 unchanged (mean and std then only record a
    normalization already applied: 0 and 1 for unnormalized data).
    """

    name: str
    split: str
    x: np.ndarray
    y: np.ndarray
    classes: tuple
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self):
        if not isinstance(self.x, np.ndarray) or (self.x.dtype != np.uint8 and self.x.dtype not in _FLOATS):
            got = self.x.dtype if isinstance(self.x, np.ndarray) else type(self.x).__name__
            raise ValueError(f"{self.name}: x must be a uint8 (pixels) or float16/float32/float64 array, got {got}")
        if self.x.ndim < 2 or 0 in self.x.shape[1:]:
            raise ValueError(f"{self.name}: x must have shape (samples, ...features) with features, got "
                             f"{self.x.shape}")
        if not isinstance(self.y, np.ndarray) or self.y.dtype != np.int32 or self.y.ndim != 1:
            raise ValueError(f"{self.name}: y must be a 1-D int32 array")
        if len(self.x) != len(self.y):
            raise ValueError(f"{self.name}: {len(self.x)} samples but {len(self.y)} labels")
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise ValueError(f"{self.name}: labels outside 0..{len(self.classes) - 1}")
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(f"{self.name}: mean and std must be finite with std > 0, got {self.mean}, {self.std}")
        _check_finite(self.x, self.name)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def sample_shape(self) -> tuple:
        return self.x.shape[1:]

    @cached_property
    def _pixel_table(self) -> np.ndarray:
        return pixel_table(self.mean, self.std)

    def take(self, indices):
        """(x float32, y int32) of the samples at `indices`, in that order: fresh C-contiguous arrays."""
        indices = np.asarray(indices, dtype=np.int64)
        x = np.take(self.x, indices, axis=0)
        if x.dtype == np.uint8:
            # np.take, not table[x]: 1.7-2x faster per training batch. A uint8 never leaves the 256-entry table,
            # so "wrap" only skips the bounds check of the default mode.
            x = np.take(self._pixel_table, x, mode="wrap")
        elif x.dtype != np.float32:
            x = x.astype(np.float32)
        return x, np.take(self.y, indices)

    def inputs(self, indices=None) -> np.ndarray:
        """The float32 model inputs of the samples at `indices` (all when None): a converted copy."""
        return self.take(np.arange(len(self)) if indices is None else indices)[0]

    def subset(self, indices, name=None) -> "Dataset":
        """The samples at `indices`, in that order (copies in the stored dtype)."""
        indices = np.asarray(indices, dtype=np.int64)
        return replace(self, name=name or self.name, x=np.take(self.x, indices, axis=0),
                       y=np.take(self.y, indices))

    def sample(self, count: int, seed: int = 0, name=None) -> "Dataset":
        """`count` samples drawn without replacement by numpy's default_rng(seed), kept in dataset order.

        A random subset, not the first `count`: the order of a dataset's files is not random (MNIST's test set holds
        NIST's training writers first), so its first samples need not be typical of the rest."""
        return self.subset(self.sample_indices(count, seed), name=name)

    def sample_indices(self, count: int, seed: int = 0) -> np.ndarray:
        """The sorted indices `sample(count, seed)` takes (so a caller can hold out samples it did not take)."""
        n = len(self)
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 0 < count <= n:
            raise ValueError(f"{self.name}: a subset holds 1 to {n} samples, got {count!r}")
        check_subset_seed(seed)
        return np.sort(np.random.default_rng(seed).choice(n, size=int(count), replace=False))


def check_subset_seed(seed) -> None:
    """ValueError unless `seed` is a non-negative integer (what numpy's default_rng accepts as an entropy)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"the subset seed must be an integer >= 0, got {seed!r}")


def _check_finite(x: np.ndarray, name: str) -> None:
    """ValueError naming the first sample that would not become finite float32 (NaN, infinity, or float64 beyond
    float32's range); chunked, so the check makes no full-size temporary."""
    if x.dtype == np.uint8 or not len(x):
        return
    rows = max(1, _FINITE_CHUNK // max(1, math.prod(x.shape[1:])))
    for start in range(0, len(x), rows):
        chunk = x[start:start + rows].reshape(-1, math.prod(x.shape[1:]))  # a strided x is copied a chunk at a time
        # float64 must also fit float32; NaN compares False
        ok = np.abs(chunk) <= _FLOAT32_MAX if chunk.dtype == np.float64 else np.isfinite(chunk)
        bad = ~ok.all(axis=1)
        if bad.any():
            raise ValueError(f"{name}: sample {start + int(np.argmax(bad))} holds NaN, infinity or a value beyond "
                             f"float32's range")


def pixel_table(mean: float, std: float) -> np.ndarray:
    """float32 (pixel/255 - mean) / std of every uint8 pixel value, computed in float64 and rounded once."""
    return ((np.arange(256, dtype=np.float64) / 255.0 - mean) / std).astype(np.float32)


def normalize_images(pixels: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) holding (pixel/255 - mean) / std.

    A 256-entry table computed in float64 and rounded once, so every pixel value maps to one exact float32.
    """
    return pixel_table(mean, std)[pixels[:, None, :, :]]


def _load_idx(info, split, data_dir, normalize, verify):
    paths = find_files(info, split, data_dir)
    if verify:
        for path, known in zip(paths, info.files[split]):
            verify_file(path, known, info.name)
    images_path, labels_path = paths
    images = read_idx_images(images_path)
    if images.shape[1:] != IMAGE_SIZE:
        raise corrupt(images_path, f"images of {images.shape[1]}x{images.shape[2]} pixels, expected 28x28")
    labels = read_idx_labels(labels_path)
    if len(labels) and labels.max() >= len(info.classes):
        raise corrupt(labels_path, f"label {labels.max()} outside 0..{len(info.classes) - 1}")
    if len(images) != len(labels):
        raise DatasetFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            f"the two files are from different datasets or one is damaged. Replace both with the originals.")
    mean, std = (info.mean, info.std) if normalize else (0.0, 1.0)
    # Kept as uint8 pixels with a channel axis (a view); batches are normalized as they are taken.
    return Dataset(info.name, split, images[:, None, :, :], labels.astype(np.int32), info.classes, mean, std)


def _load_modelnet(info, split, data_dir, verify):
    (path,) = find_files(info, split, data_dir)
    if verify:
        verify_file(path, info.files[split][0], info.name)
    points, labels, classes = read_modelnet40(path, split)
    return Dataset(info.name, split, points, labels, classes)


def load_dataset(name: str, data_dir=None, split: str = "train", *, normalize: bool = True,
                 verify: bool = True) -> Dataset:
    """Load "mnist", "fashion-mnist" (x: uint8 pixels (N, 1, 28, 28)) or "modelnet40" (x: float16 (N, 1024, 3)).

    data_dir: the folder holding the files, or a folder with a <name>/ subfolder; when None, see
    elasticzo.data.search_dirs. verify: check size and SHA-256 against the published files first.
    normalize: batches of images hold (pixel/255 - mean) / std with the dataset's training-set statistics; when
    False, pixel/255. ModelNet40 points are used as stored (centred, unit radius); batches convert them to float32.
    """
    info = dataset_info(name)
    check_split(split)
    if info.name == "modelnet40":
        return _load_modelnet(info, split, data_dir, verify)
    return _load_idx(info, split, data_dir, normalize, verify)
