"""CIFAR-10/100 through torchvision's loader, as in-memory uint8 tensors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .containers import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DataBundle,
    DatasetError,
    DownloadError,
    ImageSet,
    Progress,
)
from .download import download_file


def _cifar_class(which: str) -> type:
    from torchvision.datasets import CIFAR10, CIFAR100

    classes = {"cifar10": CIFAR10, "cifar100": CIFAR100}
    if which not in classes:
        raise DatasetError(f"CIFAR variant {which!r} is unknown; choose 'cifar10' or 'cifar100'")
    return classes[which]


def _unverified(cls: type) -> type:
    """The torchvision class with its MD5 checks off (files must exist but may be any size)."""
    return type(f"Unverified{cls.__name__}", (cls,), {
        "train_list": [[name, None] for name, _ in cls.train_list],
        "test_list": [[name, None] for name, _ in cls.test_list],
        "meta": {**cls.meta, "md5": None},
    })


def cifar_files(which: str = "cifar10") -> list[str]:
    """The files torchvision reads, relative to the data folder."""
    cls = _cifar_class(which)
    names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    return [f"{cls.base_folder}/{name}" for name in names]


def _cifar_problems(cls: type, root: Path, verify: bool) -> list[str]:
    """Files that are missing or (when verifying) fail their MD5; empty when all is well."""
    from torchvision.datasets.utils import check_integrity

    folder = root / cls.base_folder
    problems = []
    for name, md5 in cls.train_list + cls.test_list + [[cls.meta["filename"], cls.meta["md5"]]]:
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif verify and not check_integrity(str(path), md5):
            problems.append(f"{name} is corrupted (its MD5 checksum does not match)")
    return problems


def _cifar_help(cls: type, root: Path) -> str:
    folder = root / cls.base_folder
    names = [name for name, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]
    return (f"Place the files by hand: either the archive {root / cls.filename} (from {cls.url}), or its "
            f"extracted folder {folder}{os.sep} holding {', '.join(names)}.")


def load_cifar(root: str | Path, which: str = "cifar10", download: bool = True, progress: Progress | None = None,
               verify_checksums: bool = True) -> DataBundle:
    """CIFAR-10 or CIFAR-100 (train 50,000, val = the 10,000 test images) from `root`.

    Missing files are downloaded when `download` is on; when that fails (offline), the
    DatasetError names exactly which files to put where. `verify_checksums=False` accepts
    files that differ from the official ones (a trimmed copy for quick experiments).
    """
    cls = _cifar_class(which)
    root = Path(root).expanduser()
    title = "CIFAR-10" if which == "cifar10" else "CIFAR-100"
    problems = _cifar_problems(cls, root, verify_checksums)
    if problems:
        _fetch_cifar(cls, root, title, download, progress, problems, verify_checksums)
        problems = _cifar_problems(cls, root, verify_checksums)
        if problems:
            raise DatasetError(f"{title} in {root} is incomplete after extracting the archive: "
                               f"{'; '.join(problems)}. {_cifar_help(cls, root)}")
    if progress is not None:
        progress(1.0, f"reading {title} from {root / cls.base_folder}")
    loader = cls if verify_checksums else _unverified(cls)
    try:
        train = loader(str(root), train=True, download=False)
        test = loader(str(root), train=False, download=False)
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, TypeError, ImportError, AttributeError) as exc:
        raise DatasetError(f"{title} files in {root / cls.base_folder} could not be read "
                           f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                           f"they may be damaged. {_cifar_help(cls, root)}") from None
    except Exception as exc:  # noqa: BLE001 - unpickling a damaged file raises almost anything
        raise DatasetError(f"{title} files in {root / cls.base_folder} are damaged ({type(exc).__name__}). "
                           f"{_cifar_help(cls, root)}") from None
    classes = [str(c) for c in train.classes]
    mean, std = (CIFAR10_MEAN, CIFAR10_STD) if which == "cifar10" else (CIFAR100_MEAN, CIFAR100_STD)
    train_set, val_set = _cifar_set(train, len(classes)), _cifar_set(test, len(classes))
    description = {
        "kind": which, "root": str(root), "n_train": len(train_set), "n_val": len(val_set), "seed": None,
        "image_size": 32, "num_classes": len(classes), "skipped": 0, "verified": bool(verify_checksums),
    }
    return DataBundle(train_set, val_set, classes, mean, std, description, [])


def _cifar_set(ds: Any, num_classes: int) -> ImageSet:
    images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"the CIFAR files hold labels outside 0..{num_classes - 1}; they are damaged")
    return ImageSet(images, labels, None)


def _fetch_cifar(cls: type, root: Path, title: str, download: bool, progress: Progress | None,
                 problems: list[str], verify: bool) -> None:
    """Make the extracted folder exist: from the archive in `root`, downloading it if allowed."""
    from torchvision.datasets.utils import check_integrity, extract_archive

    archive = root / cls.filename
    if not archive.is_file():
        if not download:
            raise DatasetError(f"{title} is not in {root} ({'; '.join(problems)}) and downloading is off. "
                               f"{_cifar_help(cls, root)}")
        try:
            download_file(cls.url, archive, progress, md5=cls.tgz_md5)
        except DownloadError as exc:
            raise DatasetError(f"{title} is not in {root} and could not be downloaded ({exc}). "
                               f"{_cifar_help(cls, root)}") from None
    elif verify and not check_integrity(str(archive), cls.tgz_md5):
        raise DatasetError(f"{archive} is damaged or incomplete (its MD5 checksum does not match {cls.tgz_md5}); "
                           f"delete it and download it again. {_cifar_help(cls, root)}")
    if progress is not None:
        progress(1.0, f"extracting {archive.name}")
    try:
        extract_archive(str(archive), str(root))
    except (OSError, EOFError, ValueError) as exc:
        raise DatasetError(f"{archive} could not be extracted ({exc}); delete it and download it again") from None
