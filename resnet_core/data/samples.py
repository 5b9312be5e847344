"""Images to explain: the bundled sample photos and Shapes gallery items."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .images import IMAGE_EXTENSIONS, load_image

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "samples"


@dataclass
class GalleryItem:
    """An image to explain, with its object mask when one is known (Shapes)."""

    name: str
    image: Image.Image
    mask: torch.Tensor | None = None


def shapes_items(images: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor, class_names: Sequence[str],
                 count: int = 4) -> list[GalleryItem]:
    """The first `count` Shapes images (uint8 N x 3 x H x W) as named gallery items with their masks."""
    items = []
    for i in range(count):
        array = images[i].permute(1, 2, 0).numpy()
        label = class_names[int(labels[i])]
        items.append(GalleryItem(f"Shapes sample {i + 1} ({label})", Image.fromarray(array), masks[i]))
    return items


@dataclass(frozen=True)
class SampleImage:
    """A bundled photo: a file under assets/samples and what it shows."""

    name: str
    path: Path
    caption: str

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def load(self) -> Image.Image:
        return load_image(self.read_bytes(), self.path.name)


_SAMPLE_CAPTIONS = {
    "cat_chelsea.jpg": "Chelsea the cat (CC0, Stefan van der Walt, via scikit-image)",
    "coffee.jpg": "Coffee cup (CC0, Rachel Michetti, via scikit-image)",
    "astronaut.jpg": "Astronaut Eileen Collins (public domain, NASA, via scikit-image)",
}


def sample_images() -> list[SampleImage]:
    """The bundled public-domain / CC0 photos (see assets/samples/CREDITS.md), sorted by name."""
    if not SAMPLES_DIR.is_dir():
        return []
    files = sorted(p for p in SAMPLES_DIR.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    return [SampleImage(p.stem, p, _SAMPLE_CAPTIONS.get(p.name, p.stem)) for p in files]
