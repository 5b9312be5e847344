"""A lecture, walked through in real Chromium as a presenter would click it, on a server whose runs
folder starts empty (a fresh install: only the bundled demo assets).

Home -> Grad-CAM (its first view: the bundled Shapes model's maps, top-k and localization score) ->
Build -> Train one short run -> Plain vs Residual (its opening chart, the recorded degradation run, then
the "Why normalization matters" demo) -> Grad-CAM again, on the run trained here ("Where does the network
look?" demo). On every page: no exception, no error box, and every chart drawn has data.

With SCREENSHOT_DIR set (see README), the run uses the pages' full defaults and also runs the
degradation demo, and saves the README's screenshots; otherwise it stays small for CI.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import SCREENSHOT_DIR, assert_no_exception, pick_preset, screenshot, wait_until_idle
from tests.e2e.server import served_app

pytestmark = pytest.mark.e2e

# For every plotly chart on the page: how many data points its traces hold (x, y or z values).
CHART_POINTS = """() => [...document.querySelectorAll('.js-plotly-plot')].map(g => (g.data || []).reduce(
    (n, t) => n + Math.max((t.x || []).length, (t.y || []).length, (t.z || []).length), 0))"""
FULL = bool(SCREENSHOT_DIR)  # README pictures: real defaults, worth the minutes


def assert_page_healthy(page, min_charts: int = 0) -> None:
    # Live charts fill in as their background job reports; give them a little while.
    page.wait_for_function(f"() => ({CHART_POINTS})().every(n => n > 0)", timeout=60_000)
    assert_no_exception(page)
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, f"error box: {errors.first.inner_text()[:300]}"
    points = page.evaluate(CHART_POINTS)
    assert len(points) >= min_charts, f"expected at least {min_charts} charts, found {len(points)}"
    assert all(n > 0 for n in points), f"a chart without data: points per chart {points}"


def click_demo(page, key: str) -> None:
    page.locator(f".st-key-demo_panel_{key}").get_by_role("button", name="Run demo").click()


def go_to(page, title: str) -> None:
    """Through the sidebar, as a presenter does: the browser session (and the built model) is kept."""
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name=re.compile(re.escape(title))).first.click()
    expect(page.locator("h1").filter(has_text=title).first).to_be_visible(timeout=60_000)
    wait_until_idle(page)


def choose_preset(page, name: str, parameters: str) -> None:
    pick_preset(page, name, parameters)


def set_number(page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_until_idle(page)


@pytest.fixture(scope="module")
def fresh_app_url(tmp_path_factory):
    """Its own server, with a runs folder nobody has trained into: what a newcomer's first start looks like."""
    runs_dir = tmp_path_factory.mktemp("empty-runs")
    with served_app(runs_dir, tmp_path_factory.mktemp("lecture-logs") / "streamlit.log") as (url, _):
        yield url, runs_dir


