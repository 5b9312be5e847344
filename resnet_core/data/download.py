"""Downloads: chunked, atomic, checksummed, with a progress callback and a short timeout."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .containers import DownloadError, Progress

DOWNLOAD_TIMEOUT_S = 15.0


def _opener() -> urllib.request.OpenerDirector:
    # Built per call, not urllib's cached global one, so proxy settings made after start-up count.
    return urllib.request.build_opener()


def download_file(url: str, dest: str | Path, progress: Progress | None = None, timeout: float = DOWNLOAD_TIMEOUT_S,
                  md5: str | None = None, sha256_prefix: str | None = None) -> Path:
    """Download `url` to `dest` (atomically: a partial file never sits at `dest`).

    Raises DownloadError when the network is unreachable, a read stalls for `timeout`
    seconds, or the file's checksum differs from `md5` / starts differently from `sha256_prefix`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "resnet-explorer"})
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    md5_hash, sha_hash = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, _opener().open(request, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                md5_hash.update(chunk)
                sha_hash.update(chunk)
                done += len(chunk)
                if progress is not None:
                    fraction = done / total if total else 0.0
                    progress(min(fraction, 1.0), f"downloading {dest.name}: {done / 1e6:.1f}"
                             + (f" / {total / 1e6:.1f} MB" if total else " MB"))
        if md5 is not None and md5_hash.hexdigest() != md5:
            raise DownloadError(f"{dest.name} arrived corrupted (MD5 {md5_hash.hexdigest()}, expected {md5})")
        if sha256_prefix is not None and not sha_hash.hexdigest().startswith(sha256_prefix):
            raise DownloadError(f"{dest.name} arrived corrupted (SHA-256 does not start with {sha256_prefix})")
        os.replace(tmp, dest)
    except DownloadError:
        raise
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DownloadError(f"could not download {url}: {_network_reason(exc, timeout)}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)  # gone already after a successful rename
    return dest


def _network_reason(exc: BaseException, timeout: float) -> str:
    """What a person should understand from a failed request."""
    import socket

    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, socket.gaierror):
        return f"the host could not be found, so there is probably no internet connection ({reason})"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"no answer within {timeout:.0f} s"
    if isinstance(reason, ConnectionRefusedError):
        return f"the connection was refused (a proxy or firewall in the way?) ({reason})"
    return str(reason)
