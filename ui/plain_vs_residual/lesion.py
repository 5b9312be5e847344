"""The Plain vs Residual page's lesion study: on the bundled trained pair at once, or on section 3's pair, with
its time said before the click, and refused beforehand when the nets are too close to chance to mean anything."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from resnet_core.analysis import SideBySide
from resnet_core.analysis.lesion import LESION_IMAGES, lesion_job_on, lesion_refusal
from resnet_core.analysis.readings import lesion_reading
from resnet_core.assets import bundled_model, provenance
from resnet_core.charts import lesion_figure
from resnet_core.data import DatasetSpec
from resnet_core.estimates import lesion_seconds
from resnet_core.model import ResNetConfig
from resnet_core.recipes import SHAPES_DATA
from resnet_core.share import escape_markdown
from resnet_core.status import Status
from resnet_core.train import load_run_model
from ui.captions import LESION_TOO_EARLY, caption
from ui.charts import chart
from ui.demos import on_this_device
from ui.jobs import job_view, start_stop
from ui.memo import cached_dataset
from ui.visitor import actor, allow_analysis

BUNDLED, TRAINED = "bundled", "trained"


@dataclass(frozen=True)
class BundledPair:
    """The bundled Shapes plain-20 and ResNet-20 (assets/models), in the twins' order (plain first)."""

    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    configs: tuple[ResNetConfig, ...]
    accuracies: dict[str, float]
    data: DatasetSpec
    summaries: tuple[str, ...]

    @property
    def words(self) -> str:
        nets = " and ".join(f"{label} ({100 * self.accuracies[label]:.1f}% validation accuracy)"
                            for label in self.labels)
        return f"{nets}, trained on Shapes with the app's recipe and bundled with it"


@st.cache_resource(show_spinner=False)
def _bundled(stamp: tuple) -> BundledPair | None:
    paths, labels, configs, accs, summaries, data = [], [], [], {}, [], SHAPES_DATA
    for residual in (False, True):
        info = bundled_model(residual)
        prov = provenance(info.path) if info is not None else None
        if info is None or prov is None or not prov.results:
            return None
        label, result = next(iter(prov.results.items()))
        paths.append(info.path)
        labels.append(label)
        configs.append(ResNetConfig.from_dict(prov.recipe["model"]))
        accs[label] = result["val_acc"]
        summaries.append(prov.summary())
        data = DatasetSpec.from_dict(prov.recipe["dataset"])
    return BundledPair(tuple(paths), tuple(labels), tuple(configs), accs, data, tuple(summaries))


def bundled_pair() -> BundledPair | None:
    """The bundled trained pair, None when this checkout lacks it (or it is damaged)."""
    stamp = tuple(info.path.stat().st_mtime if (info := bundled_model(r)) is not None else None for r in (False, True))
    try:
        return _bundled(stamp)
    except (KeyError, TypeError, ValueError):
        return None


def lesion_controls(job_key: str, pair: SideBySide | None, training: bool, running: bool) -> None:
    """Which pair to study, what it is, how long it takes here, and the start/stop buttons (or why not)."""
    bundled = bundled_pair()
    sources = ([BUNDLED] if bundled is not None else []) + ([TRAINED] if pair is not None else [])
    if not sources:
        st.info("The bundled trained pair is not in this checkout (`python -m resnet_core.assets --only models` "
                "makes it): train the four networks in section 3 first, then study them here.")
        return
    words = {BUNDLED: "The bundled trained pair: plain-20 and ResNet-20 on Shapes (recorded)",
             TRAINED: "The pair trained in section 3"}
    if len(sources) > 1:
        source = st.radio("Study", sources, format_func=words.get, horizontal=True, key="pvr_lesion_source")
    else:
        source = sources[0]
        st.markdown(f"**Study:** {words[source]}.")
    if pair is None:
        st.caption("Train the four networks in section 3 to study your own pair here too.")
    if source == BUNDLED:
        st.caption(f":material/history: **Recorded:** {escape_markdown(bundled.words)} "
                   f"({escape_markdown(bundled.summaries[1])}).")
        configs, refusal = bundled.configs, lesion_refusal(bundled.accuracies, bundled.configs[0].num_classes)
    elif training:
        st.info(LESION_TOO_EARLY)
        return
    else:
        meaningful = [d for d in pair.depths if pair.lesion_refusal(d) is None]
        default = pair.depths.index(meaningful[-1]) if meaningful else len(pair.depths) - 1
        depth = st.selectbox("Depth", pair.depths, default, key="pvr_lesion_depth")
        configs = [cfg for cfg in pair.configs.values() if cfg.depth == depth]
        refusal = pair.lesion_refusal(depth)
        if refusal:
            others = [d for d in meaningful if d != depth]
            instead = f"study depth {others[-1]}, " if others else ""
            refusal += (f". Instead, {instead}study the bundled pair, or train longer (more epochs or images) in "
                        "section 3")
    if refusal:
        st.warning(f"Not run: {refusal}.", icon=":material/block:")
        return
    cols = st.columns([3, 2, 8])
    start = start_stop(cols[0], cols[1], "Run lesion study", "pvr_lesion", running, st.session_state.get(job_key))
    seconds = lesion_seconds(configs, LESION_IMAGES)
    cols[2].caption(f"Deletes each of the {sum(configs[0].stage_blocks)} blocks in turn from each net and measures "
                    f"accuracy on {LESION_IMAGES} validation images: {on_this_device(seconds)}.")
    if not start:
        return
    try:
        allow_analysis(seconds)  # the class's cap, before anything is loaded
        with st.spinner("Loading the trained nets and their validation images…"):
            if source == BUNDLED:
                loaded = [load_run_model(path) for path in bundled.paths]
                data = cached_dataset(bundled.data, spinner="Generating the Shapes dataset…")
                mean, std = loaded[0][2].get("mean", data.mean), loaded[0][2].get("std", data.std)
                job = lesion_job_on([m for m, _, _ in loaded], data.val, mean, std)
            else:
                data = cached_dataset(pair.data, spinner="Generating the Shapes dataset…")
                job = pair.lesion_job(depth, data)
    except ValueError as exc:  # GradientError, RunError, DatasetError: each says what is wrong
        st.error(f"Cannot run the lesion study: {escape_markdown(exc)}")
        return
    st.session_state[job_key] = job.start(owner=actor().owner)
    st.rerun()


def lesion_results(job_key: str, running: bool) -> None:
    """The study's progress, then each net's mean loss per deleted block, the chart and what it shows."""

    @st.fragment(run_every=0.5 if running else None)
    def view() -> None:
        snap = job_view(job_key, running, "lesion study")
        if snap is None or not snap.result:
            return
        results = snap.result
        if snap.status is Status.FINISHED and all(r.near_chance for r in results):
            st.warning("Both networks are close to chance accuracy, so deleting blocks has little left to destroy.")
        cols = st.columns(len(results))
        for col, res in zip(cols, results):
            interval = res.drop_interval  # the same mean as the caption's, with its 95% interval over the images
            lost = "n/a" if not res.drops else (f"{100 * res.mean_drop:.1f} points" if interval is None
                                                 else f"{interval.text(1, 100)} points")
            col.metric(f"{res.label}: mean accuracy lost per deleted block", lost,
                       help=f"intact accuracy {100 * res.baseline:.1f}%")
        chart(lesion_figure(results), key="pvr_lesion_chart")
        st.caption(caption("lesion", lesion_reading(results)))

    view()
