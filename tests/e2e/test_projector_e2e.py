"""Projector-ready in real Chromium: at 1400x900, 1024x768 and 800x600, in presenter mode and out, no metric, button
label or select on any page is cut off, no word broken, nothing overlapping, no table hiding columns; presenter
mode enlarges chart text and metric values; below about 1000 px the sidebar starts collapsed; the browser's Back
button goes back one page per press."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import assert_no_exception, pick_preset, wait_until_idle
from tests.e2e.layout_checks import layout_problems

pytestmark = pytest.mark.e2e

SIZES = [(1400, 900), (1024, 768), (800, 600)]
# (sidebar link, URL path, what shows once the page has computed what it opens with)
PAGES = [
    ("Build", "Build", ".st-key-build_architecture .js-plotly-plot"),
    ("Train", "Train", None),
    ("Plain vs Residual", "Plain_vs_Residual", None),
    ("Grad-CAM", "Grad-CAM", None),
    ("Home", "", None),
]
GRADCAM_READY = ".st-key-gc_probs_chart .js-plotly-plot"
PROFILE_READY = ".st-key-pvr_profile_convs .js-plotly-plot .xtick text"


def _gradient_profile(page) -> None:
    """The Plain vs Residual page measures its gradient profile on arrival when that is quick here (a busy
    machine estimates longer and asks for the button instead): charts with ticks and a legend."""
    if not page.locator(PROFILE_READY).count():
        page.locator(".st-key-pvr_profile_run button").click()
    page.locator(PROFILE_READY).first.wait_for(timeout=120_000)
    wait_until_idle(page)


def _explain_the_build_model(page) -> None:
    """The Grad-CAM page opens on a Shapes model that needs training; the Build page's model is there at once
    and fills the page: gallery, predictions, maps, their selects and multiselects."""
    page.get_by_text("The Build page's model", exact=True).click()
    page.locator(GRADCAM_READY).first.wait_for(timeout=120_000)
    wait_until_idle(page)


# Chart text that is cut or collides, in the charts each page opens with (by key): a title, tick, legend entry
# or annotation outside the chart's box (plotly clips it there), or the legend on top of an x-axis title.
CHECKED_CHARTS = ("build_architecture", "train_lr_preview", "pvr_profile_convs", "pvr_profile_blocks",
                  "pvr_rec_loss", "pvr_rec_acc", "gc_probs_chart")
CHART_CLASHES = """(keys) => {
  const found = [];
  const within = (r, box) => r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 &&
    r.bottom <= box.bottom + 1;
  const meet = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  for (const key of keys) {
    for (const plot of document.querySelectorAll(`.st-key-${key} .js-plotly-plot`)) {
      const container = plot.querySelector('.svg-container');
      if (!container || !plot.getClientRects().length) continue;
      const box = container.getBoundingClientRect();
      for (const t of plot.querySelectorAll('.main-svg text')) {
        const r = t.getBoundingClientRect();
        if (r.width && t.textContent.trim() && !within(r, box)) {
          found.push(`chart ${key}: "${t.textContent.trim().slice(0, 30)}" outside the chart`);
        }
      }
      const legend = plot.querySelector('.legend');
      for (const title of plot.querySelectorAll('[class$="title"][class^="x"]')) {
        if (legend && title.textContent.trim() && meet(legend.getBoundingClientRect(), title.getBoundingClientRect())) {
          found.push(`chart ${key}: the legend covers the axis title "${title.textContent.trim().slice(0, 30)}"`);
        }
      }
    }
  }
  return found;
}"""

# The largest chart tick, legend and metric-value text on the page, in px (0 when the page has none).
TEXT_SIZES = """() => {
  const px = sel => Math.max(0, ...[...document.querySelectorAll(sel)]
    .map(e => parseFloat(getComputedStyle(e).fontSize) || 0));
  return {tick: px('.js-plotly-plot .xtick text, .js-plotly-plot .ytick text'),
          legend: px('.js-plotly-plot .legendtext'), metric: px('[data-testid="stMetricValue"] p')};
}"""

# Cut-offs that need a change in files this test's fixes (ui/frame.py, ui/presenter.py, ui/charts.py,
# charts/style.py) cannot make for them, all on the Plain vs Residual page: its "Compare with" select (a
# 41-character option in a quarter of the row), the depth selects of its 7-column training row (~75 px wide
# in presenter mode), and the training charts' 8-entry legend (4 live runs and 4 recorded ones; outside
# presenter mode it sits at a fixed fraction of the plot height below the plot and covers the x-axis title
# once it wraps to 3 rows). The test reports them as an expected failure; delete the entries once fixed.
KNOWN_CUT_OFF: tuple[str, ...] = ()  # patterns of cut-offs still to fix; none now

SIDEBAR_COLLAPSED = ("() => document.querySelector('[data-testid=\"stSidebar\"]')"
                     "?.getAttribute('data-collapsed') === 'true'")


def _in_sidebar(page, action) -> None:
    """Do `action` in the sidebar; one that starts collapsed (below 1000 px) is opened for it and closed again,
    so the page is measured as a visitor at that width first sees it."""
    collapsed = page.evaluate(SIDEBAR_COLLAPSED)
    if collapsed:
        page.locator('[data-testid="stExpandSidebarButton"]').click()
        page.wait_for_function(f"() => !({SIDEBAR_COLLAPSED})()", timeout=30_000)
    action(page.locator('[data-testid="stSidebar"]'))
    if collapsed:
        wait_until_idle(page)
        page.locator('[data-testid="stSidebarCollapseButton"] button').click()
        page.wait_for_function(SIDEBAR_COLLAPSED, timeout=30_000)


def _go(page, link: str, path: str, ready: str | None) -> None:
    """Follow the sidebar's link (the session, and so presenter mode, stays) and wait for the page."""
    _in_sidebar(page, lambda sidebar: sidebar.get_by_role("link", name=link, exact=True).click())
    page.wait_for_url(re.compile(f"/{re.escape(path)}(\\?|$)"), timeout=60_000)
    wait_until_idle(page)
    if ready:
        page.locator(ready).first.wait_for(timeout=120_000)
        wait_until_idle(page)