def test_the_lecture_flow(page, fresh_app_url):
    app_url, runs_dir = fresh_app_url
    assert not any(runs_dir.iterdir())
    # Home: the three demos, each saying when its answer appears here and what it took when recorded.
    page.goto(app_url)
    wait_until_idle(page)
    for title in ("The degradation problem", "Why normalization matters", "Where does the network look?"):
        expect(page.get_by_role("link", name=re.compile(f"Open the demo: {re.escape(title)}"))).to_be_visible()
    assert page.get_by_text(re.compile(r"(about \d+\s(s|min)|under a second) on this CPU")).count() >= 2
    assert page.get_by_text(re.compile(r"at once")).count() >= 2  # recorded degradation, bundled Grad-CAM model
    assert page.get_by_text(re.compile(r"^Recorded on ")).count() == 4  # the loss landscape's too
    assert_page_healthy(page)
    screenshot(page, "home")

    # Grad-CAM before anything was trained: the bundled model's maps, predictions and score on the first view.
    go_to(page, "Grad-CAM")
    page.locator(".st-key-gc_loc_chart .js-plotly-plot").wait_for(timeout=120_000)
    wait_until_idle(page)
    maps = page.locator('[data-testid="stImage"] img')
    assert maps.count() >= 2, f"{maps.count()} images with maps on the first view"
    expect(page.get_by_text(re.compile("recorded", re.I)).first).to_be_visible()
    assert_page_healthy(page, min_charts=2)  # top-k and localization
    assert not any(runs_dir.iterdir()), "the first view trained something"

    # Build: the default model is drawn; switching the preset redraws it and updates the link.
    go_to(page, "Build")
    choose_preset(page, "resnet56", "853.02 k")
    assert_page_healthy(page, min_charts=1)
    page.wait_for_url(re.compile(r"preset=resnet56"), timeout=30_000)  # the setup is in the URL, ready to share
    choose_preset(page, "resnet20", "269.72 k")  # the one this lecture trains
    assert_page_healthy(page, min_charts=1)
    screenshot(page, "build")

    # Train: one short run of the built ResNet-20 on Shapes, live charts, then the run is saved.
    go_to(page, "Train")
    expect(page.get_by_text("resnet20 from the Build page", exact=False).first).to_be_visible()
    if not FULL:
        set_number(page, "Training images", 1500)  # 92 steps: enough to learn (600 ended "did not learn")
        set_number(page, "Validation images", 200)
        page.get_by_text("Hyper-parameters").click()
        set_number(page, "Epochs", 2)
    page.get_by_role("button", name="Start").click()
    page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="finished").first.wait_for(
        timeout=(400 if FULL else 180) * 1000)
    wait_until_idle(page)
    assert_page_healthy(page, min_charts=4)
    screenshot(page, "train")

    # Plain vs Residual: the recorded degradation run and the gradient profile are there on arrival; then the
    # normalization demo.
    go_to(page, "Plain vs Residual")
    page.locator(".st-key-pvr_rec_loss .js-plotly-plot").wait_for(timeout=60_000)
    expect(page.locator(".st-key-demo_panel_degradation").get_by_text(re.compile("Recorded")).first).to_be_visible()
    page.locator(".st-key-pvr_profile_convs .js-plotly-plot").wait_for(timeout=120_000)  # measured on arrival
    wait_until_idle(page)
    assert_page_healthy(page, min_charts=4)
    click_demo(page, "normalization")
    page.locator(".st-key-pvr_sweep_chart_nobn .js-plotly-plot").wait_for(timeout=180_000)
    expect(page.get_by_role("button", name="Run sweep")).to_be_enabled(timeout=180_000)  # the sweep is done
    wait_until_idle(page)
    expect(page.get_by_text("Image px")).to_be_visible()
    assert_page_healthy(page, min_charts=4)
    screenshot(page, "depth_sweep", start_at=".st-key-demo_panel_normalization", height=1300)
    if FULL:
        page.locator(".st-key-demo_panel_degradation").get_by_role("button", name="Run it live").click()
        page.get_by_text("ResNet-56: finished").first.wait_for(timeout=900_000)
        wait_until_idle(page)
        assert_page_healthy(page, min_charts=8)
        screenshot(page, "degradation", start_at=".st-key-demo_panel_degradation", height=1500)
    screenshot(page, "plain_vs_residual")

    # Grad-CAM: the Shapes run trained above is the demo model; the demo scores the maps.
    go_to(page, "Grad-CAM")
    expect(page.get_by_text("Shapes sample 1").first).to_be_attached()
    click_demo(page, "gradcam")
    page.locator(".st-key-gc_loc_chart .js-plotly-plot").wait_for(timeout=180_000)
    wait_until_idle(page)
    assert page.get_by_text("pointing game %").count() >= 1 or page.locator('[data-testid="stDataFrame"]').count() >= 2
    assert_page_healthy(page, min_charts=2)
    screenshot(page, "gradcam")
    screenshot(page, "gradcam_trust", start_at="h3:has-text('Can the map be trusted?')", height=1100)
