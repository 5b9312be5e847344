"""Reference maps, one entry each: maps that know nothing of the model, scored beside the methods as yardsticks.

A method is worth reading only where it beats them: the random map is chance order, the uniform map no order at
all, Sobel edges what the picture alone gives. As the method registry: a reference is one
`register_reference(Reference(...))` with its maker, and the localization check, the trust table, the charts
(colour, dotted line) and the pages read this registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .registry import AttributionError, Registry

# make(images N x C x H x W (normalised), a seeded generator, the normalisation's mean and std or None)
#   -> N x H x W maps
Maker = Callable[[Tensor, torch.Generator, "Sequence[float] | None", "Sequence[float] | None"], Tensor]


@dataclass(frozen=True)
class Reference:
    name: str  # as results, links and the command line name it
    label: str  # as pages and charts show it: short enough for a bar label on a projector
    words: str  # as a sentence names it ("the uniform map")
    make: Maker
    color: str  # greys for chance, blue for the image-only map
    at_chance: bool  # knows neither model nor image: scores the object's area fraction in the localization check


_REFERENCES: Registry[Reference] = Registry("reference map")


def register_reference(reference: Reference) -> Reference:
    return _REFERENCES.register(reference)


def get_reference(name: object) -> Reference:
    return _REFERENCES.lookup(name)


def reference_names(at_chance: bool | None = None) -> tuple[str, ...]:
    """Every reference's name in registration order; `at_chance` True / False: only those that are / are not."""
    return tuple(n for n, r in _REFERENCES.items() if at_chance is None or r.at_chance == at_chance)


def reference_labels() -> dict[str, str]:
    return {n: r.label for n, r in _REFERENCES.items()}


def reference_words() -> dict[str, str]:
    return {n: r.words for n, r in _REFERENCES.items()}


def reference_colors() -> dict[str, str]:
    return {n: r.color for n, r in _REFERENCES.items()}


def reference_batch(name: str, images: Tensor, seed: int = 0, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None) -> Tensor:
    """Reference map `name` for each of `images` (N x C x H x W): N x H x W, seeded where it draws at random."""
    if images.dim() != 4:
        raise AttributionError(f"expected images N x C x H x W, got shape {tuple(images.shape)}")
    gen = torch.Generator().manual_seed(int(seed))
    return get_reference(name).make(images.detach().float().cpu(), gen, mean, std)


def sobel_map(image: Tensor, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> Tensor:
    """Edge strength, H x W: (|Sobel_x| + |Sobel_y|) / 2 of the image's luminance, as pytorch-grad-cam's
    `sobel_cam` computes it with OpenCV (3x3 kernels, reflected borders, ITU-R 601 grey weights).

    It knows nothing of the model: a method that scores no better than this only finds edges. Give the
    normalisation's `mean` and `std` to read the edges of the picture rather than of the normalised tensor.
    """
    if not isinstance(image, Tensor):
        raise AttributionError(f"expected a normalised image tensor, got {type(image).__name__}")
    image = image[0] if image.dim() == 4 and image.shape[0] == 1 else image
    if image.dim() != 3:
        raise AttributionError(f"expected one image, 3 x H x W, got shape {tuple(image.shape)}")
    image = image.detach().float().cpu()
    if (mean is None) != (std is None):
        raise AttributionError("give both mean and std (the image's normalisation), or neither")
    if mean is not None:
        scale = torch.tensor(std, dtype=torch.float32)[:, None, None]
        image = image * scale + torch.tensor(mean, dtype=torch.float32)[:, None, None]
    if image.shape[0] == 3:
        grey = (torch.tensor([0.299, 0.587, 0.114])[:, None, None] * image).sum(dim=0)
    else:
        grey = image.mean(dim=0)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    padded = F.pad(grey[None, None], (1, 1, 1, 1), mode="reflect")
    gx = F.conv2d(padded, kx.view(1, 1, 3, 3))[0, 0]
    gy = F.conv2d(padded, kx.t().contiguous().view(1, 1, 3, 3))[0, 0]
    return 0.5 * gx.abs() + 0.5 * gy.abs()


def _shape(images: Tensor) -> tuple[int, int, int]:
    return images.shape[0], images.shape[-2], images.shape[-1]


def _random(images: Tensor, gen: torch.Generator, mean, std) -> Tensor:
    return torch.rand(_shape(images), generator=gen)  # i.i.d.: chance order


def _uniform(images: Tensor, gen: torch.Generator, mean, std) -> Tensor:
    return torch.ones(_shape(images))  # every pixel tied: no order at all


def _sobel(images: Tensor, gen: torch.Generator, mean, std) -> Tensor:
    return torch.stack([sobel_map(image, mean, std) for image in images])  # what the picture alone gives


register_reference(Reference("random", "Random map", "a random map", _random, "#BBBBBB", at_chance=True))
register_reference(Reference("uniform", "Uniform map", "the uniform map", _uniform, "#999999", at_chance=True))
register_reference(Reference("sobel", "Sobel edges", "Sobel edges", _sobel, "#56B4E9", at_chance=False))
