"""Reader for gzip-compressed IDX files (the MNIST layout): a big-endian header, then unsigned bytes."""

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from elasticzo.data.errors import DatasetNotFoundError, corrupt

IMAGE_MAGIC = 2051  # 0x0803: unsigned bytes, 3 dimensions
LABEL_MAGIC = 2049  # 0x0801: unsigned bytes, 1 dimension


_CHUNK = 1 << 20
_MAX_GZIP_RATIO = 1100  # deflate expands at most ~1032:1


def _read_exact(stream, view: memoryview) -> int:
    """Fill `view` from `stream` in chunks (no whole-file temporary); the number of bytes that came."""
    filled = 0
    while filled < len(view):
        block = stream.read(min(_CHUNK, len(view) - filled))
        if not block:
            break
        view[filled:filled + len(block)] = block
        filled += len(block)
    return filled


def _read_idx(path, magic: int, ndims: int, kind: str) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file")
    header = 4 * (1 + ndims)
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw)
        try:
            head = stream.read(header)
            if len(head) < header:
                raise corrupt(path, f"only {len(head)} bytes after decompression, shorter than the {header}-byte "
                                    f"IDX header")
            got_magic, *dims = struct.unpack(f">{1 + ndims}I", head)
            if got_magic != magic:
                raise corrupt(path, f"magic number {got_magic} where an IDX {kind} file has {magic}")
            expected = int(np.prod(dims, dtype=np.int64))
            if expected > _MAX_GZIP_RATIO * path.stat().st_size:  # a damaged header must not allocate gigabytes
                raise corrupt(path, f"header says {' x '.join(map(str, dims))} = {expected} bytes of {kind}, more "
                                    f"than a {path.stat().st_size}-byte gzip file can hold")
            # Decompressed straight into the array: the 47 MB of MNIST's training images exist once, not twice.
            out = np.empty(dims, dtype=np.uint8)
            got = _read_exact(stream, memoryview(out.reshape(-1)))
            got += sum(len(block) for block in iter(lambda: stream.read(_CHUNK), b""))  # bytes past the header's size
        # gzip reports damage as BadGzipFile (an OSError), EOFError (truncated) or zlib.error (bad deflate data).
        except (OSError, EOFError, zlib.error) as e:
            raise corrupt(path, f"not a readable gzip file ({type(e).__name__}: {e})") from e
    if got != expected:
        raise corrupt(path, f"header says {' x '.join(map(str, dims))} = {expected} bytes of {kind} "
                            f"but {got} follow it")
    return out


def read_idx_images(path) -> np.ndarray:
    """uint8 array (count, rows, cols) from an IDX image file (magic 2051)."""
    return _read_idx(path, IMAGE_MAGIC, 3, "images")


def read_idx_labels(path) -> np.ndarray:
    """uint8 array (count,) from an IDX label file (magic 2049)."""
    return _read_idx(path, LABEL_MAGIC, 1, "labels")
