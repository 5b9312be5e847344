"""Maps for display: normalised, coloured (lookup tables from plotly's scales), blended over the image."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import plotly.colors
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .methods import AttributionError


def normalize_map(m: Tensor) -> Tensor:
    """Scale each map (H x W, or N x H x W) to [0, 1] by its own min and max.

    A constant map (all zeros included) carries no location and becomes all zeros, with no
    division by zero; NaNs become 0.
    """
    m = torch.nan_to_num(torch.as_tensor(m).detach().float().cpu())
    flat = m.reshape(-1, m.shape[-2] * m.shape[-1]) if m.dim() >= 2 else m.reshape(1, -1)
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    out = torch.where(span > 0, (flat - lo) / span.clamp_min(torch.finfo(torch.float32).tiny), torch.zeros_like(flat))
    return out.reshape(m.shape)


def _lut_from_scale(colors: Sequence[str]) -> np.ndarray:
    rgb = np.array([plotly.colors.unlabel_rgb(c) if c.startswith("rgb") else plotly.colors.hex_to_rgb(c)
                    for c in colors], dtype=np.float64)
    stops = np.linspace(0.0, 1.0, len(rgb))
    grid = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(grid, stops, rgb[:, c]) for c in range(3)], axis=1)
    return np.clip(np.rint(lut), 0, 255).astype(np.uint8)


# Colour maps as 256-entry lookup tables sampled from plotly's colour scales (no matplotlib).
COLORMAPS: dict[str, np.ndarray] = {
    "jet": _lut_from_scale(plotly.colors.sequential.Jet),
    "turbo": _lut_from_scale(plotly.colors.sequential.Turbo),
    "viridis": _lut_from_scale(plotly.colors.sequential.Viridis),
    "inferno": _lut_from_scale(plotly.colors.sequential.Inferno),
}


def colorize(m: Tensor, colormap: str = "jet") -> np.ndarray:
    """An H x W map as an H x W x 3 uint8 colour image (normalised to [0, 1] first)."""
    if colormap not in COLORMAPS:
        raise AttributionError(f"unknown colour map {colormap!r}; choose one of {list(COLORMAPS)}")
    index = (normalize_map(m).numpy() * 255.0 + 0.5).astype(np.uint8)
    return COLORMAPS[colormap][index]


def overlay(image: Image.Image, cam: Tensor, alpha: float = 0.5, colormap: str = "jet") -> Image.Image:
    """The image with the coloured map blended on top (alpha = map's weight), at the image's size."""
    if not 0.0 <= alpha <= 1.0:
        raise AttributionError(f"alpha must be between 0 and 1, got {alpha}")
    cam = torch.as_tensor(cam).detach().float().cpu()
    if cam.dim() != 2:
        raise AttributionError(f"overlay takes one H x W map, got shape {tuple(cam.shape)}")
    base = image.convert("RGB")
    w, h = base.size
    if cam.shape != (h, w):
        # Maps are computed on the resized/cropped network input; stretch to the shown image.
        cam = F.interpolate(cam[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    heat = colorize(cam, colormap).astype(np.float32)
    blended = (1.0 - alpha) * np.asarray(base, dtype=np.float32) + alpha * heat
    return Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8))


def png_bytes(image: Image.Image) -> bytes:
    """PNG file contents, for a download button."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
