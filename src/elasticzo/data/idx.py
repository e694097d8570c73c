"""Reader for gzip-compressed IDX files (the MNIST layout): a big-endian header, then unsigned bytes."""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from elasticzo.data.errors import DatasetNotFoundError, corrupt

IMAGE_MAGIC = 2051  # 0x0803: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # 0x0801: unsigned bytes, 1 dimension


def _decompress(path: Path) -> bytes:
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    with open(path, "rb") as raw:
        try:
            return gzip.GzipFile(fileobj=raw).read()
        # gzip reports damage as BadGzipFile (an OSError), EOFError (truncated) or zlib.error (bad deflate data).
        except (OSError, EOFError, zlib.error) as e:
            raise corrupt(path, f"not a readable gzip file ({type(e).__name__}: {e})") from e


def _read_idx(path, magic: int, ndims: int, kind: str) -> np.ndarray:
    path = Path(path)
    data = _decompress(path)
    header = 4 * (1 + ndims)
    if len(data) < header:
        raise corrupt(path, f"only {len(data)} bytes after decompression, shorter than the {header}-byte IDX header")
    got_magic, *dims = struct.unpack(f">{1 + ndims}I", data[:header])
    if got_magic != magic:
        raise corrupt(path, f"magic number {got_magic} where an IDX {kind} file has {magic}")
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        raise corrupt(path, f"header says {' x '.join(map(str, dims))} = {expected} bytes of {kind} "
                            f"but {len(data) - header} follow it")
    # copy() so callers get a writable array that does not pin the decompressed buffer
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_idx_images(path) -> np.ndarray:
    """uint8 array (count, rows, cols) from an IDX image file (magic 2051)."""
    return _read_idx(path, IMAGE_MAGIC, 3, "images")


def read_idx_labels(path) -> np.ndarray:
    """uint8 array (count,) from an IDX label file (magic 2049)."""
    return _read_idx(path, LABEL_MAGIC, 1, "labels")
