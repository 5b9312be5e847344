"""The Grad-CAM page's first two trust checks: does the map point at the object (localization on held-out Shapes
images with masks), and does it depend on the model (cascading randomization on this image)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from resnet_core.charts import localization_figure, randomization_figure
from resnet_core.data import prepare_uint8
from resnet_core.estimates import format_duration
from resnet_core.explain import (
    METHOD_LABELS,
    REPEATABLE_METHODS,
    AttributionError,
    localization_scores,
    randomization_check,
    randomization_granularity,
)
from resnet_core.explain.costs import localization_seconds, randomization_seconds, timed
from resnet_core.explain.readings import randomization_readings, randomization_sentence
from resnet_core.explain.subjects import Subject
from resnet_core.explain.verdicts import localization_sentence
from resnet_core.recipes import LOCALIZATION_IMAGES
from resnet_core.share import escape_markdown
from resnet_core.stats import mean_interval
from ui.charts import chart
from ui.gradcam.closeup import CloseUp
from ui.gradcam.gallery import Gallery
from ui.gradcam.scoring import AUTO_COMPUTE_S
from ui.gradcam.sources import cached_shapes_check
from ui.gradcam.subject import AUTOSCORE_KEY, DEMO_RAN_KEY, L
from ui.tables import wrapping_table

LOCALIZATION_KEY = "gc_loc_result"
RANDOMIZATION_KEY = "gc_rand_result"


@dataclass(frozen=True)
class Localization:
    """The last localization scores this session computed, and for what."""

    subject_key: str
    asked: tuple  # the methods, layer and options scored
    rows: list[dict[str, Any]]  # localization_scores' rows: the methods', then the reference maps'
    seconds: float


@dataclass(frozen=True)
class Randomization:
    """The last randomization check this session ran, and on which image."""

    subject_key: str
    image_key: str
    result: Any  # trust.RandomizationResult


def _score(subject: Subject, methods: list[str], options: dict, layer: str, took: str) -> tuple | None:
    data = cached_shapes_check(LOCALIZATION_IMAGES, subject.pre.image_size)
    try:
        with st.spinner(f"Explaining {LOCALIZATION_IMAGES} images with each method ({took})..."):
            check_x = prepare_uint8(data.images, subject.pre)
            return timed(lambda: localization_scores(subject.model, check_x, data.masks, methods,
                                                     targets=data.labels.tolist(), layer=layer,
                                                     method_options=options))
    except (AttributionError, RuntimeError, ValueError) as exc:
        st.error(f"The localization check failed: {escape_markdown(exc)}")
        return None


def localization_check(subject: Subject, c: CloseUp, g: Gallery, answer_slot: Any = None) -> None:
    """The localization check; its sentence is also the Grad-CAM demo's answer, written in the demo's panel
    (`answer_slot`) once the demo has been run in this session."""
    st.markdown("**Does it point at the object?** On held-out Shapes images the object's exact mask is known: the "
                "pointing game counts how often the map's peak lies on the object, and the energy share how much of "
                "the map lies there. A uniform or random map scores the object's area fraction (chance).")
    if not subject.on_shapes:
        st.info("This check needs a model trained on Shapes (the only images here with known object masks): choose "
                "the Shapes demo model or a Shapes run.")
        return
    size = (subject.pre.image_size, subject.pre.image_size)
    methods = [m for m in c.methods if m in REPEATABLE_METHODS] or ["gradcam"]
    options = {m: o for m, o in c.options_by_method.items() if m in methods}
    asked = (tuple(methods), c.layer, tuple(sorted((m, tuple(sorted(o.items()))) for m, o in options.items())))
    estimate = localization_seconds(g.seconds_per_pass, methods, LOCALIZATION_IMAGES, size, options)
    took = format_duration(estimate)
    last: Localization | None = st.session_state.get(LOCALIZATION_KEY)
    fresh = last is not None and (last.subject_key, last.asked) == (subject.key, asked)
    # Scored by itself when it is quick (or the demo asks); else a button that says how long it takes.
    score = not fresh and (st.session_state.pop(AUTOSCORE_KEY, False) or estimate <= AUTO_COMPUTE_S)
    if not fresh and not score:
        score = st.button(f"Score {', '.join(METHOD_LABELS[m] for m in methods)} on {LOCALIZATION_IMAGES} Shapes "
                          f"images ({took})", key="gc_loc_button")
    if score:
        scored = _score(subject, methods, options, c.layer, took)
        if scored is not None:
            last = st.session_state[LOCALIZATION_KEY] = Localization(subject.key, asked, *scored)
            fresh = True
    if last is None or last.subject_key != subject.key:
        return
    if not fresh:
        st.caption(f"Shown: the last scores, for {', '.join(r['label'] for r in last.rows if not r['reference'])}; "
                   "press the button for the methods and layer chosen above.")
    chart(localization_figure(last.rows), key="gc_loc_chart")
    wrapping_table(localization_records(last.rows))
    said = localization_caption(last.rows, last.seconds)
    st.caption(said)
    if answer_slot is not None and st.session_state.get(DEMO_RAN_KEY) and said:
        answer_slot.success(f"**Answer:** {said} The chart and table are under *Can the map be trusted?* below.",
                            icon=":material/arrow_downward:")


def randomization_view(subject: Subject, c: CloseUp, g: Gallery, per_call: float) -> None:
    st.markdown("**Does it depend on the model?** Re-initialise the weights from the head down, block by block "
                "(Adebayo et al. 2018), and compare each map with the trained model's (Spearman rank correlation). "
                "An explanation of the model must change as the model is destroyed.")
    methods = L["gc_rand_methods"].widget(st.multiselect, "Methods to check", format_func=METHOD_LABELS.get)
    granularity, blocks = randomization_granularity(subject.model)
    size = (subject.pre.image_size, subject.pre.image_size)
    options = {m: o for m, o in c.options_by_method.items() if m in methods}
    took = format_duration(randomization_seconds(per_call, subject.model, methods, size, granularity, options))
    if st.button(f"Run the randomization check on this image ({took})", key="gc_rand_button", disabled=not methods):
        bar = st.progress(0.0, text="randomizing...")
        try:
            result = randomization_check(subject.model, c.x, methods, target=c.target, layer=c.layer,
                                         granularity=granularity, keep_maps=False,
                                         progress=lambda f, step: bar.progress(f, text=f"randomized down to {step}"))
            st.session_state[RANDOMIZATION_KEY] = Randomization(subject.key, c.image_key, result)
        except (AttributionError, RuntimeError, ValueError) as exc:
            st.error(f"The randomization check failed: {escape_markdown(exc)}")
        bar.empty()
    last: Randomization | None = st.session_state.get(RANDOMIZATION_KEY)
    if last is None or (last.subject_key, last.image_key) != (subject.key, c.image_key):
        return
    result = last.result
    chart(randomization_figure(result.steps, result.correlations, METHOD_LABELS), key="gc_rand_chart")
    said = randomization_sentence(randomization_readings(result), g.meaningful[c.index])
    st.caption("Each point: every layer from the head down to the one named is re-initialised, and the map for the "
               f"same class is compared with the trained model's, on this one image. {said} Guided Grad-CAM is "
               "known to barely change (Adebayo et al. 2018, on ImageNet networks): its guided-backprop factor "
               "mostly recovers image edges whatever the weights, which is why it fails this check there. On small "
               "networks it can follow Grad-CAM more closely, since the Grad-CAM factor it multiplies by does change"
               + (f"; steps are whole stages for this {blocks}-block model." if granularity == "stage" else "."))


def localization_records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The localization check's table: each method's pointing game and energy share, mean and 95% interval."""
    out = []
    for r in rows:
        pointing, energy = (mean_interval(r["per_image"][k]) for k in ("pointing_game", "energy_inside"))
        out.append({"method": r["label"], "pointing game %": round(100 * r["pointing_game"], 1),
                    "± 95% (points)": round(100 * pointing.half_width, 1) if pointing.known else None,
                    "energy inside %": round(100 * r["energy_inside"], 1),
                    "± 95% (points) ": round(100 * energy.half_width, 1) if energy.known else None, "images": r["n"]})
    return out


def localization_caption(rows: Sequence[Mapping[str, Any]], seconds: float) -> str:
    """What the localization rows show, each mean with its interval, ranked only beyond the noise."""
    said = localization_sentence(rows, METHOD_LABELS)
    return f"{said} Scored in {format_duration(seconds)}." if said else ""

