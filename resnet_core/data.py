"""Datasets as in-memory uint8 tensors: built-in Shapes, CIFAR-10/100, ImageFolder.

Every dataset ends up as an `ImageSet` (uint8 N x 3 x H x W images, int64 labels) so the
trainer can keep the whole set on the GPU and augment with tensor ops, with no DataLoader
worker processes (the airbench approach): at 32x32 that is 3 KB an image, 150 MB for CIFAR.

Shapes is the default: generated offline in about a second, deterministic from a seed, and
each image comes with the exact mask of its object, which the Grad-CAM page scores
attributions against.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import os
import stat
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Progress = Callable[[float, str], None]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
# Per-channel statistics of the CIFAR training sets (the std is the true pixel std,
# not the 0.2023/0.1994/0.2010 that circulates from an old script).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN: tuple[float, float, float] = (0.5071, 0.4865, 0.4409)
CIFAR100_STD: tuple[float, float, float] = (0.2673, 0.2564, 0.2762)

DATASET_KINDS = ("shapes", "cifar10", "cifar100", "imagefolder")


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message says what is wrong and what to do."""


class DownloadError(OSError):
    """A download failed (no network, timeout, or a file whose checksum does not match)."""


# --------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------


@dataclass
class ImageSet:
    """Images, labels and (Shapes only) object masks, all as tensors on one device."""

    images: Tensor  # uint8, N x 3 x H x W
    labels: Tensor  # int64, N
    masks: Tensor | None = None  # bool, N x H x W

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.images.dtype != torch.uint8:
            raise DatasetError(f"images must be a uint8 N x C x H x W tensor, got {self.images.dtype} "
                               f"{tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")
        if self.masks is not None and self.masks.shape != (self.images.shape[0], *self.images.shape[2:]):
            raise DatasetError(f"masks of shape {tuple(self.masks.shape)} do not match images "
                               f"{tuple(self.images.shape)}")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    def to(self, device: torch.device | str) -> ImageSet:
        masks = None if self.masks is None else self.masks.to(device)
        return ImageSet(self.images.to(device), self.labels.to(device), masks)

    def subset(self, index: Tensor | Sequence[int]) -> ImageSet:
        index = torch.as_tensor(index, dtype=torch.long, device=self.labels.device)
        masks = None if self.masks is None else self.masks[index]
        return ImageSet(self.images[index], self.labels[index], masks)

    def class_counts(self, num_classes: int) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=num_classes).tolist()


@dataclass
class DataBundle:
    """A train/validation pair with what is needed to normalise and describe it."""

    train: ImageSet
    val: ImageSet
    classes: list[str]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: dict[str, Any]
    skipped: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return self.train.image_size[0]


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 (N x) 3 x H x W on any device -> float32 (x / 255 - mean) / std on that device."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    return (images.float().div_(255.0) - m) / s


