"""Reading files of a run folder as outside input: regular files only, never more than a size cap.

A run folder can be written by anyone who can write the runs folder (a terminal, a copied folder, a worker
gone wrong). What the pages read from it must not hang or swallow the server: config.json as a symbolic
link to /dev/zero once grew the server to 5 GB, a FIFO there hung every page that listed runs. So each file
is opened without following a final symbolic link and without blocking (O_NOFOLLOW | O_NONBLOCK), checked to
be a regular file on the open descriptor (fstat, so it cannot be swapped between check and read), and read
no further than its kind's cap. A symbolic link that resolves inside the run folder is followed (a copied
folder may hold one); one leading out is refused.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# Each kind's cap, far above what a run writes: config.json is a few KB; metrics.jsonl about 200 bytes a step
# (64,000 steps, the paper's CIFAR recipe: 13 MB); block_grads.jsonl one row per recorded step; provenance and
# demo times a few KB. A checkpoint's cap is resnet152's 240 MB with room (it is also checked by its records).
MAX_CONFIG_BYTES = 16 * 1024**2
MAX_METRICS_BYTES = 64 * 1024**2
MAX_BLOCK_GRADS_BYTES = 64 * 1024**2
MAX_SMALL_JSON_BYTES = 1024**2
MAX_CHECKPOINT_BYTES = 2 * 1024**3

_CHUNK = 1024**2


class UnsafeFileError(OSError):
    """A run-folder file that is not read: not a regular file, a link leading out, or over its cap. An OSError,
    so every reader that already treats an unreadable file as damaged treats this one the same way."""

    def __init__(self, path: Path, why: str):
        super().__init__(errno.EPERM, why, str(path))
        self.why = why

    def __str__(self) -> str:
        return f"{Path(self.filename).name} {self.why}"


def _open_regular(path: Path, folder: Path | None) -> int:
    """A descriptor of `path` opened read-only, never blocking, known to be a regular file."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # FileNotFoundError and the rest: as they are
            raise
        # A symbolic link: followed only when it resolves inside the folder it belongs to.
        base = Path(os.path.realpath(folder if folder is not None else path.parent))
        target = Path(os.path.realpath(path))
        if target != base and base not in target.parents:
            raise UnsafeFileError(path, "is a symbolic link leading out of its run folder; it was not read") from None
        try:
            fd = os.open(target, flags)
        except OSError as inner:
            if inner.errno == errno.ELOOP:
                raise UnsafeFileError(path, "is a chain of symbolic links; it was not read") from None
            raise
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket or other special file")
        raise UnsafeFileError(path, f"is {what}, not a regular file; it was not read")
    return fd


def unreadable(path: str | Path, folder: str | Path | None = None) -> str | None:
    """Why `path` would not be read ("metrics.jsonl is missing", "... is a FIFO, not a regular file; ..."), or
    None when it is a regular file inside its folder. Opens it without blocking and reads nothing."""
    path = Path(path)
    try:
        os.close(_open_regular(path, Path(folder) if folder is not None else None))
    except FileNotFoundError:
        return f"{path.name} is missing"
    except UnsafeFileError as exc:
        return str(exc)
    except OSError as exc:
        return f"{path.name} could not be read ({exc.strerror or exc})"
    return None


def _read_at_most(fd: int, count: int) -> bytes:
    """Up to `count` bytes from `fd`'s position: in chunks, so a file that lies about its size (a /proc file
    says 0) still costs no more than `count`."""
    parts, left = [], count
    while left > 0:
        try:
            part = os.read(fd, min(_CHUNK, left))
        except BlockingIOError:  # a regular file never blocks; a descriptor that does is read no further
            break
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def read_bytes(path: str | Path, limit: int, folder: str | Path | None = None) -> bytes:
    """The whole of the regular file `path`, or UnsafeFileError if it is not one or holds more than `limit`
    bytes (what is read never exceeds limit + 1). `folder`: the run folder a symbolic link must stay in
    (default: the file's own folder). FileNotFoundError and other OSErrors pass through."""
    path = Path(path)
    fd = _open_regular(path, Path(folder) if folder is not None else None)
    try:
        if os.fstat(fd).st_size > limit:
            raise UnsafeFileError(path, f"is larger than {_size(limit)}; it was not read")
        data = _read_at_most(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UnsafeFileError(path, f"is larger than {_size(limit)}; it was not read")
    return data


def read_text(path: str | Path, limit: int, folder: str | Path | None = None, errors: str = "strict") -> str:
    """read_bytes decoded as UTF-8 (UnicodeDecodeError, a ValueError, when it is not and errors='strict')."""
    return read_bytes(path, limit, folder).decode("utf-8", errors=errors)


def read_from(path: str | Path, offset: int, count: int, folder: str | Path | None = None) -> bytes:
    """Up to `count` bytes of the regular file `path` from byte `offset`: how a follower reads what was appended
    since its last poll, never more than `count` at once."""
    path = Path(path)
    fd = _open_regular(path, Path(folder) if folder is not None else None)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        return _read_at_most(fd, count)
    finally:
        os.close(fd)


def _size(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB" if n >= 1024**2 else f"{n:,} bytes"


__all__ = [
    "MAX_BLOCK_GRADS_BYTES", "MAX_CHECKPOINT_BYTES", "MAX_CONFIG_BYTES", "MAX_METRICS_BYTES", "MAX_SMALL_JSON_BYTES",
    "UnsafeFileError", "read_bytes", "read_from", "read_text", "unreadable",
]
