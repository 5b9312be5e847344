"""What the page's results say, read from their numbers: the close-up's default image and the randomization
readings that the captions state (verdicts over several images are in verdicts.py).

Captions on the Grad-CAM page state what *this* model's results show, so every size, trend and verdict they
name is computed here from the result on screen, never written in advance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .methods import METHOD_LABELS, AttributionError
from .trust import RandomizationResult

# ---- the close-up's default image ------------------------------------------------------------------------


def best_example(probs: Tensor, labels: Sequence[int | None]) -> int:
    """The image to explain first: the most confident correct prediction among the images whose true class is
    known (`labels[i]`, None where it is not), else the most confident prediction of all.

    `probs` is N x classes (from `predict`).
    """
    probs = torch.as_tensor(probs)
    if probs.dim() != 2 or probs.shape[0] == 0:
        raise AttributionError(f"best_example takes N x classes probabilities, got shape {tuple(probs.shape)}")
    if len(labels) != probs.shape[0]:
        raise AttributionError(f"{probs.shape[0]} images but {len(labels)} labels")
    confidence, predicted = probs.max(dim=1)
    correct = [i for i, label in enumerate(labels) if label is not None and int(predicted[i]) == int(label)]
    pool = correct or list(range(probs.shape[0]))
    return max(pool, key=lambda i: float(confidence[i]))


# ---- localization: see verdicts.localization_sentence (means with intervals, compared with chance per image) --


# ---- randomization -------------------------------------------------------------------------------------------

# Spearman rho with the trained model's map once every layer is re-initialised
DEPENDS = 0.3  # at most this: the map depends on the weights
PARTLY = 0.7  # below this: it depends on them, but not fully; from here on it barely does


@dataclass(frozen=True)
class RandomizationReading:
    """Where one method's map ended after full randomization, and where it went on the way."""

    method: str
    label: str
    final: float  # rank correlation with the trained map, every layer re-initialised
    low: float  # the lowest and highest correlation after the first step
    high: float
    steps: int  # re-initialisation steps (the trained model not counted)

    @property
    def verdict(self) -> str:
        """"depends" (the map changed with the weights: it passes), "partly" (it depends on them, but not
        fully) or "barely" (it hardly changed: it fails the check)."""
        if self.final <= DEPENDS:
            return "depends"
        if self.final < PARTLY:
            return "partly"
        return "barely"


def randomization_readings(result: RandomizationResult) -> list[RandomizationReading]:
    """One reading per method of a randomization check (methods with fewer than two steps are left out)."""
    readings = []
    for method, values in result.correlations.items():
        after = values[1:]
        if not after:
            continue
        readings.append(RandomizationReading(method, METHOD_LABELS.get(method, method), float(after[-1]),
                                             float(min(after)), float(max(after)), len(after)))
    return readings


# On one image a reading says what this image's map did, not whether the method passes: that is a verdict over
# several images (the trust table's, verdicts.trust_verdict).
_MOVED = {"depends": "on this image the map changed with the weights",
          "partly": "on this image the map changed with the weights, but not fully",
          "barely": "on this image the map barely changed with the weights"}


def randomization_sentence(readings: Sequence[RandomizationReading], own_data: bool = True) -> str:
    """The randomization check's caption for one image: each method's final and range, what its map did on this
    image, and that one image decides nothing (an image not from the model's dataset gets the numbers only)."""
    said = " ".join(f"**{r.label}** fell from 1 to {r.final:.2f} once every layer was re-initialised (between "
                    f"{r.low:.2f} and {r.high:.2f} on the way)" + (f": {_MOVED[r.verdict]}." if own_data else ".")
                    for r in readings)
    if not said:
        return ""
    if not own_data:
        return (f"{said} No verdict: this image is not from the model's dataset, so whether a method passes the "
                "check is not read from it.")
    return (f"{said} One image cannot decide whether a method passes the check: the trust table below reads it over "
            "several images.")
