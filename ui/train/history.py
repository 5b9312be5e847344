"""The Train page's run history: every run this visitor may see, compared on one chart, downloaded, stopped or
removed by its owner, and promoted to the class's demo model by the lecturer."""

from __future__ import annotations

import streamlit as st

from resnet_core.analysis.bands import same_recipe
from resnet_core.charts import OVERLAY_METRICS, runs_overlay_figure
from resnet_core.serving import class_demo_run, demote, promote, remove_run, stop_run
from resnet_core.status import Status
from resnet_core.train import MODEL_FILE, RunError, RunInfo, list_runs, load_metrics, metrics_csv
from resnet_core.train.safe_read import MAX_CHECKPOINT_BYTES, read_bytes
from ui.charts import chart
from ui.train.session import TrainSession, guarded
from ui.visitor import is_lecturer, owner_label, visible_runs


def _overlay(by_name: dict[str, RunInfo]) -> None:
    chosen = st.multiselect("Compare runs on one chart", list(by_name), default=list(by_name)[:2],
                            key="train_overlay_runs")
    if not chosen:
        return
    o = st.columns([2, 1, 1, 1])
    metric = o[0].selectbox("Metric", list(OVERLAY_METRICS), key="train_overlay_metric",
                            format_func=lambda m: OVERLAY_METRICS[m][1])
    smoothing = o[1].slider("Smoothing", 0.0, 0.99, 0.6, 0.01, key="train_overlay_ema")
    log_y = o[2].toggle("Log scale", key="train_overlay_log")
    as_band = o[3].toggle("Seeds as a band", value=True, key="train_overlay_band",
                          help="Runs of one recipe that differ only in their seed: drawn as their mean with the "
                               "min–max band, so a difference between recipes can be told from the seed's")
    series = {}
    for name in chosen:
        try:
            series[name] = load_metrics(by_name[name].path)
        except RunError as exc:
            st.warning(str(exc))
    groups = list(same_recipe({n: by_name[n].config for n in series}).values()) if as_band else None
    chart(runs_overlay_figure(series, metric, smoothing, log_y, groups=groups), key="train_overlay_chart")
    banded = [g for g in groups or () if len(g) > 1]
    if banded:
        st.caption("Banded: " + "; ".join(f"{', '.join(g)} (the same recipe, {len(g)} seeds)" for g in banded) + ".")


def _one_run(by_name: dict[str, RunInfo], session: TrainSession, demo_run: RunInfo | None) -> None:
    """Download one run's metrics and checkpoint; its owner's Stop / Remove; the lecturer's promote."""
    d = st.columns([2, 1, 1])
    pick = d[0].selectbox("Download a run", list(by_name), key="train_download_run")
    info, me = by_name[pick], session.me
    # Callables: the file is read only when the button is clicked, not on every rerun.
    d[1].download_button("Metrics (CSV)", lambda path=info.path: metrics_csv(path), file_name=f"{pick}-metrics.csv",
                         mime="text/csv", on_click="ignore", key="train_download_csv")
    if info.partial:
        d[2].caption(f"checkpoint from the {info.weights_note}")
    owned = me.may_control(info.owner)
    if info.has_model and not owned:
        d[2].caption("checkpoint: its owner's to download")
    elif info.has_model:
        d[2].download_button(f"Checkpoint ({MODEL_FILE})",
                             lambda p=info.path: read_bytes(p / MODEL_FILE, MAX_CHECKPOINT_BYTES, folder=p),
                             file_name=f"{pick}.pt", mime="application/octet-stream", on_click="ignore",
                             key="train_download_pt")
    else:
        d[2].caption("no checkpoint (the run diverged, failed or is still running)")
    if info.status is Status.RUNNING and owned:
        d[2].button("Stop this run", icon=":material/stop:", key="train_stop_listed", on_click=guarded,
                    args=(stop_run, info.path, me))
    elif info.status.ended and owned:
        d[2].button("Remove this run", icon=":material/delete:", key="train_remove_listed", on_click=guarded,
                    args=(remove_run, info.path, me, () if demo_run is None else (demo_run.name,)),
                    help="Deletes the run's folder (config, metrics and weights) from this server")
    if is_lecturer() and info.status is Status.FINISHED and info.has_model:
        if demo_run is not None and demo_run.name == info.name:
            d[1].button("Back to the bundled demo model", key="train_demote", on_click=guarded,
                        args=(demote, session.runs_dir, me))
        else:
            d[1].button("Make it the class's demo model", icon=":material/star:", key="train_promote",
                        on_click=guarded, args=(promote, session.runs_dir, info.name, me),
                        help="Every visitor's Grad-CAM page then opens on this run")


def run_history(session: TrainSession) -> None:
    st.subheader("Run history")
    runs = visible_runs(list_runs(session.runs_dir))
    if not runs:
        st.caption(f"No runs yet in `{session.runs_dir}`.")
        return
    demo_run = class_demo_run(session.runs_dir)
    st.dataframe([{**r.record(), "started by": owner_label(r.owner),
                   "class demo": "yes" if demo_run is not None and demo_run.name == r.name else ""} for r in runs],
                 hide_index=True, key="train_history")
    damaged = [r for r in runs if r.status is Status.DAMAGED]
    if damaged:
        st.warning("Damaged run folders (not used below): " + "; ".join(f"{r.name}: {r.reason}" for r in damaged))
    by_name = {r.name: r for r in runs if r.status is not Status.DAMAGED}
    if by_name:
        _overlay(by_name)
        _one_run(by_name, session, demo_run)
