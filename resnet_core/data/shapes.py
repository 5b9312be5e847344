"""Shapes: ten generated shape classes with exact object masks, deterministic from a seed, vectorised."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .containers import DataBundle, DatasetError, ImageSet, channel_stats

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
