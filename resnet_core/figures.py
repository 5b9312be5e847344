"""The README's Grad-CAM figures, computed by the code the Grad-CAM page runs, from the files it reads (the bundled
Shapes ResNet-20 and the held-out check set), so that the README and the page quote one value.

    python -m resnet_core.figures    # prints the README's localization phrase

tests/explain/test_readme_figures.py fails when the README's phrase is not this one.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from .assets import bundled_model
from .data import Preprocess, make_shapes, prepare_uint8
from .explain.trust import localization_scores
from .recipes import CHECK_SEED, LOCALIZATION_IMAGES
from .train.run_reading import load_run_model

# The Grad-CAM demo's methods (the page's default), as the page scores them on LOCALIZATION_IMAGES images.
DEMO_METHODS = ("gradcam", "guided_gradcam")


def bundled_localization(methods: Sequence[str] = DEMO_METHODS) -> list[dict[str, Any]]:
    """localization_scores of the bundled ResNet-20 on the page's check set, each image explained for its true
    class at the default layer: the rows the page's localization table shows on its first open."""
    info = bundled_model(residual=True)
    if info is None:
        raise FileNotFoundError("the bundled Shapes ResNet-20 is missing; `python -m resnet_core.assets` builds it")
    model, _, pre = load_run_model(info.path)
    pre = Preprocess.from_dict(pre, default_size=32)
    check = make_shapes(LOCALIZATION_IMAGES, seed=CHECK_SEED, size=pre.image_size)
    return localization_scores(model, prepare_uint8(check.images, pre), check.masks, list(methods),
                               targets=check.labels.tolist())


def percent(share: float) -> str:
    """A share as the page's localization table writes it (one decimal)."""
    return f"{round(100 * share, 1):.1f}%"


def localization_phrase(rows: Sequence[dict[str, Any]]) -> str:
    """The README's words for the rows: "pointing game 71.9% (Guided Grad-CAM 96.9%) vs 15.9–18.8% for uniform
    and random maps" (the first method, the others in brackets, the chance maps' range)."""
    by = {r["method"]: r for r in rows}
    methods = [r for r in rows if r["method"] not in ("uniform", "random")]
    chance = sorted(by[m]["pointing_game"] for m in ("uniform", "random") if m in by)
    others = ", ".join(f"{r['label']} {percent(r['pointing_game'])}" for r in methods[1:])
    said = f"pointing game {percent(methods[0]['pointing_game'])}" + (f" ({others})" if others else "")
    if chance:
        said += f" vs {percent(chance[0]).rstrip('%')}–{percent(chance[-1])} for uniform and random maps"
    return said


def main() -> int:
    print(localization_phrase(bundled_localization()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
