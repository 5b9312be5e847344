"""ImageFolder datasets: a folder of class sub-folders, or a zip of one, decoded safely."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch

from .containers import DataBundle, DatasetError, ImageSet, Progress, channel_stats, stratified_split
from .images import ImageError, load_image
from .transforms import resize_crop

MAX_ZIP_FILES = 200_000
MAX_ZIP_BYTES = 4 * 1024 ** 3  # uncompressed; a guard against zip bombs
_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}


def _is_ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def _zip_member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a member may not be extracted (escaping the folder, absolute, a link), or None."""
    name = info.filename.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return f"'{info.filename}' is an absolute path"
    if ".." in path.parts:
        return f"'{info.filename}' points outside the archive's folder ('..')"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return f"'{info.filename}' is a symbolic link"
    return None


def extract_zip(data: bytes | str | Path, dest: str | Path) -> Path:
    """Extract an uploaded zip safely into `dest`; returns the dataset's root folder.

    The whole archive is refused (nothing is written) when any member would land outside
    `dest` (zip-slip: '..' or absolute paths), is a symbolic link, or the archive is a zip bomb.
    The root is the single top-level folder when the zip wraps everything in one, else `dest`.
    """
    dest = Path(dest)
    try:
        archive = zipfile.ZipFile(_zip_source(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise DatasetError(f"the upload is not a readable .zip archive ({exc}); zip the dataset folder again") from None
    with archive:
        members = archive.infolist()
        for info in members:
            problem = _zip_member_problem(info)
            if problem:
                raise DatasetError(f"the zip was refused because {problem}; a dataset zip must contain only "
                                   "regular files inside one folder tree. Re-create it from the dataset folder")
        if len(members) > MAX_ZIP_FILES:
            raise DatasetError(f"the zip holds {len(members):,} entries, more than the {MAX_ZIP_FILES:,} allowed")
        total = sum(info.file_size for info in members)
        if total > MAX_ZIP_BYTES:
            raise DatasetError(f"the zip would unpack to {total / 1e9:.1f} GB, more than the "
                               f"{MAX_ZIP_BYTES / 1e9:.0f} GB allowed; use a smaller dataset or a server folder")
        dest.mkdir(parents=True, exist_ok=True)
        resolved = dest.resolve()
        for info in members:
            target = (resolved / info.filename.replace("\\", "/")).resolve()
            if resolved != target and resolved not in target.parents:
                raise DatasetError(f"the zip was refused because '{info.filename}' points outside the archive's folder")
            try:
                archive.extract(info, resolved)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
                raise DatasetError(f"the zip is damaged: '{info.filename}' could not be extracted ({exc})") from None
    return _dataset_root(dest)


def _zip_source(data: bytes | str | Path) -> Any:
    """A file name or an in-memory buffer zipfile can read."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(data))
    return str(data)


def _dataset_root(folder: Path) -> Path:
    """Descend through a single wrapping folder (zip of 'mydata/' rather than of its contents)."""
    entries = [p for p in folder.iterdir() if not _is_ignored(p.name)]
    if len(entries) == 1 and entries[0].is_dir():
        inner = entries[0]
        if any(p.is_dir() and not _is_ignored(p.name) for p in inner.iterdir()):
            return inner
    return folder


def _decode(data: bytes, name: str) -> Any:
    """RGB PIL image from bytes, through the app's guarded decoder."""
    return load_image(data, name)


def _class_folders(root: Path) -> list[Path]:
    if not root.exists():
        raise DatasetError(f"image folder {root} does not exist; give the path of a folder holding one "
                           "sub-folder per class")
    if not root.is_dir():
        raise DatasetError(f"{root} is a file, not a folder; give a folder holding one sub-folder per class "
                           "(or upload a .zip of it)")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not _is_ignored(p.name)), key=lambda p: p.name)
    if not folders:
        loose = [p.name for p in root.iterdir() if p.is_file() and not _is_ignored(p.name)]
        what = f"it holds {len(loose)} loose file(s) but no sub-folders" if loose else "it is empty"
        raise DatasetError(f"image folder {root}: {what}. Put the images in one sub-folder per class, "
                           "e.g. cats/*.jpg and dogs/*.jpg")
    return folders


def _class_files(folder: Path) -> list[Path]:
    """Every regular file under the class folder (sub-folders too), sorted for determinism."""
    files = [p for p in folder.rglob("*")
             if p.is_file() and not any(_is_ignored(part) for part in p.relative_to(folder).parts)]
    return sorted(files)


def load_image_folder(path: str | Path, image_size: int = 64, val_fraction: float = 0.2, seed: int = 0,
                      progress: Progress | None = None) -> DataBundle:
    """Images from `path/<class>/*`, decoded safely, resized and centre-cropped to `image_size`.

    Unreadable files are skipped, each with a message in `skipped`. The split is stratified:
    each class gives round(val_fraction * its count) images to validation (at least one when
    it has two or more), chosen by `seed`.
    """
    root = Path(path).expanduser()
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 8 <= image_size <= 1024:
        raise DatasetError(f"image size: {image_size!r} must be a whole number from 8 to 1024")
    if not 0.0 < float(val_fraction) < 1.0:
        raise DatasetError(f"validation fraction: {val_fraction!r} must be between 0 and 1 (e.g. 0.2)")
    folders = _class_folders(root)
    files = [(label, f) for label, folder in enumerate(folders) for f in _class_files(folder)]
    arrays: list[np.ndarray] = []
    labels: list[int] = []
    skipped: list[str] = []
    for i, (label, file) in enumerate(files):
        name = str(file.relative_to(root))
        try:
            arrays.append(resize_crop(_decode(file.read_bytes(), name), image_size))
            labels.append(label)
        except ImageError as exc:
            skipped.append(str(exc))
        except OSError as exc:
            skipped.append(f"{name}: could not be read ({exc.strerror or exc}); it was skipped")
        if progress is not None and (i % 50 == 0 or i == len(files) - 1):
            progress((i + 1) / len(files), f"decoding images {i + 1}/{len(files)}")
    present = sorted(set(labels))
    empty = [folders[k].name for k in range(len(folders)) if k not in present]
    if len(present) < 2:
        found = ", ".join(f"{folders[k].name} ({labels.count(k)})" for k in present) or "none"
        raise DatasetError(
            f"image folder {root}: classification needs at least two classes with readable images; found "
            f"{found} among {len(folders)} sub-folder(s), {len(skipped)} unreadable file(s) skipped. "
            "Add a sub-folder of images for each class")
    # Classes without a single readable image are dropped so labels stay 0..k-1.
    remap = {old: new for new, old in enumerate(present)}
    classes = [folders[k].name for k in present]
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    label_tensor = torch.tensor([remap[k] for k in labels], dtype=torch.int64)
    train_idx, val_idx = stratified_split(label_tensor, val_fraction, seed)
    train, val = ImageSet(images[train_idx], label_tensor[train_idx]), ImageSet(images[val_idx], label_tensor[val_idx])
    mean, std = channel_stats(train.images)
    description = {
        "kind": "imagefolder", "root": str(root), "n_train": len(train), "n_val": len(val), "seed": int(seed),
        "image_size": image_size, "num_classes": len(classes), "skipped": len(skipped),
        "val_fraction": float(val_fraction), "empty_classes": empty,
    }
    return DataBundle(train, val, classes, mean, std, description, skipped)
