"""Reader for modelnet40_1024.npz: points (N, 1024, 3) as stored (float16), uint8 labels -> int32, class names."""

import zipfile
import zlib
from pathlib import Path

import numpy as np

from elasticzo.data.errors import corrupt

POINTS_PER_SHAPE = 1024


def read_modelnet40(path: Path, split: str):
    """(points (N, 1024, 3) in the file's dtype, labels int32 (N,), class names tuple) of one split."""
    keys = (f"{split}_points", f"{split}_labels", "class_names")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in keys if k in npz.files}
    # np.load reports a non-zip file as ValueError (it would need pickle), damaged members as BadZipFile/zlib.error
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError) as e:
        raise corrupt(path, f"not a readable npz archive ({type(e).__name__}: {e})") from e
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise corrupt(path, f"no array named {', '.join(missing)} in the archive")
    points, labels, names = (arrays[k] for k in keys)
    if points.ndim != 3 or points.shape[1:] != (POINTS_PER_SHAPE, 3):
        raise corrupt(path, f"{split}_points has shape {points.shape}, expected (N, {POINTS_PER_SHAPE}, 3)")
    if labels.shape != (len(points),):
        raise corrupt(path, f"{split}_labels has shape {labels.shape} for {len(points)} shapes")
    if len(labels) and int(labels.max()) >= len(names):
        raise corrupt(path, f"label {int(labels.max())} outside 0..{len(names) - 1}")
    return points, labels.astype(np.int32), tuple(str(n) for n in names)
