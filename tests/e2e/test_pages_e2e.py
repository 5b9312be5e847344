"""Every page opens in real Chromium without an exception; the Build page reacts to a preset switch."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import ROOT, assert_no_exception, pick_preset, wait_until_idle

pytestmark = pytest.mark.e2e

PAGE_PATHS = sorted(p.stem.split("_", 1)[1] for p in (ROOT / "pages").glob("[0-9]_*.py"))


def test_landing_page_opens(page, app_url):
    page.goto(app_url)
    wait_until_idle(page)
    assert page.get_by_text("Device found").count() == 1
    assert_no_exception(page)


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_every_page_opens_without_an_exception(page, app_url, path):
    page.goto(f"{app_url}/{path}")
    wait_until_idle(page)
    assert page.locator("h1").count() >= 1
    sidebar = page.locator('[data-testid="stSidebar"]')
    for title in ("Home", "Build", "Train", "Plain vs Residual", "Grad-CAM", "Presenter mode"):
        expect(sidebar.get_by_text(title, exact=False).first).to_be_attached(timeout=30_000)
    assert_no_exception(page)


def _parameters(page) -> str:
    metric = page.locator('[data-testid="stMetric"]').filter(has_text=re.compile(r"^Parameters")).first
    # as read: the page joins number and unit with a no-break space (they never split over two lines)
    return metric.locator('[data-testid="stMetricValue"]').inner_text().replace("\u00a0", " ")


def test_build_page_switches_preset_and_the_parameter_count_changes(page, app_url):
    page.goto(f"{app_url}/Build")
    wait_until_idle(page)
    assert _parameters(page) == "269.72 k"
    pick_preset(page, "resnet18", "11.69 M")
    assert _parameters(page) == "11.69 M"
    assert page.locator(".js-plotly-plot").count() >= 1
    assert_no_exception(page)


# Luminance (0 dark .. 1 light) of the first chart's tick labels and of the page behind them.
CHART_CONTRAST = """() => {
  const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).map(Number); return (0.299*r + 0.587*g + 0.114*b) / 255; };
  const tick = document.querySelector('.js-plotly-plot .xtick text');
  const app = document.querySelector('[data-testid="stApp"]');
  return [lum(getComputedStyle(tick).fill), lum(getComputedStyle(app).backgroundColor)];
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_charts_follow_the_light_and_dark_theme(browser, app_url, scheme):
    """Streamlit follows the system theme; chart text must stay readable against the page in both."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme=scheme)
    try:
        page = context.new_page()
        page.goto(f"{app_url}/Plain_vs_Residual")  # opens with its gradient profile drawn
        wait_until_idle(page)
        page.locator(".st-key-pvr_profile_convs .js-plotly-plot .xtick text").first.wait_for(timeout=60_000)
        text, background = page.evaluate(CHART_CONTRAST)
        assert (background < 0.3) == (scheme == "dark"), (text, background)
        assert abs(text - background) > 0.4, f"chart text {text:.2f} on background {background:.2f}"
    finally:
        context.close()


ROOT_FONT_PX = "() => parseFloat(getComputedStyle(document.documentElement).fontSize)"


def test_presenter_mode_enlarges_text_and_stays_on_across_pages(page, app_url):
    page.goto(f"{app_url}/Build")
    wait_until_idle(page)
    normal = page.evaluate(ROOT_FONT_PX)
    page.locator('[data-testid="stSidebar"]').get_by_text("Presenter mode (larger text)").click()
    page.wait_for_function(f"({ROOT_FONT_PX})() > {normal * 1.2}", timeout=30_000)
    page.locator('[data-testid="stSidebar"]').get_by_role("link", name=re.compile("Train")).first.click()
    expect(page.locator("h1").filter(has_text="Train").first).to_be_visible(timeout=60_000)
    wait_until_idle(page)
    assert page.evaluate(ROOT_FONT_PX) > normal * 1.2, "presenter mode switched off on the next page"
    assert_no_exception(page)


def test_the_built_model_follows_the_presenter_to_the_other_pages(page, app_url):
    page.goto(f"{app_url}/Build")
    wait_until_idle(page)
    pick_preset(page, "resnet32", "464.15 k")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_role("link", name=re.compile("Train")).first.click()
    expect(page.get_by_text("resnet32 from the Build page", exact=False).first).to_be_visible(timeout=60_000)
    page.wait_for_url(re.compile(r"preset=resnet32"), timeout=30_000)
    sidebar.get_by_role("link", name=re.compile("Plain vs Residual")).first.click()
    expect(page.get_by_text("ResNet-32: first / last conv gradient").first).to_be_visible(timeout=120_000)
    assert_no_exception(page)