def channel_stats(images: Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units, accumulated in float64 chunk by chunk."""
    total = torch.zeros(3, dtype=torch.float64)
    total_sq = torch.zeros(3, dtype=torch.float64)
    count = 0
    for start in range(0, images.shape[0], chunk):
        x = images[start:start + chunk].to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3)).cpu()
        total_sq += x.square().sum(dim=(0, 2, 3)).cpu()
        count += x.shape[0] * x.shape[2] * x.shape[3]
    if count == 0:
        return IMAGENET_MEAN, IMAGENET_STD
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(1e-12).sqrt()
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(max(v, 1e-3), 4) for v in std.tolist())


# --------------------------------------------------------------------------------------------
# Shapes: generated, vectorised over the whole batch with coordinate grids
# --------------------------------------------------------------------------------------------

SHAPES_CLASSES: list[str] = [
    "circle", "square", "triangle", "star", "cross", "ring", "crescent", "heart", "arrow", "frame",
]


def _shape_inside(name: str, x: Tensor, y: Tensor) -> Tensor:
    """Which points (in the shape's own frame, unit radius, centred) lie inside the shape."""
    r = torch.sqrt(x * x + y * y)
    if name == "circle":
        return r < 0.85
    if name == "square":
        return torch.maximum(x.abs(), y.abs()) < 0.72
    if name == "triangle":
        # Equilateral, circumradius 1: inside all three half-planes at the inradius 0.5.
        inside = torch.ones_like(x, dtype=torch.bool)
        for k in range(3):
            a = math.pi / 2 + k * 2 * math.pi / 3
            inside &= (x * math.cos(a) + y * math.sin(a)) > -0.5
        return inside
    if name == "star":
        # Radius oscillating linearly in angle between the tips (1.0) and the notches (0.42).
        phase = torch.atan2(y, x) * (5 / (2 * math.pi))
        tri = 1 - 2 * (phase - torch.floor(phase) - 0.5).abs()
        return r < 0.42 + 0.58 * tri
    if name == "cross":
        return ((x.abs() < 0.28) & (y.abs() < 0.9)) | ((y.abs() < 0.28) & (x.abs() < 0.9))
    if name == "ring":
        return (r < 0.9) & (r > 0.52)
    if name == "crescent":
        return (r < 0.9) & (((x - 0.42) ** 2 + y * y) > 0.68 ** 2)
    if name == "heart":
        # (X^2 + Y^2 - 1)^3 - X^2 Y^3 <= 0, scaled to unit size with the point downwards.
        hx, hy = x * 1.2, -y * 1.2 + 0.12
        return (hx * hx + hy * hy - 1) ** 3 - hx * hx * hy ** 3 < 0
    if name == "arrow":
        shaft = (y.abs() < 0.2) & (x > -0.9) & (x < 0.15)
        head = (x >= 0.15) & (x < 0.9) & (y.abs() < (0.9 - x) * 0.85)
        return shaft | head
    if name == "frame":
        m = torch.maximum(x.abs(), y.abs())
        return (m < 0.82) & (m > 0.46)
    raise DatasetError(f"unknown shape {name!r}; the shapes are {SHAPES_CLASSES}")


@dataclass(frozen=True)
class ShapesStyle:
    """Difficulty knobs of the Shapes dataset (all lengths relative to half the image side).

    The defaults were tuned (benchmarks/bench_shapes.py) so ResNet-20 passes 90% validation
    accuracy after about 40,000 training samples (4-5 epochs of 10,000 with a decaying learning
    rate), while plain-56 is still near chance when resnet-56 is well above it at the same budget.
    """

    min_scale: float = 0.45        # object radius range
    max_scale: float = 0.75
    aspect_jitter: float = 0.1     # independent x/y stretch of the object
    max_rotation: float = 180.0    # degrees either way from upright
    noise_std: float = 0.06        # per-pixel Gaussian noise, [0, 1] units
    texture_amp: float = 0.1       # low-frequency background texture
    max_strokes: int = 2           # distractor line segments
    max_blobs: int = 3             # distractor discs, smaller than any object
    min_contrast: float = 0.45     # least colour distance between object and background at its centre
    shade: float = 0.15            # brightness ramp across the object (0: a flat colour)
    # Spread of the background colours around mid-grey (1: any colour). Fully random backgrounds
    # made ResNet-20 sit at chance for the first ~150 steps; 0.5 keeps them varied and lets it start.
    background_range: float = 0.5


DEFAULT_STYLE = ShapesStyle()


def _uniform(gen: torch.Generator, n: int, low: float, high: float, *shape: int) -> Tensor:
    return torch.rand(n, *shape, generator=gen) * (high - low) + low


def _draw_parameters(n: int, gen: torch.Generator, style: ShapesStyle) -> dict[str, Tensor]:
    """Every random choice per image, drawn up front so rendering can go chunk by chunk."""
    k = len(SHAPES_CLASSES)
    # Exactly balanced classes (as far as n allows), in a seeded random order.
    labels = (torch.arange(n) % k)[torch.randperm(n, generator=gen)]
    scale = _uniform(gen, n, style.min_scale, style.max_scale)
    limit = (0.95 - scale).clamp_min(0.0)
    p = {
        "labels": labels,
        "scale": scale,
        "aspect": _uniform(gen, n, 1 - style.aspect_jitter, 1 + style.aspect_jitter),
        "angle": _uniform(gen, n, -math.radians(style.max_rotation), math.radians(style.max_rotation)),
        "cx": (torch.rand(n, generator=gen) * 2 - 1) * limit,
        "cy": (torch.rand(n, generator=gen) * 2 - 1) * limit,
        "bg_a": 0.5 + (torch.rand(n, 3, generator=gen) - 0.5) * style.background_range,
        "bg_b": 0.5 + (torch.rand(n, 3, generator=gen) - 0.5) * style.background_range,
        "bg_dir": _uniform(gen, n, 0, 2 * math.pi),
        "texture": torch.randn(n, 3, 5, 5, generator=gen),
        "obj": torch.rand(n, 4, 3, generator=gen),
        "obj_shade": _uniform(gen, n, -style.shade, style.shade),
        "stroke_on": torch.rand(n, style.max_strokes, generator=gen) < 0.7,
        "stroke_p0": torch.rand(n, style.max_strokes, 2, generator=gen) * 2 - 1,
        "stroke_p1": torch.rand(n, style.max_strokes, 2, generator=gen) * 2 - 1,
        "stroke_w": _uniform(gen, n, 0.04, 0.09, style.max_strokes),
        "stroke_rgb": torch.rand(n, style.max_strokes, 3, generator=gen),
        "blob_on": torch.rand(n, style.max_blobs, generator=gen) < 0.6,
        "blob_c": torch.rand(n, style.max_blobs, 2, generator=gen) * 2 - 1,
        "blob_r": _uniform(gen, n, 0.06, 0.16, style.max_blobs),
        "blob_rgb": torch.rand(n, style.max_blobs, 3, generator=gen),
    }
    return p


def _segment_hits(px: Tensor, py: Tensor, p0: Tensor, p1: Tensor, width: Tensor) -> Tensor:
    """Grid points (px: 1 x 1 x W, py: 1 x H x 1) within `width` of segments p0-p1 (B x 2) -> B x H x W.

    Works in each segment's own frame: the coordinates are separable, so only the final
    sums and comparisons touch full-size tensors.
    """
    d = p1 - p0
    length = d.norm(dim=1).clamp_min(1e-6)
    c, s = (d[:, 0] / length)[:, None, None], (d[:, 1] / length)[:, None, None]
    ux, uy = (px - p0[:, 0, None, None]) * c, (py - p0[:, 1, None, None]) * s
    vx, vy = (px - p0[:, 0, None, None]) * s, (py - p0[:, 1, None, None]) * c
    along = ux + uy
    across = (vy - vx).abs()
    return (across < width[:, None, None]) & (along > 0) & (along < length[:, None, None])


def _object_colour(p: dict[str, Tensor], min_contrast: float) -> Tensor:
    """The first of the candidate colours far enough from the background gradient at the object.

    Where none is, that background colour shifted by half the range in every channel.
    """
    d = p["bg_dir"]
    t = ((p["cx"] * torch.cos(d) + p["cy"] * torch.sin(d)) * 0.5 + 0.5)[:, None]
    centre = p["bg_a"] * (1 - t) + p["bg_b"] * t
    candidates = p["obj"]  # n x tries x 3
    far = (candidates - centre[:, None]).norm(dim=2) >= min_contrast
    first = torch.where(far.any(dim=1), far.float().argmax(dim=1), 0)
    chosen = candidates[torch.arange(len(first)), first]
    shifted = torch.where(centre < 0.5, centre + 0.5, centre - 0.5)
    return torch.where(far.any(dim=1)[:, None], chosen, shifted)


def _render(p: dict[str, Tensor], size: int, style: ShapesStyle, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Images and masks for one chunk of drawn parameters.

    Distractors and the object are first painted as layer indices into one int map and
    coloured once at the end (a gather), which keeps the number of full-size ops small.
    """
    n = p["labels"].shape[0]
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    py, px = coords.view(1, size, 1), coords.view(1, 1, size)

    # Background: a two-colour linear gradient plus smooth random texture.
    d = p["bg_dir"][:, None, None]
    t = ((px * torch.cos(d)) * 0.5 + (py * torch.sin(d)) * 0.5 + 0.5)[:, None]
    bg_a = p["bg_a"][:, :, None, None]
    texture = F.interpolate(p["texture"], size=(size, size), mode="bilinear", align_corners=False)
    canvas = texture.mul_(style.texture_amp).add_(bg_a).add_((p["bg_b"][:, :, None, None] - bg_a) * t)

    # Layer 0 is the background; distractors lie under the object, so the object's pixels stay its own.
    layer = torch.zeros(n, size, size, dtype=torch.uint8)
    palette = [canvas.new_zeros(n, 3)]
    n_strokes = p["stroke_on"].shape[1]
    for j in range(n_strokes):
        hit = _segment_hits(px, py, p["stroke_p0"][:, j], p["stroke_p1"][:, j], p["stroke_w"][:, j])
        layer.masked_fill_(hit & p["stroke_on"][:, j, None, None], len(palette))
        palette.append(p["stroke_rgb"][:, j])
    for j in range(p["blob_on"].shape[1]):
        c = p["blob_c"][:, j]
        r2 = (px - c[:, 0, None, None]) ** 2 + (py - c[:, 1, None, None]) ** 2
        hit = r2 < (p["blob_r"][:, j] ** 2)[:, None, None]
        layer.masked_fill_(hit & p["blob_on"][:, j, None, None], len(palette))
        palette.append(p["blob_rgb"][:, j])

    # The object, in its own rotated and stretched frame.
    ang = p["angle"][:, None, None]
    sx, sy = (p["scale"] * p["aspect"])[:, None, None], (p["scale"] / p["aspect"])[:, None, None]
    dx, dy = px - p["cx"][:, None, None], py - p["cy"][:, None, None]
    lx = dx * (torch.cos(ang) / sx) + dy * (torch.sin(ang) / sx)
    ly = dx * (-torch.sin(ang) / sy) + dy * (torch.cos(ang) / sy)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for k, name in enumerate(SHAPES_CLASSES):
        idx = (p["labels"] == k).nonzero().squeeze(1)
        if idx.numel():
            masks[idx] = _shape_inside(name, lx[idx], ly[idx])
    layer.masked_fill_(masks, len(palette))

    # Object colour far enough from the background under it (see _object_colour).
    palette.append(_object_colour(p, style.min_contrast))

    colours = torch.stack(palette, dim=1)  # n x layers x 3
    painted = torch.gather(colours.transpose(1, 2), 2, layer.view(n, 1, -1).long().expand(n, 3, -1))
    painted = painted.view(n, 3, size, size)
    canvas = torch.where((layer > 0)[:, None], painted, canvas)
    # A brightness ramp across the object, so it is not a flat stencil.
    canvas += (masks * (p["obj_shade"][:, None, None] * lx.clamp(-1, 1)))[:, None]
    canvas += torch.randn(canvas.shape, generator=gen).mul_(style.noise_std)
    images = canvas.mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return images, masks


def make_shapes(n: int, seed: int = 0, size: int = 32, style: ShapesStyle = DEFAULT_STYLE,
                chunk: int = 2048) -> ImageSet:
    """`n` Shapes images of `size` x `size`, identical for the same seed, with object masks."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise DatasetError(f"number of Shapes images: {n!r} must be a whole number >= 1")
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 512:
        raise DatasetError(f"Shapes image size: {size!r} must be a whole number from 8 to 512")
    gen = torch.Generator().manual_seed(int(seed))
    params = _draw_parameters(n, gen, style)
    images, masks = [], []
    for start in range(0, n, chunk):
        part = {k: v[start:start + chunk] for k, v in params.items()}
        im, mk = _render(part, size, style, gen)
        images.append(im)
        masks.append(mk)
    return ImageSet(torch.cat(images), params["labels"].clone(), torch.cat(masks))


def _child_seeds(seed: int, count: int) -> list[int]:
    """Independent seeds for train and val streams, so the two sets never share an image."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(int(seed)).spawn(count)]


def load_shapes(n_train: int = 10000, n_val: int = 2000, seed: int = 0, size: int = 32,
                style: ShapesStyle = DEFAULT_STYLE) -> DataBundle:
    """The built-in Shapes dataset: generated train and val sets, stats from the train set."""
    train_seed, val_seed = _child_seeds(seed, 2)
    train = make_shapes(n_train, train_seed, size, style)
    val = make_shapes(n_val, val_seed, size, style)
    mean, std = channel_stats(train.images)
    description = {
        "kind": "shapes", "root": None, "n_train": len(train), "n_val": len(val), "seed": int(seed),
        "image_size": size, "num_classes": len(SHAPES_CLASSES), "skipped": 0, "style": dataclasses.asdict(style),
    }
    return DataBundle(train, val, list(SHAPES_CLASSES), mean, std, description, [])


# --------------------------------------------------------------------------------------------
# Downloads (shared with weights.py): chunked, with a progress callback and a short timeout
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100 through torchvision's own loader
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# ImageFolder: a folder of class sub-folders, or an uploaded zip of one
# --------------------------------------------------------------------------------------------

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
    from .images import load_image

    return load_image(data, name)


def _resize_crop(image: Any, size: int) -> np.ndarray:
    """Shorter side to `size`, centre crop `size` x `size`, as an H x W x 3 uint8 array."""
    from PIL import Image

    w, h = image.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    resized = image.resize(new, Image.Resampling.BILINEAR, reducing_gap=3.0)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)).convert("RGB"), dtype=np.uint8)


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
    from .images import ImageError

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
            arrays.append(_resize_crop(_decode(file.read_bytes(), name), image_size))
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


def stratified_split(labels: Tensor, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Train and val indices holding about the same share of every class."""
    gen = torch.Generator().manual_seed(int(seed))
    train, val = [], []
    for k in torch.unique(labels).tolist():
        idx = (labels == k).nonzero().squeeze(1)
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = min(len(idx) - 1, max(1, round(val_fraction * len(idx)))) if len(idx) >= 2 else 0
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return torch.cat(train).sort().values, torch.cat(val).sort().values


def stratified_cap(data: ImageSet, limit: int, seed: int) -> ImageSet:
    """Exactly `limit` images (all when there are fewer), each class keeping its share.

    Per-class quotas by largest remainder, members chosen by `seed`; original order kept.
    """
    if len(data) <= limit:
        return data
    labels = data.labels.cpu()
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * limit / len(labels)
    quota = exact.floor().long()
    short = limit - int(quota.sum())
    quota[torch.argsort(exact - quota, descending=True, stable=True)[:short]] += 1
    gen = torch.Generator().manual_seed(int(seed))
    keep = []
    for k, q in zip(classes.tolist(), quota.tolist()):
        idx = (labels == k).nonzero().squeeze(1)
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:q]])
    return data.subset(torch.cat(keep).sort().values)


