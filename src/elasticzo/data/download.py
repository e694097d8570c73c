"""download_dataset(): fetch the original MNIST / Fashion-MNIST files from public mirrors, verified, atomically."""

import hashlib
import os
import tempfile
from pathlib import Path

from elasticzo.data.errors import DownloadError
from elasticzo.data.integrity import is_intact
from elasticzo.data.locate import ENV_VAR, cache_dir
from elasticzo.data.registry import dataset_info

_CHUNK = 1 << 16


class _Mismatch(Exception):
    """A mirror answered, but with bytes that are not the published file."""


def _fetch(url: str, target: Path, known, timeout: float) -> None:
    """Stream url into a temporary file beside target; move it into place only once size and SHA-256 match."""
    import urllib.request  # here, not at import: urllib loads ssl, 4 MB resident that training never needs
    fd, tmp = tempfile.mkstemp(prefix=f".{known.name}.", suffix=".part", dir=target.parent)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(_CHUNK), b""):
                digest.update(block)
                size += len(block)
                out.write(block)
        if size != known.size or digest.hexdigest() != known.sha256:
            raise _Mismatch(f"got {size} bytes with SHA-256 {digest.hexdigest()}, "
                            f"expected {known.size} bytes with SHA-256 {known.sha256}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def download_dataset(name: str, dest=None, *, mirrors=None, timeout: float = 30.0) -> Path:
    """Download every file of dataset `name` into dest (default ~/.cache/elasticzo/<name>); return dest.

    Files already there with the published SHA-256 are kept. Each missing file is tried from each mirror in
    turn (`mirrors`: base URLs, default the well-known public ones) and written under its own name only after
    its checksum matched, so an interrupted download never leaves a partial file behind.
    """
    import http.client  # imported here for the reason given in _fetch
    import urllib.error

    info = dataset_info(name)
    mirrors = info.mirrors if mirrors is None else tuple(mirrors)
    if not mirrors:
        raise ValueError(
            f"{info.name} has no public mirror: copy {', '.join(f.name for f in info.all_files())} by hand "
            f"into a folder {info.name}/ and point {ENV_VAR} at its parent")
    dest = Path(dest) if dest is not None else cache_dir(info.name)
    dest.mkdir(parents=True, exist_ok=True)
    for known in info.all_files():
        target = dest / known.name
        if is_intact(target, known):
            continue
        failures, reached = [], False  # reached: some mirror answered, so the network is up
        for base in mirrors:
            url = base.rstrip("/") + "/" + known.name
            try:
                _fetch(url, target, known, timeout)
                break
            except _Mismatch as e:
                failures.append(f"  - {url}: wrong content, {e}")
                reached = True
            except urllib.error.HTTPError as e:
                failures.append(f"  - {url}: HTTP {e.code} {e.reason}")
                reached = True
            # other URLErrors, timeouts and refused connections are OSErrors; a cut transfer is HTTPException
            except (OSError, http.client.HTTPException) as e:
                failures.append(f"  - {url}: {getattr(e, 'reason', e)}")
        else:
            raise DownloadError(
                f"could not download {info.name}/{known.name} into {dest}:\n" + "\n".join(failures) + "\n"
                + ("" if reached else "No mirror could be reached: are you offline? ")
                + f"Copy the original files by hand into {dest} (or a folder named {info.name}/ under "
                f"${ENV_VAR}); load_dataset checks their SHA-256.")
    return dest
