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


def screenshot(page, name: str, start_at: str | None = None, height: int = 2400) -> None:
    """Save SCREENSHOT_DIR/name.png (the README's pictures) when SCREENSHOT_DIR is set.

    Streamlit scrolls inside its main container, not the document, so the viewport is made as
    tall as the content (up to `height`) for the picture; with `start_at` (a selector) the page
    is scrolled so that element is at the top, and `height` pixels from there are taken.
    """
    if not SCREENSHOT_DIR:
        return
    Path(SCREENSHOT_DIR).mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    if start_at is None:
        content = page.evaluate("() => Math.max(...[...document.querySelectorAll("
                                "'[data-testid=\"stMain\"], [data-testid=\"stAppViewContainer\"]')]"
                                ".map(e => e.scrollHeight), document.body.scrollHeight)")
        height = min(int(content), height)
    page.set_viewport_size({"width": size["width"], "height": height})
    time.sleep(1.5)  # plotly charts resize to the new viewport
    if start_at is not None:
        page.locator(start_at).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        time.sleep(0.5)
    page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"))
    page.set_viewport_size(size)
