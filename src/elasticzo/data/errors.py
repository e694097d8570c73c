"""Exceptions of the data layer; every message names the file, where it was looked for and what to do."""

from pathlib import Path

REPLACE_HINT = (
    "Replace it with an intact copy: delete it and run elasticzo.data.download_dataset(name, dest) when online, "
    "or copy the original file again."
)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is in none of the places searched (the message lists them all)."""


class DatasetFormatError(ValueError):
    """A dataset file exists but is damaged or not what it claims to be."""


class ChecksumError(DatasetFormatError):
    """A known dataset file differs from the published one (size or SHA-256)."""


class DownloadError(OSError):
    """No mirror delivered an intact copy of a file (offline, or the mirror served something else)."""


def corrupt(path: Path, problem: str) -> DatasetFormatError:
    """The standard 'this file is damaged' error."""
    return DatasetFormatError(f"{path}: {problem}. {REPLACE_HINT}")
