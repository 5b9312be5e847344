"""A class on one server, in real Chromium: two visitors (two browser contexts, each with its own cookie) and the
lecturer on one served app. A starts a training; B can neither stop nor cancel it through any button, the run
history or a `?run=` link; A stops it at step 2; B's Grad-CAM stays on the bundled model; the lecturer can stop
any run."""

from __future__ import annotations

import urllib.parse

import pytest

from resnet_core.serving import VISITOR_COOKIE
from tests.e2e.browser import assert_no_exception, wait_until_idle
from tests.e2e.server import served_app

pytestmark = pytest.mark.e2e

TOKEN = "lecture-token-for-the-test"
# Small and quick, image size 8 (the run that broke other visitors' Grad-CAM pages), many epochs so it is still
# going when the others look at it and A comes back to stop it (the test stops both runs; at 50 epochs, about 80 s
# on a busy machine, A's first run had ended before A came back).
SMALL_RUN = "/Train?n=512&n_val=128&px=8&epochs=500"
STEP = ("() => { const g = document.querySelector('.st-key-train_loss_chart .js-plotly-plot');"
        " return g && g.data && g.data.length ? g.data[0].y.length : 0; }")


@pytest.fixture(scope="module")
def class_url(tmp_path_factory):
    runs = tmp_path_factory.mktemp("class-runs")
    env = {"RESNET_EXPLORER_LECTURER_TOKEN": TOKEN}
    with served_app(runs, tmp_path_factory.mktemp("class-logs") / "streamlit.log", env=env) as (url, _):
        yield url


def _visitor(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(90_000)
    return context, page


def _open(page, url: str) -> None:
    page.goto(url)
    wait_until_idle(page)
    assert_no_exception(page)


def _run_name(page) -> str:
    query = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    return query["run"][0]


def test_two_visitors_and_the_lecturer(browser, class_url):
    a_ctx, a = _visitor(browser)
    b_ctx, b = _visitor(browser)
    l_ctx, lecturer = _visitor(browser)
    try:
        _open(a, class_url + SMALL_RUN)
        _open(b, class_url)
        a.get_by_role("button", name="Start").click()
        a.wait_for_function(f"({STEP})() >= 1", timeout=90_000)
        name = _run_name(a)

        # Each browser has its own unguessable id in a cookie, and no link carries it.
        ids = {c["value"] for ctx in (a_ctx, b_ctx) for c in ctx.cookies() if c["name"] == VISITOR_COOKIE}
        assert len(ids) == 2 and all(len(i) >= 32 and i not in a.url for i in ids)

        # B follows A's run through a link: read-only, Stop disabled.
        _open(b, f"{class_url}/Train?run={name}")
        b.get_by_text("read-only").first.wait_for()
        assert b.get_by_role("button", name="Stop", exact=True).is_disabled()
        # B's run history offers neither Stop nor Remove nor A's checkpoint.
        assert b.get_by_role("button", name="Stop this run").count() == 0
        assert b.get_by_role("button", name="Remove this run").count() == 0
        # A reloads (same cookie, same owner): A's Stop is enabled, and A stops the run.
        _open(a, f"{class_url}/Train?run={name}")
        stop = a.get_by_role("button", name="Stop", exact=True)
        assert stop.is_enabled()
        stop.click()
        a.get_by_text("stopped at step").first.wait_for(timeout=30_000)
        wait_until_idle(a)
        assert a.get_by_role("button", name="Remove this run").count() == 1  # A's own, ended: A may remove it
        # B's history: A's stopped run is listed (the class's board) but not B's to remove or download.
        _open(b, f"{class_url}/Train")
        assert b.get_by_text("checkpoint: its owner's to download").count() == 1
        assert b.get_by_role("button", name="Remove this run").count() == 0

        # B's Grad-CAM page: still the bundled model, no error from A's 8-px stopped run.
        _open(b, f"{class_url}/Grad-CAM")
        b.get_by_text("Recorded").first.wait_for()
        assert b.locator('[data-testid="stAlertContentError"]').count() == 0

        # The lecturer signs in once in the sidebar and may stop any run: A starts another, the lecturer stops it.
        _open(a, class_url + SMALL_RUN + "&seed=1")
        a.get_by_role("button", name="Start").click()
        a.wait_for_function(f"({STEP})() >= 1", timeout=90_000)
        second = _run_name(a)
        _open(lecturer, class_url)
        lecturer.get_by_text("Lecturer", exact=True).click()
        lecturer.get_by_label("Lecturer token").fill(TOKEN)
        lecturer.get_by_role("button", name="Sign in").click()
        wait_until_idle(lecturer)
        _open(lecturer, f"{class_url}/Train?run={second}")
        assert lecturer.get_by_text("read-only").count() == 0
        lecturer.get_by_role("button", name="Stop", exact=True).click()
        a.get_by_text("stopped at step").first.wait_for(timeout=30_000)
        assert_no_exception(a)
    finally:
        for ctx in (a_ctx, b_ctx, l_ctx):
            ctx.close()
