"""A user's numpy arrays as a Dataset: checked once (shapes, dtypes, finite values, labels), held as given (no
copy of x), converted to float32 one batch at a time like the bundled datasets."""

import numpy as np

from elasticzo.data.dataset import Dataset

INPUT_DTYPES = (np.uint8, np.float16, np.float32, np.float64)
MAX_CLASSES = 1 << 16  # labels are class indices; a larger one is almost surely not


def as_dataset(x, y, *, name: str = "arrays", split: str = "train", classes=None) -> Dataset:
    """Dataset over samples x (N, ...) and integer labels y (N,).

    x: uint8 (pixels: batches hold pixel/255) or float16/float32/float64 (batches hold the values as float32);
    other dtypes are refused rather than guessed at. y: any integer dtype, 0 <= y < number of classes.
    classes: names of the classes (default "0".."max label").
    """
    x, y = _array(x, f"{name} x"), _array(y, f"{name} y")
    if x.dtype not in INPUT_DTYPES:
        raise ValueError(f"{name}: x has dtype {x.dtype}; give uint8 pixels or float16/float32/float64 features "
                         f"(convert other numbers with x.astype(np.float32))")
    if x.ndim < 2 or 0 in x.shape[1:]:
        raise ValueError(f"{name}: x must have shape (samples, ...features) with features, got {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{name}: x holds no samples")
    if y.ndim != 1:
        raise ValueError(f"{name}: y must have shape (samples,), got {y.shape}")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: labels must be integers (class indices), got dtype {y.dtype}")
    if len(x) != len(y):
        raise ValueError(f"{name}: x holds {len(x)} samples but y holds {len(y)} labels")
    low = int(np.argmin(y))
    if y[low] < 0:
        raise ValueError(f"{name}: label {int(y[low])} at index {low} is negative; labels are class indices 0..K-1")
    high = int(np.argmax(y))
    if classes is None:
        if y[high] >= MAX_CLASSES:
            raise ValueError(f"{name}: label {int(y[high])} at index {high} would make {int(y[high]) + 1} classes; "
                             f"labels are class indices 0..K-1 (K <= {MAX_CLASSES})")
        classes = tuple(str(c) for c in range(int(y[high]) + 1))
    elif y[high] >= len(classes):
        raise ValueError(f"{name}: label {int(y[high])} at index {high} is outside 0..{len(classes) - 1} "
                         f"({len(classes)} classes)")
    return Dataset(name, split, x, y.astype(np.int32), tuple(classes))


def _array(a, what: str) -> np.ndarray:
    if a is None:
        raise ValueError(f"{what} is missing")
    return a if isinstance(a, np.ndarray) else np.asarray(a)