def _presenter_on(page) -> None:
    _in_sidebar(page, lambda sidebar: sidebar.get_by_text("Presenter mode (larger text)").click())
    page.wait_for_function("() => parseFloat(getComputedStyle(document.documentElement).fontSize) > 18",
                           timeout=30_000)
    wait_until_idle(page)


@pytest.mark.slow  # about 2.5 min: five pages, six times (three sizes, presenter mode on and off)
def test_nothing_is_cut_off_and_presenter_mode_enlarges_charts_and_metrics(browser, app_url):
    """Every page's default view at 1400x900, 1024x768 (a projector, sidebar open) and 800x600, presenter mode
    off and on: nothing cut off, no word or number broken over two lines, no text on other text or outside its
    chart, no table hiding columns (tests/e2e/layout_checks.py)."""
    cut: list[str] = []
    sizes: dict[tuple, dict[str, float]] = {}
    for width, height in SIZES:
        for presenter in (False, True):
            context = browser.new_context(viewport={"width": width, "height": height})
            try:
                page = context.new_page()
                page.set_default_timeout(60_000)
                page.goto(app_url)
                wait_until_idle(page)
                # open from 1000 px up (a projector's 1024 px included); narrower, it starts collapsed
                assert page.evaluate(SIDEBAR_COLLAPSED) == (width < 1000), f"the sidebar at {width} px"
                if presenter:
                    _presenter_on(page)
                for link, path, ready in PAGES:
                    _go(page, link, path, ready)
                    if path == "Grad-CAM":
                        _explain_the_build_model(page)
                    if path == "Plain_vs_Residual":
                        _gradient_profile(page)
                    assert_no_exception(page)
                    where = f"{width}x{height}{' presenter' if presenter else ''} /{path}"
                    found = layout_problems(page) + page.evaluate(CHART_CLASHES, list(CHECKED_CHARTS))
                    cut += [f"{where}: {item}" for item in found]
                    sizes[(width, presenter, path)] = page.evaluate(TEXT_SIZES)
            finally:
                context.close()
    for width, _ in SIZES:
        for _, path, _ in PAGES:
            normal, large = sizes[(width, False, path)], sizes[(width, True, path)]
            for what in ("tick", "legend", "metric"):
                if normal[what]:
                    assert large[what] >= 1.3 * normal[what], (width, path, what, normal, large)
    assert sizes[(1400, False, "Plain_vs_Residual")]["tick"] and sizes[(1400, False, "Build")]["metric"]
    known = [c for c in cut if any(re.search(pattern, c) for pattern in KNOWN_CUT_OFF)]
    assert not set(cut) - set(known), "cut off:\n" + "\n".join(sorted(set(cut) - set(known)))
    if known:
        pytest.xfail("known cut-offs on the Plain vs Residual page (see KNOWN_CUT_OFF):\n" + "\n".join(known))


