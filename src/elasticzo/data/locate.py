"""Where dataset files are looked for, in order, and the error that lists every place tried."""

import os
from pathlib import Path

from elasticzo.data.errors import DatasetNotFoundError
from elasticzo.data.registry import DatasetInfo

ENV_VAR = "ELASTICZO_DATA"


def cache_dir(name: str) -> Path:
    """~/.cache/elasticzo/<name>: the last place searched and where download_dataset writes by default."""
    return Path.home() / ".cache" / "elasticzo" / name


def repository_root():
    """The clone this package runs from (src/elasticzo/data/ below a pyproject.toml), or None if installed."""
    here = Path(__file__).resolve().parent
    root = here.parents[2]
    if here.parents[1].name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


def installed_dir(name: str) -> Path:
    """<package>/datasets/<name>: where the wheel puts the datasets it carries (MNIST only; see
    cmake/ElasticzoPython.cmake), so an installed package trains from any folder without a download."""
    return Path(__file__).resolve().parents[1] / "datasets" / name


def search_dirs(name: str, data_dir=None) -> list:
    """The folders searched for dataset `name`, in order, without repeats.

    With data_dir: data_dir itself, then data_dir/<name>. Without: every root listed in $ELASTICZO_DATA
    (os.pathsep-separated) + /<name>, ./data/<name>, <repository>/data/<name> when running from a clone,
    <package>/datasets/<name> when installed with it, ~/.cache/elasticzo/<name>.
    """
    if data_dir is not None:
        dirs = [Path(data_dir), Path(data_dir) / name]
    else:
        roots = [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
        dirs = [r / name for r in roots] + [Path.cwd() / "data" / name]
        repo = repository_root()
        if repo is not None:
            dirs.append(repo / "data" / name)
        if installed_dir(name).is_dir():
            dirs.append(installed_dir(name))
        dirs.append(cache_dir(name))
    unique = {}
    for d in dirs:
        unique.setdefault(d.absolute(), None)
    return list(unique)


def find_files(info: DatasetInfo, split: str, data_dir=None) -> list:
    """Paths of the split's files, all from the first folder that holds every one of them."""
    wanted = [f.name for f in info.files[split]]
    tried = [] if data_dir is not None or os.environ.get(ENV_VAR) else [f"  - ${ENV_VAR}: not set"]
    for d in search_dirs(info.name, data_dir):
        missing = [n for n in wanted if not (d / n).is_file()]
        if not missing:
            return [d / n for n in wanted]
        tried.append(f"  - {d}: " + ("no such folder" if not d.is_dir() else "missing " + ", ".join(missing)))
    how = (f"run elasticzo.data.download_dataset({info.name!r}) when online (it writes to {cache_dir(info.name)})"
           if info.mirrors else f"copy {', '.join(wanted)} into one of the folders above")
    raise DatasetNotFoundError(
        f"{info.name} {split} files ({', '.join(wanted)}) not found. Looked in, in this order:\n"
        + "\n".join(tried)
        + f"\nTo fix: pass data_dir=<folder holding them>, set {ENV_VAR} to a folder that contains {info.name}/, "
        + f"or {how}.")
