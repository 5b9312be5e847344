"""The Plain vs Residual page's loss-landscape view (Li et al. 2018): the recorded 56-layer pair at once, the live
20-layer pair from its button (its time here said before the click, drawn next to the button while it fills in),
and captions read off the surfaces (resnet_core.analysis.landscape_reading), never written in advance."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from resnet_core.analysis.landscape import LIVE_SPEC, Landscape, held_out, landscape_job
from resnet_core.analysis.landscape_reading import figures, landscape_reading
from resnet_core.assets import ASSETS_DIR, bundled_model
from resnet_core.charts.landscape import landscape_contour_figure, landscape_lines_figure, landscape_surface_figure
from resnet_core.estimates import landscape_seconds
from resnet_core.landscape_assets import LANDSCAPE_FILE, RECORDED_LANDSCAPE, matches_recipe, recorded_landscape
from resnet_core.recipes import CHECK_SEED
from resnet_core.share import escape_markdown
from resnet_core.status import Status
from resnet_core.train import load_run_model
from ui.charts import chart
from ui.demos import on_this_device
from ui.jobs import job_running, job_view, start_stop
from ui.share import LINKED_DEMO_KEY

DEMO = "landscape"
ANCHOR = "loss-landscape"
JOB_KEY = "pvr_landscape_job"

LOOK = ("Each panel moves the trained weights along two random directions, each filter of a direction scaled to "
        "the size of the same filter of the weights (filter normalization), with BatchNorm in eval mode, and "
        "plots the loss on the same held-out Shapes images: the centre (×) is the trained net. Look at how far from "
        "the centre the loss climbs, and whether the valley is one smooth bowl or broken into ridges and pockets.")
FOUND = ("Li et al. 2018 (their Figure 1, ResNet-56 on CIFAR-10) found the net without skip connections chaotic and "
         "strongly non-convex, and the same net with them smooth and nearly convex around its minimum.")
NOTE = ("The convex share is read off the plotted plane: the Hessian of the loss restricted to the two directions, by "
        "finite differences between grid points; Li et al. map the full Hessian's |λmin/λmax|.")


@st.cache_resource(show_spinner=False, max_entries=2)
def _recorded(stamp: float) -> tuple[list[Landscape], str, bool] | None:
    found = recorded_landscape()
    return None if found is None else (found[0], found[1].summary(), matches_recipe(found[1]))


def _recorded_pair() -> tuple[list[Landscape], str, bool] | None:
    """The recorded 56-layer landscapes, their provenance line and whether they were trained with the degradation
    demo's recipe as it is now; read once per version of the file and shared by every session (read-only)."""
    path = ASSETS_DIR / RECORDED_LANDSCAPE / LANDSCAPE_FILE
    try:
        stamp = path.stat().st_mtime
    except OSError:
        return None
    return _recorded(stamp)


def landscape_pointer() -> None:
    """For a visitor who followed Home's link to this demo: the view is far down the page, so say where."""
    if st.session_state.get(LINKED_DEMO_KEY) == DEMO:
        st.info(f"You followed a link to the lecture demo *The loss landscape*: it is [section 6, below](#{ANCHOR}).",
                icon=":material/school:")


def _draw(results: Sequence[Landscape], key: str, running: bool = False) -> None:
    """Each net's figures as cards, the 1-D slices, the surfaces as contours and in 3-D (once finished: a 3-D
    chart redrawn every second costs the browser more than the rest), and what they show."""
    done = [r for r in results if r.complete]
    cols = st.columns(max(len(done), 1))
    for col, r in zip(cols, done):
        f = figures(r)
        radius = "beyond the slice" if f.radius is None else f"{f.radius:.2f}"
        col.metric(f"{f.label}: loss doubles at distance", radius,
                   help="from the lowest point of each 1-D slice to where its loss is twice as high, mean of both "
                        "sides and of the directions (in units of the filter-normalized direction)")
        col.caption(f"held-out loss {f.center_loss:.3f} ({100 * f.center_acc:.1f}% correct) at the trained weights; "
                    f"locally convex on {100 * f.convex_share:.0f}% of the plane")
    chart(landscape_lines_figure(results, revision=f"{key}-1d"), key=f"{key}_1d")
    if running:
        chart(landscape_contour_figure(results, revision=f"{key}-2d"), key=f"{key}_2d")
    else:
        contour, surface = st.tabs(["Contours", "3-D"])
        chart(landscape_contour_figure(results, revision=f"{key}-2d"), key=f"{key}_2d", where=contour)
        chart(landscape_surface_figure(results, revision=f"{key}-3d"), key=f"{key}_3d", where=surface)
    if done:
        st.caption(" ".join((LOOK, landscape_reading(done), FOUND, NOTE)))


