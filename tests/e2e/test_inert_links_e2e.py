"""No outside text becomes a link (issue 19): a link value holding a bare URL, a www. name or an e-mail address is
quoted in the page's own warning as inert text, in real Chromium, where Streamlit's Markdown autolinks them."""

from urllib.parse import quote

import pytest

from tests.e2e.browser import assert_no_exception, wait_until_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The value, with a www. name and an e-mail address: one notice quotes it whole.
HOSTILE = "Session expired, sign in at https://evil.example/login or www.evil.example or write to bob@evil.example"


def test_a_bare_url_in_a_link_value_is_shown_but_never_clickable(page, app_url):
    page.goto(f"{app_url}/Build?preset=resnet20&block={quote(HOSTILE)}")
    wait_until_idle(page)
    alerts = page.locator('[data-testid="stAlert"]')
    shown = " ".join(alerts.all_inner_texts()).replace("\u2060", "")
    assert "https://evil.example/login" in shown and "www.evil.example" in shown and "bob@evil.example" in shown
    hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.href)")
    assert not [h for h in hrefs if "evil" in h], hrefs
    assert_no_exception(page)
