"""Dataset (x, y, classes) and load_dataset(): verified files -> float32 NCHW images or points, int32 labels."""

from dataclasses import dataclass, replace

import numpy as np

from elasticzo.data.errors import DatasetFormatError, corrupt
from elasticzo.data.idx import read_idx_images, read_idx_labels
from elasticzo.data.integrity import verify_file
from elasticzo.data.locate import find_files
from elasticzo.data.modelnet import read_modelnet40
from elasticzo.data.registry import check_split, dataset_info

IMAGE_SIZE = (28, 28)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Samples x (float32, C-contiguous, first axis = sample) and labels y (int32, 0 <= y < len(classes)).

    mean and std record the normalization applied to image pixels, x = (pixel/255 - mean) / std, so that the
    background (pixel 0) is (0 - mean) / std; for unnormalized data they are 0 and 1.
    """

    name: str
    split: str
    x: np.ndarray
    y: np.ndarray
    classes: tuple
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self):
        if not isinstance(self.x, np.ndarray) or self.x.dtype != np.float32 or not self.x.flags.c_contiguous:
            raise ValueError(f"{self.name}: x must be a C-contiguous float32 array")
        if not isinstance(self.y, np.ndarray) or self.y.dtype != np.int32 or self.y.ndim != 1:
            raise ValueError(f"{self.name}: y must be a 1-D int32 array")
        if len(self.x) != len(self.y):
            raise ValueError(f"{self.name}: {len(self.x)} samples but {len(self.y)} labels")
        if len(self.y) and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise ValueError(f"{self.name}: labels outside 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices, name=None) -> "Dataset":
        """The samples at `indices`, in that order (copies)."""
        indices = np.asarray(indices, dtype=np.int64)
        return replace(self, name=name or self.name, x=np.take(self.x, indices, axis=0),
                       y=np.take(self.y, indices))


def normalize_images(pixels: np.ndarray, mean: float, std: float) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) holding (pixel/255 - mean) / std.

    A 256-entry table computed in float64 and rounded once, so every pixel value maps to one exact float32.
    """
    table = ((np.arange(256, dtype=np.float64) / 255.0 - mean) / std).astype(np.float32)
    return table[pixels[:, None, :, :]]


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
    return Dataset(info.name, split, normalize_images(images, mean, std), labels.astype(np.int32),
                   info.classes, mean, std)


def _load_modelnet(info, split, data_dir, verify):
    (path,) = find_files(info, split, data_dir)
    if verify:
        verify_file(path, info.files[split][0], info.name)
    points, labels, classes = read_modelnet40(path, split)
    return Dataset(info.name, split, points, labels, classes)


def load_dataset(name: str, data_dir=None, split: str = "train", *, normalize: bool = True,
                 verify: bool = True) -> Dataset:
    """Load "mnist", "fashion-mnist" (x: float32 (N, 1, 28, 28)) or "modelnet40" (x: float32 (N, 1024, 3)).

    data_dir: the folder holding the files, or a folder with a <name>/ subfolder; when None, see
    elasticzo.data.search_dirs. verify: check size and SHA-256 against the published files first.
    normalize: images as (pixel/255 - mean) / std with the dataset's training-set statistics; when False,
    pixel/255. ModelNet40 points are used as stored (centred, unit radius), converted to float32.
    """
    info = dataset_info(name)
    check_split(split)
    if info.name == "modelnet40":
        return _load_modelnet(info, split, data_dir, verify)
    return _load_idx(info, split, data_dir, normalize, verify)
