"""DatasetSpec: which dataset to load, as plain data, and load_dataset."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..validation import dataclass_from_dict, is_number, need, need_bool, need_int
from .cifar import load_cifar
from .containers import DATASET_KINDS, DataBundle, DatasetError, Progress, stratified_cap
from .folders import DATASET_BYTES_ENV, dataset_bytes_limit, load_image_folder
from .paths import DATA_ROOT_ENV, data_root, inside, shown
from .shapes import load_shapes
from .uploads import EXTRACT_PREFIX, uploads_dir
from .zips import check_zip, extract_zip

# The accepted range of each whole-number field, both ends included: DatasetSpec checks it, and the Train
# page's widgets and links read it. n_train / n_val cap CIFAR and ImageFolder sets; image_size is the
# ImageFolder loader's range (Shapes draws up to 512 px and says so).
LIMITS: dict[str, tuple[int, int]] = {
    "n_train": (1, 1_000_000),
    "n_val": (1, 200_000),
    "image_size": (8, 1024),
    "seed": (0, 2**31 - 1),
}


# What one generated Shapes image holds in memory: 3 uint8 channels and a one-byte object mask per pixel.
SHAPES_BYTES_PER_PIXEL = 4


def generated_bytes(n_images: int, image_size: int) -> int:
    """The bytes a generated Shapes set of `n_images` at `image_size` px keeps in memory (images and masks;
    generating it briefly holds about twice this)."""
    return n_images * SHAPES_BYTES_PER_PIXEL * image_size * image_size


@dataclass(frozen=True)
class DatasetSpec:
    """Which dataset to load, as plain JSON-able data.

    n_train / n_val: the generated set sizes for Shapes; for CIFAR and ImageFolder an upper
    limit (a stratified, seeded subset is taken when the data has more).
    root: the CIFAR data folder, or the ImageFolder folder (or a .zip of one).
    image_size: Shapes and ImageFolder images are made this size; CIFAR is always 32.
    val_fraction: the ImageFolder share held out for validation (stratified).
    download / verify_checksums: CIFAR only (see load_cifar).
    """

    kind: str = "shapes"
    root: str | None = None
    n_train: int = 10000
    n_val: int = 2000
    seed: int = 0
    image_size: int = 32
    val_fraction: float = 0.2
    download: bool = True
    verify_checksums: bool = True

    def __post_init__(self) -> None:
        need(self.kind in DATASET_KINDS, DatasetError, "dataset kind", self.kind,
             f"is unknown; choose one of {list(DATASET_KINDS)}")
        for name, (low, high) in LIMITS.items():
            need_int(DatasetError, f"dataset {name}", getattr(self, name), low, high)
        need(is_number(self.val_fraction) and 0 < self.val_fraction < 1, DatasetError, "dataset val_fraction",
             self.val_fraction, "must be between 0 and 1 (e.g. 0.2)")
        for name in ("download", "verify_checksums"):
            need_bool(DatasetError, f"dataset {name}", getattr(self, name))
        if self.kind in ("cifar10", "cifar100", "imagefolder") and not self.root:
            where = "the folder for the CIFAR files" if self.kind != "imagefolder" else "the image folder (or .zip)"
            raise DatasetError(f"dataset {self.kind} needs a root: {where}")
        if self.root is not None and not isinstance(self.root, str):
            object.__setattr__(self, "root", str(self.root))
        if self.kind == "shapes":  # refused from the numbers alone, before anything is drawn (a link can ask)
            n = self.n_train + self.n_val
            needed, limit = generated_bytes(n, self.image_size), dataset_bytes_limit()
            if needed > limit:
                raise DatasetError(
                    f"Shapes: {n:,} images at {self.image_size} px would take {needed / 2 ** 20:,.1f} MB in memory, "
                    f"more than the {limit / 2 ** 20:,.0f} MB allowed (set by {DATASET_BYTES_ENV} on the server); "
                    "use fewer images or a smaller image size")

    def check_source(self) -> None:
        """DatasetError now if an ImageFolder's folder or .zip is not there, or if in served mode the folder
        lies outside the data root: a run queued for a worker should not wait its turn only to fail on a typo.
        (CIFAR may be downloaded into its folder.)"""
        self.check_served()
        if self.kind == "imagefolder":
            root = Path(self.root).expanduser()
            if root.is_file() and root.suffix.lower() == ".zip":
                check_zip(root)  # refused from its directory now, not after its wait in the queue
            elif not root.is_dir():
                raise DatasetError(f"no folder or .zip file at {shown(root)}: give a folder with one sub-folder of "
                                   "images per class, or a .zip of one")

    def check_served(self) -> None:
        """In served mode ($RESNET_EXPLORER_DATA_ROOT set), a DatasetError unless the folder (CIFAR or ImageFolder)
        or .zip resolves inside the data root or the uploads folder: a spec that did not come through the page's
        typed-folder check (a queued request, a hand-written one) cannot read elsewhere on the server either."""
        served = data_root()
        if served is None or self.root is None:
            return
        try:
            resolved = Path(self.root).expanduser().resolve()
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a symbolic link loop
            resolved = None
        uploads = uploads_dir().resolve()
        if resolved is None or not (inside(resolved, served) or inside(resolved, uploads)):
            what = "CIFAR folder" if self.kind != "imagefolder" else "image folder"
            raise DatasetError(f"{what} '{shown(self.root)}': this server reads only folders inside its data folder "
                               f"{shown(served)} (served mode, {DATA_ROOT_ENV}); give a path inside it")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetSpec:
        return dataclass_from_dict(cls, data, DatasetError, "dataset spec")


def load_dataset(spec: DatasetSpec, progress: Progress | None = None) -> DataBundle:
    """Load what `spec` describes; raises DatasetError with a message for a person."""
    spec.check_served()
    if spec.kind == "shapes":
        if progress is not None:
            progress(0.0, f"generating {spec.n_train + spec.n_val:,} Shapes images")
        return load_shapes(spec.n_train, spec.n_val, spec.seed, spec.image_size)
    if spec.kind in ("cifar10", "cifar100"):
        bundle = load_cifar(spec.root, spec.kind, download=spec.download, progress=progress,
                            verify_checksums=spec.verify_checksums)
    else:
        bundle = _load_folder_or_zip(Path(spec.root).expanduser(), spec, progress)
    return _capped(bundle, spec)


def _load_folder_or_zip(root: Path, spec: DatasetSpec, progress: Progress | None) -> DataBundle:
    if root.is_file() and root.suffix.lower() == ".zip":
        import shutil

        tmp = Path(tempfile.mkdtemp(prefix=f"{EXTRACT_PREFIX}{os.getpid()}_"))
        try:
            # Messages name the zip (for an upload, the visitor's own file name), never the temporary folder.
            folder = extract_zip(root, tmp, name=root.name)
            bundle = load_image_folder(folder, spec.image_size, spec.val_fraction, spec.seed, progress,
                                       label=root.name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        bundle.description["root"] = str(root)
        return bundle
    return load_image_folder(root, spec.image_size, spec.val_fraction, spec.seed, progress)


def _capped(bundle: DataBundle, spec: DatasetSpec) -> DataBundle:
    train = stratified_cap(bundle.train, spec.n_train, spec.seed)
    val = stratified_cap(bundle.val, spec.n_val, spec.seed)
    if train is bundle.train and val is bundle.val:
        return bundle
    description = {**bundle.description, "n_train": len(train), "n_val": len(val),
                   "full_n_train": len(bundle.train), "full_n_val": len(bundle.val), "seed": spec.seed}
    return dataclasses.replace(bundle, train=train, val=val, description=description)
