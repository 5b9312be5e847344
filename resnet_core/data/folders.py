"""ImageFolder datasets: a folder of class sub-folders, decoded safely into one in-memory set."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .containers import DataBundle, DatasetError, ImageSet, Progress, channel_stats, stratified_split
from .images import ImageError, load_image
from .paths import data_root, inside, shown
from .transforms import resize_crop

_IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}


def env_int(name: str, default: int) -> int:
    """$name as a positive whole number, else `default` (a mistyped setting never stops the server)."""
    try:
        value = int(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def is_ignored(name: str) -> bool:
    return name.startswith(".") or name in _IGNORED_NAMES


def _decode(data: bytes, name: str) -> Any:
    """RGB PIL image from bytes, through the app's guarded decoder."""
    return load_image(data, name)


def _class_folders(root: Path, label: str) -> list[Path]:
    if not root.exists():
        raise DatasetError(f"image folder {label} does not exist; give the path of a folder holding one "
                           "sub-folder per class")
    if not root.is_dir():
        raise DatasetError(f"{label} is a file, not a folder; give a folder holding one sub-folder per class "
                           "(or upload a .zip of it)")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not is_ignored(p.name)), key=lambda p: p.name)
    if not folders:
        loose = [p.name for p in root.iterdir() if p.is_file() and not is_ignored(p.name)]
        what = f"it holds {len(loose)} loose file(s) but no sub-folders" if loose else "it is empty"
        raise DatasetError(f"image folder {label}: {what}. Put the images in one sub-folder per class, "
                           "e.g. cats/*.jpg and dogs/*.jpg")
    return folders


def _class_files(folder: Path) -> list[Path]:
    """Every regular file under the class folder (sub-folders too), sorted for determinism."""
    files = [p for p in folder.rglob("*")
             if p.is_file() and not any(is_ignored(part) for part in p.relative_to(folder).parts)]
    return sorted(files)


DATASET_BYTES_ENV = "RESNET_EXPLORER_MAX_DATASET_MB"
MAX_DATASET_BYTES = 1024 ** 3  # the decoded images together (uint8); training holds about twice this


def dataset_bytes_limit() -> int:
    """How many bytes the decoded images of one ImageFolder may take: 1 GiB, or $RESNET_EXPLORER_MAX_DATASET_MB."""
    return env_int(DATASET_BYTES_ENV, MAX_DATASET_BYTES // 1024 ** 2) * 1024 ** 2


def _fence(root: Path) -> Path | None:
    """In served mode, the folder every image file must resolve inside (a symbolic link in a dataset
    must not read elsewhere on the server): the data root, or the dataset itself when it lies outside
    it (an extracted upload). None locally: links are followed as the user made them."""
    served = data_root()
    if served is None:
        return None
    resolved = root.resolve()
    return served if inside(resolved, served) else resolved


def load_image_folder(path: str | Path, image_size: int = 64, val_fraction: float = 0.2, seed: int = 0,
                      progress: Progress | None = None, label: str | None = None) -> DataBundle:
    """Images from `path/<class>/*`, decoded safely, resized and centre-cropped to `image_size`.

    Unreadable files (damaged, not images, absurd sizes, links leading out in served mode) are skipped,
    each with a message in `skipped`: one bad file never stops the rest. The decoded set must fit
    dataset_bytes_limit(), checked from the file count before decoding. The split is stratified: each
    class gives round(val_fraction * its count) images to validation (at least one when it has two or
    more), chosen by `seed`. Messages call the folder `label` (e.g. the uploaded zip's name), else its path.
    """
    root = Path(path).expanduser()
    label = shown(label or root)
    if isinstance(image_size, bool) or not isinstance(image_size, int) or not 8 <= image_size <= 1024:
        raise DatasetError(f"image size: {image_size!r} must be a whole number from 8 to 1024")
    if not 0.0 < float(val_fraction) < 1.0:
        raise DatasetError(f"validation fraction: {val_fraction!r} must be between 0 and 1 (e.g. 0.2)")
    folders = _class_folders(root, label)
    files = [(k, f) for k, folder in enumerate(folders) for f in _class_files(folder)]
    needed, limit = len(files) * 3 * image_size * image_size, dataset_bytes_limit()
    if needed > limit:
        raise DatasetError(
            f"image folder {label}: {len(files):,} files at {image_size} px would take "
            f"{needed / 2 ** 20:,.1f} MB in memory, more than the {limit / 2 ** 20:,.0f} MB "
            f"allowed (set by {DATASET_BYTES_ENV} on the server); lower the image size or use fewer images")
    fence = _fence(root)
    # Filled in place, channels first: no list of arrays and no stacked copy of the whole set.
    pixels = np.empty((len(files), 3, image_size, image_size), dtype=np.uint8)
    labels: list[int] = []
    skipped: list[str] = []
    for i, (k, file) in enumerate(files):
        name = shown(file.relative_to(root))
        try:
            if fence is not None and not inside(file.resolve(), fence):
                raise ImageError(f"{name}: a link to a file outside the data folder; it was skipped")
            pixels[len(labels)] = resize_crop(_decode(file.read_bytes(), name), image_size).transpose(2, 0, 1)
            labels.append(k)
        except ImageError as exc:
            skipped.append(str(exc))
        except OSError as exc:
            skipped.append(f"{name}: could not be read ({shown(exc.strerror or exc)}); it was skipped")
        except Exception as exc:  # noqa: BLE001 - one file from outside must never stop the whole dataset
            skipped.append(f"{name}: could not be used ({type(exc).__name__}: {shown(exc)}); it was skipped")
        if progress is not None and (i % 50 == 0 or i == len(files) - 1):
            progress((i + 1) / len(files), f"decoding images {i + 1}/{len(files)}")
    present = sorted(set(labels))
    empty = [folders[k].name for k in range(len(folders)) if k not in present]
    if len(present) < 2:
        found = ", ".join(f"{shown(folders[k].name)} ({labels.count(k)})" for k in present) or "none"
        raise DatasetError(
            f"image folder {label}: classification needs at least two classes with readable images; found "
            f"{found} among {len(folders)} sub-folder(s), {len(skipped)} unreadable file(s) skipped. "
            "Add a sub-folder of images for each class")
    # Classes without a single readable image are dropped so labels stay 0..k-1.
    remap = {old: new for new, old in enumerate(present)}
    classes = [folders[k].name for k in present]
    images = torch.from_numpy(pixels[: len(labels)])
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
