"""Every page opens in real Chromium without an exception; the Build page reacts to a preset switch."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import ROOT, assert_no_exception, screenshot, wait_until_idle

pytestmark = pytest.mark.e2e

PAGE_PATHS = sorted(p.stem.split("_", 1)[1] for p in (ROOT / "pages").glob("[0-9]_*.py"))


def test_landing_page_opens(page, app_url):
    page.goto(app_url)
    wait_until_idle(page)
    assert page.get_by_text("Device found").count() == 1
    assert_no_exception(page)
    screenshot(page, "home")


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
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def test_build_page_switches_preset_and_the_parameter_count_changes(page, app_url):
    page.goto(f"{app_url}/Build")
    wait_until_idle(page)
    assert _parameters(page) == "269.72 k"
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Start from a preset").click()
    page.get_by_role("option", name="resnet18", exact=True).click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
        ".some(e => e.innerText.trim() === '11.69 M')", timeout=60_000)
    wait_until_idle(page)
    assert _parameters(page) == "11.69 M"
    assert page.locator(".js-plotly-plot").count() >= 1
    assert_no_exception(page)
    screenshot(page, "build")
