"""Helpers for the browser tests: wait for Streamlit, look for exception boxes, save screenshots."""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = os.environ.get("SCREENSHOT_DIR")  # set to save a PNG of each page (used for the README)


def wait_until_idle(page, timeout: float = 90) -> None:
    """Wait for Streamlit to finish the current script run (the 'Running…' indicator goes away)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    # Every page starts with a title: once it is there the script is running or done.
    page.locator("h1").first.wait_for(timeout=timeout * 1000)
    # Idle means no 'Running…' indicator for a whole second: on a slow machine the indicator can
    # appear late, or a rerun (st.rerun, a fragment ending its job) can follow straight after.
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        if page.locator('[data-testid="stStatusWidget"]').count() == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 1.0:
                return
        else:
            idle_since = None
        time.sleep(0.2)
    raise AssertionError("the page was still running after the timeout")


def assert_no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, f"exception box on the page: {boxes.first.inner_text()[:500]}"


def screenshot(page, name: str) -> None:
    if SCREENSHOT_DIR:
        Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"), full_page=True)
