"""What the Grad-CAM page's scoring views share (which layer, the trust table, the localization check): the images a
verdict is read over, computing on demand (memoised per session; behind a button that says its time when the
page's own estimate exceeds AUTO_COMPUTE_S), and the tables' cells with their help."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st
import torch
from torch import Tensor

from resnet_core.data import ImageSet, Preprocess, prepare_uint8, tensor_digest
from resnet_core.estimates import format_duration
from resnet_core.explain import SENSITIVE_RHO, AttributionError
from resnet_core.explain.verdicts import ONE_IMAGE
from resnet_core.share import escape_markdown
from resnet_core.stats import Interval
from ui.memo import memo_get

T = TypeVar("T")

# A check on the Grad-CAM page (these views, the localization score) computes by itself when its estimate here is
# at most this long; a longer one waits for a button that says its time.
AUTO_COMPUTE_S = 8.0
_MEMO = "gc_trust_memo"  # its own small memo, so the page can tell a result already computed from one to ask for
NO_MASK = "no mask"
# Verdicts (which method, which layer) are read over at most this many images from the model's dataset: 8 keep
# both checks within seconds on 2 CPU cores, and on the bundled model they already separate Grad-CAM from the
# reference maps by several times the interval.
VERDICT_IMAGES = 8


@dataclass(frozen=True)
class VerdictImages:
    """The images a verdict is read over: the close-up's first (unless it is not from the model's dataset), then
    the model's held-out images (a Shapes model's check set) or the gallery's other images from its dataset, each
    with the class it is explained for (its true class where known, else the prediction) and its mask (None
    where unknown)."""

    images: Tensor
    targets: tuple[int, ...]
    masks: tuple[Tensor | None, ...]
    keys: tuple[str, ...]
    own_data: bool  # whether the close-up image is from the model's dataset; if not, nothing is decided

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def masked(self) -> bool:
        """Whether every image has its object's mask, so localization can be scored over them all."""
        return all(m is not None for m in self.masks)


def verdict_images(batch: Tensor, probs: Tensor, labels: Sequence[int | None], meaningful: Sequence[bool],
                   masks: Sequence[Tensor | None], keys: Sequence[str], index: int, held_out: ImageSet | None = None,
                   pre: Preprocess | None = None) -> VerdictImages:
    """The close-up image (`index`), then up to VERDICT_IMAGES - 1 more: the model's held-out images with their
    masks where it has them (`held_out`, a Shapes check set, normalised with `pre`), else the gallery's other
    meaningful images."""
    images, targets, fitted, chosen_keys = [], [], [], []

    def add(x: Tensor, target: int, mask: Tensor | None, key: str) -> None:
        if len(targets) < VERDICT_IMAGES and key not in chosen_keys:
            images.append(x)
            targets.append(int(target))
            fitted.append(mask_for(x, mask))
            chosen_keys.append(key)

    def target_of(i: int) -> int:
        return int(labels[i]) if labels[i] is not None else int(probs[i].argmax())

    if meaningful[index]:
        add(batch[index], target_of(index), masks[index], keys[index])
    if held_out is not None and pre is not None:
        extra = prepare_uint8(held_out.images[:VERDICT_IMAGES], pre)
        for x, label, mask in zip(extra, held_out.labels.tolist(), held_out.masks[:VERDICT_IMAGES]):
            add(x, label, mask, tensor_digest(x))
    for i in range(len(keys)):
        if meaningful[i]:
            add(batch[i], target_of(i), masks[i], keys[i])
    stacked = torch.stack(images) if images else batch[:0]
    return VerdictImages(stacked, tuple(targets), tuple(fitted), tuple(chosen_keys), bool(meaningful[index]))


def mask_for(x: Tensor, mask: Tensor | None) -> Tensor | None:
    """The object mask when it matches the image the model sees (a Shapes image), else None."""
    return mask if mask is not None and tuple(mask.shape[-2:]) == tuple(x.shape[-2:]) else None


def measured(key: tuple, compute: Callable[[], T], estimate: float, label: str, button_key: str,
             what: str) -> T | None:
    """`compute()` memoised under `key`; at once when it was computed before or is quick here, else after a
    click on a button that says how long it takes. None (with a message) when it fails or is not asked for."""
    memo = st.session_state.get(_MEMO) or {}
    took = format_duration(estimate)
    if key not in memo and estimate > AUTO_COMPUTE_S and not st.button(f"{label} ({took})", key=button_key):
        return None
    try:
        with st.spinner(f"Computing {what} ({took})..."):
            return memo_get(key, compute, name=_MEMO, limit=8)
    except (AttributionError, RuntimeError, ValueError) as exc:
        st.error(f"Computing {what} failed: {escape_markdown(exc)}")
        return None


NO_MASK_WORDS = f"Localization needs the object's mask, known only for Shapes images: '{NO_MASK}' for this one."
# The tables' short headers, explained under each table (ui.tables).
COLUMN_HELP = {
    "peak inside": "whether the map's highest pixel lies on the object (the pointing game, on one image)",
    "energy inside %": "the share of the map's total that lies on the object; a uniform map scores the object's area",
    "deletion ↓": "area under the deletion curve: the class's probability as the map's most important pixels are "
                  "removed first (lower is better)",
    "insertion ↑": "area under the insertion curve: the class's probability as they are put back first (higher is "
                   "better)",
    "ins − del ↑": "insertion area minus deletion area: one faithfulness number, about 0 for a map in random order",
    "Avg Drop %": "Average Drop: how much the class's probability falls on the image multiplied by the map scaled "
                  "to [0, 1] (lower is better)",
    "Incr. Conf. %": "Increase in Confidence: 100 when that product scores higher than the image itself, else 0",
    "rand. ρ": "mean Spearman rank correlation with the trained model's map while the weights are re-initialised "
               "from the head down (low: the map depends on the weights)",
    "faithful": "whether its ins − del beats every reference map's beyond the noise (the 95% interval of each "
                "difference, image by image, excludes 0)",
    "sensitive": f"whether its rand. ρ is below {SENSITIVE_RHO} beyond the noise",
}
UNDECIDED = "not decided"


def located_cells(pointing: float | None, energy: float | None) -> dict[str, Any]:
    if pointing is None or energy is None:
        return {"peak inside": NO_MASK, "energy inside %": NO_MASK}
    return {"peak inside": yes_no(pointing >= 0.5), "energy inside %": round(100 * energy, 1)}


def faithful_cells(deletion: float, insertion: float, score: float) -> dict[str, float]:
    return {"deletion ↓": round(deletion, 3), "insertion ↑": round(insertion, 3), "ins − del ↑": round(score, 3)}


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def call_text(value: bool | None) -> str:
    return UNDECIDED if value is None else yes_no(value)


def interval_text(i: Interval | None, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    return "—" if i is None else i.text(digits, scale, unit)


def verdict_count(held_out: VerdictImages, what: str) -> int:
    """How many images a verdict on `what` is read over: 0, with a caption saying why, when fewer than two."""
    n = len(held_out)
    if n < 2:
        _few_images(n, what)
        return 0
    return n


def _few_images(n: int, what: str) -> None:
    """Why there is no verdict over several images: the gallery holds too few of the model's own images."""
    have = "no image" if n == 0 else "one image"
    st.caption(f"There is {have} from the model's dataset here, and {ONE_IMAGE}: add images from it to the "
               f"gallery to decide {what} (up to {VERDICT_IMAGES} are used).")

