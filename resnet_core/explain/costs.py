"""How long attribution work takes here: each method's work per image, scaled from a Grad-CAM pass timed on the model.

The unit is one Grad-CAM pass (a forward and a backward pass) on one image, measured on the model being
explained (the page times its overview of the gallery), so an estimate holds for this model, this input size
and this machine, whatever they are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from torch import nn

from .registry import get_method
from .trust import randomization_steps

T = TypeVar("T")

# One perturbed image of a deletion / insertion curve, as a share of a batched pass. Measured here (2 CPU cores):
# about 0.5 at 32 px, 0.5 to 0.8 at 224 px (batches of 41 images bound by memory), so the estimate stays on the
# safe side at 1.
CURVE_SHARE = 1.0


def timed(compute: Callable[[], T]) -> tuple[T, float]:
    """(compute(), the seconds it took)."""
    start = time.perf_counter()
    value = compute()
    return value, time.perf_counter() - start


def method_passes(method: str, height: int, width: int, options: Mapping[str, Any] | None = None) -> float:
    """One image's work for `method`, in Grad-CAM passes (forward + backward): the registry entry's own cost
    (AttributionError for an unknown method)."""
    return get_method(method).passes(height, width, options or {})


def _passes(methods: Sequence[str], size: tuple[int, int], method_options: Mapping[str, Mapping[str, Any]] | None
            ) -> float:
    options = method_options or {}
    return sum(method_passes(m, size[0], size[1], options.get(m)) for m in methods)


def localization_seconds(seconds_per_pass: float, methods: Sequence[str], images: int, size: tuple[int, int],
                         method_options: Mapping[str, Mapping[str, Any]] | None = None) -> float:
    """The localization check on `images` images (batched, as localization_scores runs it)."""
    return seconds_per_pass * images * _passes(methods, size, method_options)


def randomization_seconds(seconds_per_call: float, model: nn.Module, methods: Sequence[str], size: tuple[int, int],
                          granularity: str = "block",
                          method_options: Mapping[str, Mapping[str, Any]] | None = None) -> float:
    """The cascading randomization check on one image: every method once per step, the trained model included.

    `seconds_per_call` is one Grad-CAM call on one image (a batch of one costs more per image than a batch).
    """
    steps = len(randomization_steps(model, granularity)) + 1  # lists the modules, changes nothing
    return seconds_per_call * steps * _passes(methods, size, method_options)


def faithfulness_seconds(seconds_per_pass: float, maps: int, steps: int) -> float:
    """Deletion and insertion curves of `maps` maps on one image (faithfulness_scores): per map, 2 * (steps - 1)
    perturbed images and the image times the map, plus the image and the baseline, forward only, batched."""
    return seconds_per_pass * CURVE_SHARE * (maps * (2 * steps - 1) + 2)


def layer_view_seconds(seconds_per_call: float, seconds_per_pass: float, layers: int, steps: int) -> float:
    """Grad-CAM at `layers` layers of one image (one call each), then each map's curves (layers.layer_scores)."""
    return seconds_per_call * layers + faithfulness_seconds(seconds_per_pass, layers, steps)


def trust_table_seconds(seconds_per_call: float, seconds_per_pass: float, model: nn.Module, methods: Sequence[str],
                        size: tuple[int, int], steps: int, granularity: str = "stage", references: int = 3,
                        computed: Sequence[str] = ()) -> float:
    """The trust table on one image (trust_table.trust_table): the methods' maps not `computed` already, every
    map's curves (the methods' and the `references`' ones), and the cascading randomization of the methods."""
    maps = seconds_per_call * _passes([m for m in methods if m not in computed], size, None)
    curves = faithfulness_seconds(seconds_per_pass, len(methods) + references, steps)
    return maps + curves + randomization_seconds(seconds_per_call, model, methods, size, granularity)
