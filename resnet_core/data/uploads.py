"""Uploaded files on disk: saved under their own (safe) name, removed when refused, replaced or stale."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from .containers import DatasetError
from .zips import check_zip

EXTRACT_PREFIX = "resnet_explorer_zip_"  # as data/spec.py names its temporary extraction folders
UPLOADS_ENV = "RESNET_EXPLORER_UPLOADS_DIR"
# Uploads older than this are removed by clean_uploads() (a session that went away leaves its file behind).
MAX_AGE_S = 24 * 3600.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._+()=, -]+")


def uploads_dir() -> Path:
    """The folder uploads are kept in: $RESNET_EXPLORER_UPLOADS_DIR, else <temp>/resnet-explorer-uploads."""
    value = os.environ.get(UPLOADS_ENV, "").strip()
    return Path(value).expanduser() if value else Path(tempfile.gettempdir()) / "resnet-explorer-uploads"


def safe_file_name(name: str, suffix: str = ".zip") -> str:
    """The upload's own file name, kept recognisable but made safe as a path and in a message:
    no folders, no markup characters, at most 80 characters, ending in `suffix`."""
    base = _UNSAFE.sub("_", Path(str(name).replace("\\", "/")).name).strip(" ._") or "upload"
    if base.lower().endswith(suffix):
        base = base[: -len(suffix)].rstrip(" ._") or "upload"
    return f"{base[:80 - len(suffix)]}{suffix}"


def save_upload(data: bytes, name: str = "upload.zip", owner: str = "", suffix: str = ".zip") -> Path:
    """An uploaded file written once, as <uploads>/<key>/<its own name>, and reused on a rerun.

    The key is the content's hash plus `owner` (a session's id): the same file saved again by the same
    owner is the same path (the Train page reruns on every click), while another session's copy is its
    own, so discarding one never pulls a file from under another session's queued run. The file's own
    name is kept, so messages about it (from the worker too) name what the visitor uploaded."""
    key = hashlib.sha256(owner.encode() + b"\0" + data).hexdigest()[:16]
    folder = uploads_dir() / key
    path = folder / safe_file_name(name, suffix)
    if path.is_file() and path.stat().st_size == len(data):
        os.utime(path)  # in use: not stale
        return path
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{path.name}.{os.getpid()}.part"
    partial.write_bytes(data)
    os.replace(partial, path)  # atomic: a worker never reads half a file
    return path


def replace_upload(data: bytes, name: str, owner: str, previous: str | Path | None) -> tuple[Path | None, str | None]:
    """A new zip upload in place of `previous` (removed): saved, checked from its directory at once, and removed
    again when refused, so nothing refused stays on the server. (its path, None) or (None, why it was refused)."""
    discard_upload(previous)
    clean_uploads(max_age_s=MAX_AGE_S)  # ones closed tabs left behind
    path = save_upload(data, name, owner=owner)
    try:
        check_zip(path, name)
    except DatasetError as exc:
        discard_upload(path)
        return None, str(exc)
    return path, None


def is_upload(path: str | Path) -> bool:
    """Whether `path` is a file saved by save_upload (and so may be discarded)."""
    try:
        resolved = Path(path).resolve()
        return resolved.parent.parent == uploads_dir().resolve()
    except (OSError, ValueError):
        return False


def discard_upload(path: str | Path | None) -> bool:
    """Remove an upload saved by save_upload (its key folder with it); anything else is left alone.
    True when something was removed."""
    if path is None or not is_upload(path):
        return False
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return not folder.exists()


def clean_uploads(max_age_s: float | None = None) -> int:
    """Remove uploads older than `max_age_s` (None: all of them, as at server start); returns how many.

    Call it once when the server starts (nothing can still need the last server's uploads) and now and
    then after (stale ones only): refused uploads are removed at once by their page, but a closed tab
    leaves its accepted upload behind. Zip extraction folders a killed worker left in the temporary
    folder (over an hour old) go too."""
    now = time.time()
    removed = _clean_extractions(now)
    folder = uploads_dir()
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        try:
            if max_age_s is not None and now - _last_touched(entry) < max_age_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed += 1
        except OSError:
            continue
    return removed


def _last_touched(entry: Path) -> float:
    """The newest modification time of an upload's key folder or the files in it."""
    times = [entry.stat().st_mtime]
    if entry.is_dir():
        times += [child.stat().st_mtime for child in entry.iterdir()]
    return max(times)


def _clean_extractions(now: float, max_age_s: float = 3600.0) -> int:
    """Remove <temp>/resnet_explorer_zip_<pid>_* folders whose worker process has ended (a server restarted while
    a worker extracted leaves them half-written), and any older than `max_age_s` (a live load is minutes old)."""
    removed = 0
    for entry in Path(tempfile.gettempdir()).glob(f"{EXTRACT_PREFIX}*"):
        try:
            pid = entry.name[len(EXTRACT_PREFIX):].split("_", 1)[0]
            orphan = pid.isdigit() and not _alive(int(pid))
            if entry.is_dir() and not entry.is_symlink() and (orphan or now - entry.stat().st_mtime > max_age_s):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process: alive
    return True
