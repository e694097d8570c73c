"""A user's arrays from an .npz file (x_train, y_train, optional x_test, y_test, optional class_names)."""

import warnings
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from elasticzo.data.arrays import as_dataset
from elasticzo.data.errors import DatasetFormatError, DatasetNotFoundError

ARRAYS = ("x_train", "y_train", "x_test", "y_test", "class_names")


def load_npz(path):
    """(train Dataset, test Dataset or None) from the arrays of an .npz file, as np.savez writes them.

    The classes are `class_names` when the file has it, else "0".."largest label of either split". The arrays
    are checked as elasticzo.data.as_dataset checks them.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            found = list(npz.files)
            arrays = {k: npz[k] for k in ARRAYS if k in found}
    # np.load reports a non-zip file as ValueError (it would need pickle), damaged members as BadZipFile/zlib.error
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
        raise DatasetFormatError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e}); write one with "
                                 f"np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)") from e
    missing = [k for k in ("x_train", "y_train") if k not in arrays]
    if ("x_test" in arrays) != ("y_test" in arrays):
        missing.append("y_test" if "x_test" in arrays else "x_test")
    if missing:
        raise DatasetFormatError(f"{path}: no array named {', '.join(missing)} (it holds: "
                                 f"{', '.join(found) or 'nothing'}); expected x_train, y_train and optionally "
                                 f"x_test, y_test")
    names = tuple(str(c) for c in arrays["class_names"].reshape(-1)) if "class_names" in arrays else None
    train = as_dataset(arrays["x_train"], arrays["y_train"], name=path.name, split="train", classes=names)
    if "x_test" not in arrays:
        return _two_classes(path, train), None
    test = as_dataset(arrays["x_test"], arrays["y_test"], name=path.name, split="test", classes=names)
    if test.sample_shape != train.sample_shape:
        raise DatasetFormatError(f"{path}: x_test has samples of shape {test.sample_shape}, x_train "
                                 f"{train.sample_shape}")
    # Without names, the classes run up to the largest label of either split.
    classes = max(train.classes, test.classes, key=len)
    unseen = sorted(set(np.unique(test.y)) - set(np.unique(train.y)))
    if unseen:
        warnings.warn(f"{path}: y_test holds classes that y_train never does ({', '.join(map(str, unseen[:10]))}"
                      f"{', ...' if len(unseen) > 10 else ''}): the model cannot learn them, and their test samples "
                      f"count as errors", stacklevel=2)
    return _two_classes(path, replace(train, classes=classes)), replace(test, classes=classes)


def _two_classes(path, train):
    """`train`, refused when its classes (from class_names or the labels) make no classifier."""
    if train.num_classes < 2:
        raise DatasetFormatError(f"{path}: the labels hold a single class ({train.classes[0]}); a classifier needs "
                                 f"at least 2 (give class_names to name classes y_train lacks)")
    return train