def test_the_sidebar_starts_collapsed_below_1000_px_and_opens_on_request(browser, app_url):
    context = browser.new_context(viewport={"width": 900, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{app_url}/Build")
        wait_until_idle(page)
        page.wait_for_function(SIDEBAR_COLLAPSED, timeout=30_000)
        page.locator('[data-testid="stExpandSidebarButton"]').click()
        page.wait_for_function(f"() => !({SIDEBAR_COLLAPSED})()", timeout=30_000)
        # The visitor opened it: it stays open on the next page.
        _go(page, "Train", "Train", None)
        assert not page.evaluate(SIDEBAR_COLLAPSED)
        assert_no_exception(page)
    finally:
        context.close()


def test_one_back_press_returns_to_the_previous_page(page, app_url):
    """Streamlit adds a history entry for a page change and another when a run changes the query string; the
    sidebar's links arrive with the query their page writes (ui/share.py page_query), so there is one."""
    page.goto(app_url)
    wait_until_idle(page)
    _go(page, "Build", "Build", ".st-key-build_architecture .js-plotly-plot")
    _go(page, "Train", "Train", None)
    page.go_back()
    page.wait_for_url(re.compile(r"/Build(\?|$)"), timeout=30_000)
    expect(page.locator("h1").filter(has_text="Build a ResNet").first).to_be_visible(timeout=60_000)
    wait_until_idle(page)
    page.go_back()
    page.wait_for_url(re.compile(r"^[^?]*/(\?.*)?$"), timeout=30_000)
    expect(page.locator("h1").filter(has_text="ResNet Explorer").first).to_be_visible(timeout=60_000)


def test_back_returns_to_the_page_as_it_was_left(page, app_url):
    """A changed setting travels in the page's URL, and the sidebar link out of it does not add a second entry:
    Back from the next page shows the model that was built."""
    page.goto(app_url)
    wait_until_idle(page)
    _go(page, "Build", "Build", ".st-key-build_architecture .js-plotly-plot")
    pick_preset(page, "resnet32", "464.15 k")
    _go(page, "Train", "Train", None)
    expect(page.get_by_text("resnet32 from the Build page", exact=False).first).to_be_visible(timeout=60_000)
    page.go_back()
    page.wait_for_url(re.compile(r"/Build\?preset=resnet32$"), timeout=30_000)
    expect(page.get_by_text("464.15 k", exact=True).first).to_be_visible(timeout=60_000)
    wait_until_idle(page)
    assert_no_exception(page)


def test_widget_changes_replace_the_history_entry_and_presenter_mode_survives_a_reload(page, app_url):
    """Three changes of a setting on one page leave one history entry for it (one Back press leaves the page),
    and presenter mode travels in the URL: a reload keeps it on."""
    page.goto(app_url)
    wait_until_idle(page)
    _go(page, "Build", "Build", ".st-key-build_architecture .js-plotly-plot")
    for preset, params in (("resnet32", "464.15 k"), ("resnet44", "658.59 k"), ("resnet56", "853.02 k")):
        pick_preset(page, preset, params)
    page.go_back()
    page.wait_for_url(re.compile(r"^[^?]*/(\?.*)?$"), timeout=30_000)
    expect(page.locator("h1").filter(has_text="ResNet Explorer").first).to_be_visible(timeout=60_000)
    wait_until_idle(page)

    page.get_by_text("Presenter mode (larger text)").click()
    wait_until_idle(page)
    page.wait_for_url(re.compile(r"presenter=1"), timeout=30_000)
    page.reload()
    wait_until_idle(page)
    assert page.evaluate("() => getComputedStyle(document.documentElement).fontSize") == "21px"
    assert "presenter=1" in page.url
    assert_no_exception(page)