# --------------------------------------------------------------------------------------------
# DatasetSpec: what the trainer, the CLI and the Train page pass around
# --------------------------------------------------------------------------------------------


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
        if self.kind not in DATASET_KINDS:
            raise DatasetError(f"dataset kind {self.kind!r} is unknown; choose one of {list(DATASET_KINDS)}")
        for name, low in (("n_train", 1), ("n_val", 1), ("image_size", 8), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise DatasetError(f"dataset {name}: {value!r} must be a whole number >= {low}")
        if not isinstance(self.val_fraction, (int, float)) or not 0 < self.val_fraction < 1:
            raise DatasetError(f"dataset val_fraction: {self.val_fraction!r} must be between 0 and 1")
        if self.kind in ("cifar10", "cifar100", "imagefolder") and not self.root:
            where = "the folder for the CIFAR files" if self.kind != "imagefolder" else "the image folder (or .zip)"
            raise DatasetError(f"dataset {self.kind} needs a root: {where}")
        if self.root is not None and not isinstance(self.root, str):
            object.__setattr__(self, "root", str(self.root))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetSpec:
        if not isinstance(data, dict):
            raise DatasetError(f"dataset spec: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DatasetError(f"dataset spec: unknown field(s) {unknown}; allowed are {sorted(known)}")
        return cls(**data)


def load_dataset(spec: DatasetSpec, progress: Progress | None = None) -> DataBundle:
    """Load what `spec` describes; raises DatasetError with a message for a person."""
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


def save_upload(data: bytes, suffix: str = ".zip") -> Path:
    """An uploaded file written once to the temporary folder, named by its content, so a rerun or a
    second upload of the same file reuses it (and the dataset cache keyed by its path)."""
    folder = Path(tempfile.gettempdir()) / "resnet-explorer-uploads"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if not path.exists():
        path.write_bytes(data)
    return path


def _load_folder_or_zip(root: Path, spec: DatasetSpec, progress: Progress | None) -> DataBundle:
    if root.is_file() and root.suffix.lower() == ".zip":
        import shutil

        tmp = Path(tempfile.mkdtemp(prefix="resnet_explorer_zip_"))
        try:
            folder = extract_zip(root, tmp)
            bundle = load_image_folder(folder, spec.image_size, spec.val_fraction, spec.seed, progress)
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


__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SHAPES_CLASSES",
    "DataBundle",
    "DatasetError",
    "DatasetSpec",
    "DownloadError",
    "ImageSet",
    "ShapesStyle",
    "channel_stats",
    "cifar_files",
    "download_file",
    "extract_zip",
    "load_cifar",
    "load_dataset",
    "load_image_folder",
    "load_shapes",
    "make_shapes",
    "normalize",
    "save_upload",
    "stratified_cap",
    "stratified_split",
]
