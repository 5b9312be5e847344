"""End-to-end fixtures: a live `streamlit run app.py` and Debian's headless Chromium via Playwright.

Playwright never downloads a browser here: it drives /usr/bin/chromium (apt-get install chromium).
Without that binary the browser tests are skipped locally and fail on CI, so CI cannot pass silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, served_app


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    with served_app(runs_dir, tmp_path_factory.mktemp("logs") / "streamlit.log") as (url, _):
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()
