"""The one preprocessing path: resize and crop, normalise, augment; training and inference share it."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

# The one resampling setting, for training (ImageFolder) and inference (uploads) alike: bilinear with
# Pillow's antialiasing, reducing by whole factors first when the image is over 3x the target (as
# good as a full resample, much faster on camera photos).
RESAMPLE = Image.Resampling.BILINEAR
REDUCING_GAP = 3.0


def resize_crop(image: Image.Image, size: int, resize: int | None = None) -> np.ndarray:
    """The one resize-and-centre-crop: shorter side to `resize` (default `size`), then the centre
    `size` x `size` square, as an H x W x 3 uint8 RGB array. Training and inference both use it.
    A `resize` below `size` is taken as `size` (the crop never reaches past the image).

    Only the source region under the crop is resampled, straight to `size` x `size`: the cost is
    bounded by the output, so a 1 x 60000 strip costs kilobytes, not a 224 x 13,440,000 intermediate."""
    side = max(resize or size, size)
    image = image.convert("RGB")
    w, h = image.size
    scale = side / min(w, h)
    new_w, new_h = max(side, round(w * scale)), max(side, round(h * scale))
    left, top = (new_w - size) // 2, (new_h - size) // 2
    # Pillow's reducing_gap step, done as it does for a whole-image resize (whole factors over the
    # whole image, which only shrinks it), so the pixels equal resize-then-crop exactly.
    fx, fy = max(1, int(w / new_w / REDUCING_GAP)), max(1, int(h / new_h / REDUCING_GAP))
    if fx > 1 or fy > 1:
        image = image.reduce((fx, fy))
    # The crop box of the resized image, mapped back to (reduced) source coordinates, fractions allowed.
    sx, sy = w / fx / new_w, h / fy / new_h
    box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
    return np.array(image.resize((size, size), RESAMPLE, box=box), dtype=np.uint8)


def _coefficients(mean: Sequence[float], std: Sequence[float], device: torch.device) -> tuple[Tensor, Tensor]:
    """(scale, shift) with x * scale + shift == (x / 255 - mean) / std, each shaped C x 1 x 1."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
    return 1.0 / (255.0 * std_t), -mean_t / std_t


def _apply(images: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    """The one normalisation formula, (x / 255 - mean) / std as one fused multiply-add."""
    return torch.addcmul(shift, images.float(), scale)


def normalize(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 (N x) 3 x H x W on any device -> float32 (x / 255 - mean) / std on that device."""
    return _apply(images, *_coefficients(mean, std, images.device))


class Normalizer:
    """`normalize` with its coefficients made once on the device, output in the training memory format."""

    def __init__(self, mean: Any, std: Any, device: torch.device, memory_format: torch.memory_format):
        self.scale, self.shift = _coefficients(mean, std, device)
        self.memory_format = memory_format

    def __call__(self, x: Tensor) -> Tensor:
        return _apply(x, self.scale, self.shift).contiguous(memory_format=self.memory_format)


def augment_batch(images: Tensor, padding: int, flip: bool, generator: torch.Generator | None = None) -> Tensor:
    """Random crop (after zero padding) and horizontal flip of a uint8 N x C x H x W batch, on its device."""
    n, _, h, w = images.shape
    device = images.device
    if padding > 0:
        padded = F.pad(images, (padding, padding, padding, padding))
        oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
        ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=device)
        rows = (oy[:, None] + torch.arange(h, device=device))[:, :, None]
        cols = (ox[:, None] + torch.arange(w, device=device))[:, None, :]
        batch = torch.arange(n, device=device)[:, None, None]
        # One gather for the whole batch: advanced indices give N x H x W x C, made N x C x H x W again here. Left
        # permuted, the batch would carry channels-last strides into the float tensor normalised from it, and a
        # convolution given such an input runs the whole network channels-last (seen: a "bare" loop in
        # bench_trainer.py ran channels-last without asking, against a Trainer held to NCHW).
        images = padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()
    if flip:
        mask = torch.rand(n, generator=generator, device=device) < 0.5
        images = torch.where(mask[:, None, None, None], images.flip(3), images)
    return images


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its images: size, normalisation, and the resize before the centre crop.

    `resize` is the shorter side before cropping `image_size` x `image_size` from the centre
    (torchvision's ImageNet recipe: 256 then 224); None means the shorter side goes straight to
    `image_size` (models trained on whole small images, like Shapes or CIFAR at 32 px).
    """

    image_size: int = 224
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    resize: int | None = None

    @classmethod
    def from_dict(cls, data: dict | None, default_size: int = 224) -> Preprocess:
        """From a checkpoint's/run's "preprocess" entry (mean, std, image_size); gaps use ImageNet's."""
        data = data or {}
        size = int(data.get("image_size") or default_size)
        resize = data.get("resize")
        return cls(image_size=size, mean=tuple(float(v) for v in data.get("mean", cls.mean)),
                   std=tuple(float(v) for v in data.get("std", cls.std)),
                   resize=int(resize) if resize else None)


def model_view(image: Image.Image, pre: Preprocess) -> Image.Image:
    """The RGB image exactly as the network sees it: shorter side resized, centre-cropped square
    (the same `resize_crop` the ImageFolder loader trains on)."""
    return Image.fromarray(resize_crop(image, pre.image_size, pre.resize))


def to_tensor(view: Image.Image, pre: Preprocess) -> torch.Tensor:
    """A model_view image as a normalised float 3 x H x W tensor (the trainer's `normalize`)."""
    array = np.asarray(view.convert("RGB"), dtype=np.uint8)
    return normalize(torch.from_numpy(array.copy()).permute(2, 0, 1), pre.mean, pre.std)


def prepare(image: Image.Image, pre: Preprocess) -> tuple[Image.Image, torch.Tensor]:
    """(what the network sees as a picture, the normalised tensor it gets)."""
    view = model_view(image, pre)
    return view, to_tensor(view, pre)


def default_resize(image_size: int) -> int | None:
    """The resize before the centre crop for a model with no recorded one: ImageNet's 256/224 ratio
    for large inputs, none for small whole-image inputs (32 px CIFAR or Shapes)."""
    return None if image_size < 64 else round(image_size * 256 / 224)


def for_display(view: Image.Image) -> Image.Image:
    """Small network inputs (32 px) are enlarged with visible pixels, so an overlay is readable."""
    return view.resize((256, 256), Image.Resampling.NEAREST) if view.width < 128 else view


def tensor_digest(x: torch.Tensor) -> str:
    """A short content hash of an input tensor: the same pixels give the same key in caches."""
    return hashlib.sha256(x.numpy().tobytes()).hexdigest()[:16]


def prepare_uint8(images: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """A batch of uint8 N x 3 x H x W images (e.g. Shapes) prepared for a model, as one tensor."""
    return torch.stack([prepare(Image.fromarray(im.permute(1, 2, 0).numpy()), pre)[1] for im in images])
