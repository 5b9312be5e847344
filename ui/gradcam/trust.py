"""The Grad-CAM page's trust table for the image in the close-up: deletion and insertion curves, then localization,
faithfulness and sensitivity to the weights for each chosen method, with reference maps as rows, on this image and
over several images. The numbers and their sentences come from resnet_core.explain (trust_table, verdicts), the
figures from resnet_core.charts; what is here is widgets, layout and the page's words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import streamlit as st
from torch import Tensor

from resnet_core.charts import deletion_insertion_figure, trust_figure
from resnet_core.explain import (
    DEFAULT_BASELINE,
    DEFAULT_STEPS,
    LAYER_METHODS,
    METHOD_LABELS,
    SENSITIVE_RHO,
    Subject,
    TrustRow,
    TrustTable,
    baseline_label,
    trust_table,
)
from resnet_core.explain.costs import trust_table_seconds
from resnet_core.explain.trust_table import trust_tables
from resnet_core.explain.verdicts import TrustVerdict, trust_verdict
from resnet_core.model.summary import UNIT_SPACE
from resnet_core.share import escape_markdown
from ui.charts import chart
from ui.gradcam.scoring import (
    COLUMN_HELP,
    NO_MASK_WORDS,
    VerdictImages,
    call_text,
    faithful_cells,
    interval_text,
    located_cells,
    mask_for,
    measured,
    verdict_count,
)
from ui.tables import wrapping_table

GRANULARITY = "stage"  # the trust table randomizes a stage at a time: 5 steps for a CIFAR ResNet, not 11


def _rho(row: TrustRow) -> str:
    """Text, so that a reference map's cell shows a dash (a number column would show NaN): it reads no weights."""
    if row.reference:
        return "—"
    return "not measured" if row.randomization_rho is None else f"{row.randomization_rho:.2f}"



def trust_view(subject: Subject, x: Tensor, target: int, mask: Tensor | None, image_key: str,
               methods: Sequence[str], layer: str, maps: Mapping[str, Tensor], seconds_per_call: float,
               seconds_per_pass: float, held_out: VerdictImages) -> TrustTable | None:
    """Deletion and insertion curves of the close-up's maps and of the reference maps, then the trust table:
    localization, faithfulness and sensitivity to the weights for each, on this image and over `held_out`, with
    the sentence computed from them. `maps`: maps of this image already computed with default options (reused)."""
    methods = list(methods) or ["gradcam"]
    st.markdown(
        "**Is it what the model uses?** Faithfulness, on the image in the close-up: deletion and insertion curves "
        "(lower deletion area and higher insertion area are better), Average Drop (how much the class's "
        "probability falls when the image is multiplied by the map, scaled to [0, 1]; lower is better) and "
        "Increase in Confidence (whether it rises instead). Three maps that know nothing of the model are the "
        "yardsticks: a **random** map, a **uniform** one and **Sobel** edges of the picture. A method that does "
        "no better than them explains nothing about the model.")
    located = mask_for(x, mask)
    size = tuple(x.shape[-2:])
    estimate = trust_table_seconds(seconds_per_call, seconds_per_pass, subject.model, methods, size, DEFAULT_STEPS,
                                   GRANULARITY, computed=list(maps))
    own = held_out.own_data
    key = ("trust", subject.key, image_key, int(target), tuple(methods), layer, located is not None, own)
    table = measured(key, lambda: trust_table(
        subject.model, x, target=int(target), mask=located, methods=methods, layer=layer, granularity=GRANULARITY,
        mean=subject.pre.mean, std=subject.pre.std, maps={m: maps[m] for m in methods if m in maps}, own_data=own),
        estimate, f"Score {', '.join(METHOD_LABELS[m] for m in methods)} against the reference maps",
        "gc_trust_button", "the trust table")
    if table is None:
        return None

    records = [f.record() for f in table.faithfulness_results.values()]
    chart(deletion_insertion_figure(records, baseline=baseline_label(DEFAULT_BASELINE),
                                    revision=f"deletion-{subject.key}"), key="gc_deletion_chart")
    st.markdown("**One table: all three checks on this image.** Localization (does the map's peak lie on the "
                "object, and how much of its energy), faithfulness (the curves above, Average Drop and Increase in "
                "Confidence) and sensitivity to the weights (the mean Spearman ρ between the map and the trained "
                "model's while the weights are re-initialised from the head down; reference maps never read the "
                "weights, so they have none).")
    wrapping_table([{"map": r.label, **located_cells(r.pointing_game, r.energy_inside),
                     **faithful_cells(r.deletion_auc, r.insertion_auc, r.faithfulness),
                     "Avg Drop %": round(r.average_drop, 1), "Incr. Conf. %": round(r.increase_in_confidence),
                     "rand. ρ": _rho(r)} for r in table.rows], COLUMN_HELP)
    st.markdown(table.sentence)
    said = _trust_over_images(subject, methods, layer, held_out, seconds_per_pass) if own else None
    if said is not None:
        chart(trust_figure([s.record() for s in said.standings], sensitive_below=SENSITIVE_RHO, n=said.n,
                           revision=f"trust-{subject.key}"), key="gc_trust_chart")
    else:
        chart(trust_figure(table.records(), sensitive_below=SENSITIVE_RHO, revision=f"trust-{subject.key}"),
              key="gc_trust_chart")
    steps = " → ".join(table.randomization_steps[1:])
    layered = [METHOD_LABELS[m] for m in methods if m in LAYER_METHODS]
    at_layer = f", {' and '.join(layered)} at {escape_markdown(layer)}" if layered else ""
    mask_words = "" if located is not None else f" {NO_MASK_WORDS}"
    st.caption(
        f"Class explained: {escape_markdown(subject.classes[table.target])} ({100 * table.probability:.1f}%)"
        f"{at_layer}. Curves: {DEFAULT_STEPS} steps of "
        f"{100 / DEFAULT_STEPS:.0f}% of the pixels, removed pixels replaced with {table.baseline}. Randomization: a "
        f"stage at a time ({steps}); ρ is averaged over the steps. The methods are those chosen above; add one "
        f"there to add its row.{mask_words} Computed in {table.seconds['total']:.1f}{UNIT_SPACE}s here.")
    return table


