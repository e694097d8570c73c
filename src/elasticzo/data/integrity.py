"""Size and SHA-256 checks of dataset files against the published values."""

import hashlib
from pathlib import Path

from elasticzo.data.errors import ChecksumError
from elasticzo.data.registry import KnownFile

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def is_intact(path: Path, known: KnownFile) -> bool:
    """Whether `path` exists and is byte for byte the published `known` file."""
    path = Path(path)
    return path.is_file() and path.stat().st_size == known.size and sha256_of(path) == known.sha256


def verify_file(path: Path, known: KnownFile, dataset: str) -> None:
    """Raise ChecksumError unless `path` is byte for byte the published `known` file."""
    remedy = (
        f"Delete it and run elasticzo.data.download_dataset({dataset!r}, {str(Path(path).parent)!r}) when online, "
        "or copy the original again; pass verify=False only if you know the content is right "
        "(for example the same data re-compressed)."
    )
    size = Path(path).stat().st_size
    if size != known.size:
        raise ChecksumError(
            f"{path}: {size} bytes where the published {known.name} has {known.size} "
            f"(truncated or a different file). {remedy}")
    got = sha256_of(path)
    if got != known.sha256:
        raise ChecksumError(
            f"{path}: SHA-256 {got} differs from the published {known.sha256} (damaged or a different version). "
            f"{remedy}")
