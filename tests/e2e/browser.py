"""Helpers for the browser tests: wait for Streamlit, look for exception boxes, save screenshots."""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = os.environ.get("SCREENSHOT_DIR")  # set to save a PNG of each page (used for the README)


# Streamlit marks its app element with the script runner's state; "notRunning" is idle. (The
# "Running…" status widget is no signal: the minimal toolbar, .streamlit/config.toml, hides it.)
SCRIPT_STATE = ("() => { const app = document.querySelector('[data-testid=\"stApp\"]');"
                " return app ? app.getAttribute('data-test-script-state') : null; }")


def wait_until_idle(page, timeout: float = 90) -> None:
    """Wait until Streamlit has finished running the page, and stays finished for a second.

    The second covers what follows a run straight away: an st.rerun, a fragment noticing that its
    background job ended. Do not call it while a live fragment (run_every) is redrawing a job.
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)
    page.locator("h1").first.wait_for(timeout=timeout * 1000)  # every page starts with a title
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        if page.evaluate(SCRIPT_STATE) == "notRunning":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= 1.0:
                return
        else:
            idle_since = None
        time.sleep(0.1)
    raise AssertionError(f"the page was still running after {timeout} s (state {page.evaluate(SCRIPT_STATE)!r})")


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
        # the tallest scrolling box: Streamlit's main container (which one depends on its version)
        content = page.evaluate("() => Math.max(...[...document.querySelectorAll('body, body *')]"
                                ".map(e => e.scrollHeight))")
        height = min(int(content), height)
    page.set_viewport_size({"width": size["width"], "height": height})
    time.sleep(1.5)  # plotly charts resize to the new viewport
    if start_at is not None:
        page.locator(start_at).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        time.sleep(0.5)
    page.screenshot(path=str(Path(SCREENSHOT_DIR) / f"{name}.png"))
    page.set_viewport_size(size)


def pick_preset(page, name: str, parameters: str, timeout_s: float = 60) -> None:
    """Choose the Build page's preset `name` in its sidebar select and wait for its parameter count.

    Under load (CI, 2 cores) a pick made as the page's own run redraws the sidebar was seen to be dropped by the
    browser: the select kept its old value and no run followed. Then, and only then, the pick is made once more;
    a select that shows the new value while the page never updates fails as it should."""
    select = page.locator('[data-testid="stSelectbox"]').filter(has_text="Start from a preset")
    for attempt in range(2):
        select.click()
        page.get_by_role("option", name=name, exact=True).click()
        try:
            page.get_by_text(parameters, exact=True).first.wait_for(timeout=timeout_s * 1000 / 2)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError; decided by what the select shows
            if attempt or name in select.inner_text():
                raise
    wait_until_idle(page)
