"""ImageSet and DataBundle: datasets as in-memory uint8 tensors, with channel statistics and stratified splits."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
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
