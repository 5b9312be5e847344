"""Uploaded zips of an ImageFolder: refused from their directory (zip-slip, links, bombs), extracted on a budget."""

from __future__ import annotations

import io
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from .containers import DatasetError
from .folders import env_int, is_ignored
from .paths import inside, shown

# Budgets for an uploaded zip, checked from its directory and again while it is read: what it unpacks to
# and how many entries it holds. An upload is at most 50 MB (the server's maxUploadSize setting); a
# dataset that needs more belongs in a server folder. A big box raises them through the environment.
ZIP_BYTES_ENV = "RESNET_EXPLORER_MAX_ZIP_MB"
ZIP_FILES_ENV = "RESNET_EXPLORER_MAX_ZIP_FILES"
MAX_ZIP_BYTES = 1024 ** 3  # uncompressed, all members together
MAX_ZIP_FILES = 50_000
_CHUNK = 1 << 20
_EOCD, _ZIP64_LOCATOR, _ZIP64_EOCD = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"


def zip_limits() -> tuple[int, int]:
    """(bytes, files) an uploaded zip may unpack to: the defaults, or $RESNET_EXPLORER_MAX_ZIP_MB and
    $RESNET_EXPLORER_MAX_ZIP_FILES when set to positive whole numbers."""
    return (env_int(ZIP_BYTES_ENV, MAX_ZIP_BYTES // 1024 ** 2) * 1024 ** 2, env_int(ZIP_FILES_ENV, MAX_ZIP_FILES))


def _zip_member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member may not be extracted (escaping the folder, absolute, a link), or None."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return f"'{shown(info.filename)}' is an absolute path"
    if ".." in path.parts:
        return f"'{shown(info.filename)}' points outside the archive's folder ('..')"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return f"'{shown(info.filename)}' is a symbolic link"
    if info.flag_bits & 0x1:
        return f"'{shown(info.filename)}' is password-protected"
    return None


def _declared_directory(source: Any) -> tuple[int, int] | None:
    """(entries, directory bytes) from the zip's end record, read before zipfile parses the directory
    (which costs memory per entry), or None when there is no end record."""
    try:
        source.seek(0, io.SEEK_END)
        size = source.tell()
        tail_start = max(0, size - (1 << 16) - 22)
        source.seek(tail_start)
        tail = source.read()
    except (OSError, ValueError):
        return None
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return None
    entries, cd_size = struct.unpack("<HI", tail[at + 10:at + 16])
    locator = at - 20
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and locator >= 0 and tail[locator:locator + 4] == _ZIP64_LOCATOR:
        (offset,) = struct.unpack("<Q", tail[locator + 8:locator + 16])
        try:
            source.seek(offset)
            record = source.read(56)
        except (OSError, ValueError, OverflowError):
            return None
        if record[:4] == _ZIP64_EOCD and len(record) == 56:
            entries, cd_size = struct.unpack("<QQ", record[32:48])
    return int(entries), int(cd_size)


def extract_zip(data: bytes | str | Path, dest: str | Path, name: str | None = None) -> Path:
    """Extract an uploaded zip safely into `dest`; returns the dataset's root folder.

    The whole archive is refused (nothing is written) when any member would land outside
    `dest` (zip-slip: '..' or absolute paths), is a symbolic link or encrypted, or when its directory
    declares more entries or bytes than zip_limits() allow. The bytes are counted again as they are
    read, and extraction stops at the budget (what was written is removed). Messages name `name`
    (the upload's own file name), else the zip file's name. The root is the single top-level folder
    when the zip wraps everything in one, else `dest`.
    """
    dest = Path(dest)
    label = _zip_label(data, name)
    max_bytes, _ = zip_limits()
    archive, members = _checked_archive(data, label)
    with archive:
        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        try:
            _extract_members(archive, members, dest.resolve(), label, max_bytes)
        except BaseException:
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            raise
    return _dataset_root(dest)


def check_zip(data: bytes | str | Path, name: str | None = None) -> None:
    """DatasetError now if the zip would be refused by extract_zip from its directory alone (not a zip,
    too many entries, too many bytes declared, zip-slip, links, passwords): milliseconds, nothing written,
    so a page can refuse an upload at once and delete it."""
    archive, _ = _checked_archive(data, _zip_label(data, name))
    archive.close()


def _zip_label(data: bytes | str | Path, name: str | None) -> str:
    return shown(name or (Path(data).name if isinstance(data, (str, Path)) else "the uploaded zip"))


def _checked_archive(data: bytes | str | Path, label: str) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """The open archive and its members, once its end record and directory passed every check."""
    max_bytes, max_files = zip_limits()
    source = _zip_source(data)
    declared = _declared_file(source) if isinstance(source, str) else _declared_directory(source)
    if declared is not None:
        entries, cd_size = declared
        # A directory entry takes at least 46 bytes plus its name: a directory far larger than the allowed
        # count needs means far more entries than its end record admits.
        if entries > max_files:
            raise DatasetError(_too_many(label, f"{entries:,} entries", max_files))
        if cd_size > max_files * 1024 + _CHUNK:
            raise DatasetError(_too_many(label, f"a {cd_size / 1e6:,.0f} MB list of entries", max_files))
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise DatasetError(f"{label}: not a readable .zip archive ({shown(exc)}); zip the dataset folder again "
                           "and upload that") from None
    try:
        members = archive.infolist()
        if len(members) > max_files:
            raise DatasetError(_too_many(label, f"{len(members):,} entries", max_files))
        for info in members:
            problem = _zip_member_problem(info)
            if problem:
                raise DatasetError(f"{label}: the zip was refused because {problem}; a dataset zip must contain "
                                   "only regular files inside one folder tree. Re-create it from the dataset folder")
        total = sum(info.file_size for info in members)
        if total > max_bytes:
            raise DatasetError(_too_big(label, f"would unpack to {total / 2 ** 20:,.0f} MB", max_bytes))
    except BaseException:
        archive.close()
        raise
    return archive, members


def _extract_members(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], root: Path, label: str,
                     max_bytes: int) -> None:
    """Write every member under `root`, counting the bytes as they come out of the decompressor."""
    written = 0
    for info in members:
        target = (root / info.filename.replace("\\", "/")).resolve()
        if not inside(target, root):
            raise DatasetError(f"{label}: the zip was refused because '{shown(info.filename)}' points outside the "
                               "archive's folder")
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > max_bytes:
                        raise DatasetError(_too_big(label, "unpacks to more than its directory declares", max_bytes))
                    out.write(chunk)
        except (zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError, zlib.error) as exc:
            raise DatasetError(f"{label}: the zip is damaged: '{shown(info.filename)}' could not be extracted "
                               f"({shown(exc)}); zip the dataset folder again") from None
        except OSError as exc:
            raise DatasetError(f"{label}: '{shown(info.filename)}' could not be written on the server "
                               f"({shown(exc.strerror or exc)})") from None


def _too_many(label: str, what: str, limit: int) -> str:
    return (f"{label}: the zip holds {what}, more than the {limit:,} files allowed for an upload "
            f"(set by {ZIP_FILES_ENV} on the server); use fewer images, or a folder on the server")


def _too_big(label: str, what: str, limit: int) -> str:
    return (f"{label}: the zip {what}, more than the {limit / 2 ** 20:,.0f} MB allowed for an upload "
            f"(set by {ZIP_BYTES_ENV} on the server); use a smaller dataset or a folder on the server")


def _declared_file(path: str) -> tuple[int, int] | None:
    try:
        with open(path, "rb") as handle:
            return _declared_directory(handle)
    except OSError:
        return None


def _zip_source(data: bytes | str | Path) -> Any:
    """A file name or an in-memory buffer zipfile can read."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data))
    return str(data)


def _dataset_root(folder: Path) -> Path:
    """Descend through a single wrapping folder (zip of 'mydata/' rather than of its contents)."""
    entries = [p for p in folder.iterdir() if not is_ignored(p.name)]
    if len(entries) == 1 and entries[0].is_dir():
        inner = entries[0]
        if any(p.is_dir() and not is_ignored(p.name) for p in inner.iterdir()):
            return inner
    return folder