def _trust_over_images(subject: Subject, methods: Sequence[str], layer: str, held_out: VerdictImages,
                       seconds_per_pass: float) -> TrustVerdict | None:
    """The trust table's scores over the verdict images, mean ± 95% interval, and the verdict they support."""
    n = verdict_count(held_out, "whether a method is faithful and sensitive to the weights")
    if not n:
        return None
    size = tuple(held_out.images.shape[-2:])
    # The maps and the cascade run batched over the images, so each image costs a pass in a batch, not a call.
    estimate = n * trust_table_seconds(seconds_per_pass, seconds_per_pass, subject.model, methods, size,
                                       DEFAULT_STEPS, GRANULARITY)
    tables = measured(("trust-set", subject.key, held_out.keys, held_out.targets, tuple(methods), layer),
                      lambda: trust_tables(subject.model, held_out.images, held_out.targets, held_out.masks,
                                           methods, layer, granularity=GRANULARITY, mean=subject.pre.mean,
                                           std=subject.pre.std),
                      estimate, f"Score the methods over {n} images", "gc_trust_set_button",
                      f"the trust table of {n} images")
    if tables is None:
        return None
    said = trust_verdict([t.rows for t in tables])
    st.markdown(f"**Over {n} images from the model's dataset** (the close-up's first, then held-out ones, each "
                "explained for its true class where known; mean ± 95% interval): a method is called faithful or "
                "sensitive only when the difference is larger than its interval.")
    wrapping_table([{"map": s.label,
                     **({"peak inside % (mean ± 95%)": interval_text(s.pointing_game, 0, 100)}
                        if held_out.masked else {}),
                     "ins − del ↑ (mean ± 95%)": interval_text(s.faithfulness),
                     "rand. ρ (mean ± 95%)": interval_text(s.rho),
                     "faithful": "—" if s.reference else call_text(s.faithful),
                     "sensitive": "—" if s.reference else call_text(s.sensitive)}
                    for s in said.standings], COLUMN_HELP)
    st.markdown(said.sentence)
    return said


def reusable_maps(maps: Mapping[str, Tensor], options: Mapping[str, Any]) -> dict[str, Tensor]:
    """The close-up's maps the trust table can reuse: those made with default options (its randomized maps
    use the defaults, so a map made with other options would not be compared like with like)."""
    return {m: cam for m, cam in maps.items() if not options.get(m)}