def landscape_section() -> None:
    """Section 6 of the page: the recorded pair, then the live pair's button with its result next to it."""
    st.header("6 · The loss landscape", anchor=ANCHOR)
    st.markdown("What the optimizer sees: the loss around the trained weights of a plain net and its residual twin, "
                "along filter-normalized random directions (Li et al. 2018).")
    recorded = _recorded_pair()
    if recorded is None:
        st.info("The recorded 56-layer landscapes are not in this checkout (`python -m resnet_core.assets --only "
                "landscape` makes them); compute the 20-layer pair live below.")
    else:
        results, summary, current = recorded
        spec = results[0].spec
        st.markdown(f"**Recorded: plain-56 and ResNet-56**, trained with the degradation demo's recipe, "
                    f"{spec.steps_2d} × {spec.steps_2d} grid, {spec.directions} 1-D directions, "
                    f"{spec.n_images} held-out images.")
        _draw(results, "pvr_landscape_rec")
        older = "" if current else (" These nets were trained with an earlier recipe of the degradation demo than "
                                    "the one its **Run it live** trains now.")
        st.caption(f":material/history: **Recorded**, not live: {escape_markdown(summary)}.{older}")
    _live_controls()
    _live_view(job_running(JOB_KEY))


def _live_controls() -> None:
    if bundled_model(False) is None or bundled_model(True) is None:
        st.info("The bundled plain-20 and ResNet-20 are not in this checkout (`python -m resnet_core.assets --only "
                "models` makes them), so there is no live pair to compute.")
        return
    running = job_running(JOB_KEY)
    cols = st.columns([3, 2, 8])
    start = start_stop(cols[0], cols[1], "Compute the 20-layer pair", "pvr_landscape", running,
                       st.session_state.get(JOB_KEY))
    spec = LIVE_SPEC
    cols[2].caption(f"The bundled plain-20 and ResNet-20 (trained on Shapes): {spec.directions} 1-D slices of "
                    f"{spec.steps_1d} points and a {spec.steps_2d} × {spec.steps_2d} surface each, on {spec.n_images} "
                    f"held-out images: {on_this_device(landscape_seconds((), spec))}.")
    if not start:
        return
    try:
        loaded = [load_run_model(bundled_model(residual).path) for residual in (False, True)]
        images, labels = held_out(spec.n_images, loaded[0][2], CHECK_SEED)
        # Fresh models for this job: the landscape moves their weights, so no other session may share them.
        job = landscape_job([model for model, _, _ in loaded], images, labels, spec)
    except (ValueError, AttributeError) as exc:  # RunError, LandscapeError, a model gone since the check above
        st.error(f"Cannot compute the landscape: {escape_markdown(exc)}")
        return
    st.session_state[JOB_KEY] = job.start()
    st.rerun()


def _live_view(running: bool) -> None:
    @st.fragment(run_every=1.0 if running else None)
    def view() -> None:
        snap = job_view(JOB_KEY, running, "loss landscape")
        if snap is None or not snap.result:
            return
        if snap.status is Status.STOPPED:
            st.caption("Stopped: the points not computed are left blank, and the caption reads only finished nets.")
        st.markdown("**Live: plain-20 and ResNet-20** (the bundled pair), computed here.")
        _draw(snap.result, "pvr_landscape_live", running=snap.running)

    view()
