"""Downloading official dataset files: md5-checked, atomic, mirrors tried in order.

``_fetch_url`` is the only network access; tests replace it
(``monkeypatch.setattr(nnmargin.datasets._download, "_fetch_url", ...)``).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import BinaryIO, Sequence

from ._common import DATA_ENV_VAR, DatasetNotFoundError

DOWNLOAD_TIMEOUT_S = 60.0


def _fetch_url(url: str, out: BinaryIO, timeout: float) -> None:
    """Stream ``url`` into ``out``.  The only network access; tests replace it."""
    request = urllib.request.Request(url, headers={"User-Agent": "nnmargin"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        while True:
            chunk = response.read(1 << 20)
            if not chunk:
                return
            out.write(chunk)


def _md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _obtain(folder: Path, filename: str, base_urls: Sequence[str], md5: str,
            download: bool, also_accepted: str = "") -> Path:
    """Download ``filename`` into ``folder`` (md5-checked, atomic) or explain why not."""
    urls = [base + filename for base in base_urls]
    how_to_fix = (f"To fix: download {filename} (md5 {md5}) from {' or '.join(urls)} and place "
                  f"it in {folder}{also_accepted}, or set {DATA_ENV_VAR} (or pass data_dir=) to "
                  f"a directory whose '{folder.name}/' sub-folder holds the files.")
    if not download:
        raise DatasetNotFoundError(
            f"{filename} not found in {folder} and download=False.\n{how_to_fix}")
    failures = []
    for url in urls:
        temp_path = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # A temp file in the same folder, renamed only once verified, so an
            # interrupted or corrupt download never looks like a valid file.
            fd, temp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
            temp_path = Path(temp_name)
            print(f"nnmargin: downloading {url} -> {folder}", file=sys.stderr)
            with os.fdopen(fd, "wb") as out:
                _fetch_url(url, out, DOWNLOAD_TIMEOUT_S)
            actual_md5 = _md5_of(temp_path)
            if actual_md5 != md5:
                failures.append(f"{url}: md5 mismatch (got {actual_md5}, expected {md5})")
                continue
            os.replace(temp_path, folder / filename)
            return folder / filename
        except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, disk errors
            failures.append(f"{url}: {exc}")
        finally:
            if temp_path is not None and temp_path.exists():
                temp_path.unlink()
    raise DatasetNotFoundError(
        f"{filename} not found in {folder} and could not be downloaded:\n  "
        + "\n  ".join(failures) + "\n" + how_to_fix)
