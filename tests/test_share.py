"""Shareable links: a setup survives the trip through the URL, and hostile URLs fall back with a notice."""

import re

import pytest

from resnet_core import get_preset
from resnet_core.share import (
    config_from_params,
    config_to_params,
    encode_value,
    escape_markdown,
    names_this_machine_only,
    option_from_params,
)

DEFAULT = get_preset("resnet20")


@pytest.mark.parametrize("name", ["resnet20", "plain56", "resnet50", "preact-resnet164"])
def test_presets_travel_as_their_name(name):
    params = config_to_params(get_preset(name))
    assert params == {"preset": name}
    assert config_from_params(params, DEFAULT) == (get_preset(name), [])


def test_custom_config_round_trips():
    cfg = get_preset("resnet56").replace(stage_blocks=(5, 4, 3), preact=True, shortcut="B", width_multiplier=1.5)
    params = config_to_params(cfg)
    assert all(isinstance(v, str) for v in params.values())
    assert config_from_params(params, DEFAULT) == (cfg, [])


@pytest.mark.parametrize(
    "params, words",
    [
        ({"preset": "<script>alert(1)</script>"}, "unknown"),
        ({"stage_blocks": "a-b-c"}, "stage_blocks"),
        ({"stage_blocks": "3-3"}, "do not fit together"),
        ({"residual": "maybe"}, "residual"),
        ({"width_multiplier": "nan"}, "do not fit together"),
        ({"num_classes": "1e999"}, "num_classes"),
        ({"stage_widths": "1-" * 500}, "too long"),
        ({"stage_blocks": "99999999-1-1"}, "do not fit together"),
    ],
)
def test_hostile_links_fall_back_with_a_notice(params, words):
    cfg, notices = config_from_params(params, DEFAULT)
    assert cfg == DEFAULT
    assert any(words in n for n in notices), notices


def test_good_fields_survive_beside_a_bad_one():
    cfg, notices = config_from_params({"preset": "resnet56", "preact": "1", "residual": "perhaps"}, DEFAULT)
    assert cfg == get_preset("resnet56").replace(preact=True)
    assert len(notices) == 1 and "residual" in notices[0]


def test_page_options_are_range_checked():
    assert option_from_params({"seed": "7"}, "seed", 0, bounds=(0, 2**31)) == (7, None)
    value, notice = option_from_params({"seed": "-5"}, "seed", 0, bounds=(0, 2**31))
    assert value == 0 and "between" in notice
    value, notice = option_from_params({"method": "evil"}, "method", "gradcam", ("gradcam", "saliency"))
    assert value == "gradcam" and "is not one of" in notice
    assert option_from_params({}, "seed", 3) == (3, None)


def test_list_options_round_trip_and_refuse_strangers():
    depths = [20, 56, 110]
    assert option_from_params({"depths": encode_value(depths)}, "depths", [20, 56], range(8, 2000)) == (depths, None)
    methods = ["gradcam", "saliency"]
    allowed = ("gradcam", "saliency")
    assert option_from_params({"m": encode_value(methods)}, "m", ["gradcam"], allowed) == (methods, None)
    value, notice = option_from_params({"m": "gradcam,rm -rf"}, "m", ["gradcam"], ("gradcam", "saliency"))
    assert value == ["gradcam"] and "'rm -rf' is not one of" in notice
    value, notice = option_from_params({"depths": "20,x"}, "depths", [20], range(8, 2000))
    assert value == [20] and "not valid" in notice
    value, notice = option_from_params({"lr": "nan"}, "lr", 0.1, bounds=(1e-6, 10.0))
    assert value == 0.1 and "finite" in notice


def test_repeated_choices_collapse_and_notices_do_not_render_markup():
    assert option_from_params({"m": "gradcam,gradcam"}, "m", ["gradcam"], ("gradcam",)) == (["gradcam"], None)
    _, notices = config_from_params({"preset": "[Log in](https://ev.il)"}, DEFAULT)
    # Shown literally: every character that would start a link is escaped, and no bare URL is left.
    assert notices and "\\[Log in\\](https\\:\u2060//ev.il)" in notices[0] and "https:" not in notices[0]


def _as_rendered(escaped: str) -> str:
    """The text node Markdown makes of `escaped`: CommonMark drops the backslash before ASCII punctuation.
    Streamlit's autolink, icon and emoji plugins then search this text, not the source."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", escaped)


# The patterns Streamlit 1.67's Markdown applies to text nodes: mdast-util-gfm-autolink-literal's URL and
# e-mail finders, its ":material/...:" icons and remark-emoji's shortcodes.
_AUTOLINKS = [re.compile(r"(https?://|www(?=\.))([-.\w]+)", re.I), re.compile(r"[-.\w+]+@[-\w]+(\.[-\w]+)+"),
              re.compile(r":material/\w+:"), re.compile(r":[\w+-]+:")]


@pytest.mark.parametrize("text", [
    "Session expired, sign in at https://evil.example/login", "visit www.evil.example", "WWW.EVIL.EXAMPLE",
    "HTTP://EVIL.EXAMPLE/x?y=1", "write to bob@evil.example", "mailto:bob@evil.example", "user:pass@evil.example",
    "<https://evil.example>", "(https://evil.example)", ":material/home: :smile: :+1:", "https\u2060://evil.example",
])
def test_bare_urls_addresses_and_icons_stay_inert(text):
    """Checked in Chromium against a live Streamlit 1.67 (st.warning, st.info, st.markdown): with these escapes
    no <a> and no icon was drawn for any of these; this test keeps the text free of the patterns that make them."""
    shown = _as_rendered(escape_markdown(text))
    assert not any(p.search(shown) for p in _AUTOLINKS), shown
    assert shown.replace("\u2060", "") == text.replace("\u2060", "")  # reads the same: the joiner is invisible


def test_a_link_cannot_ask_for_a_model_too_big_to_build():
    cfg, notices = config_from_params({"stage_blocks": "1000-1000-1000", "stage_widths": "8192-8192-8192"}, DEFAULT)
    assert cfg == DEFAULT and "parameters" in notices[0]


def test_a_pair_of_choices_is_not_a_range():
    value, notice = option_from_params({"px": "20"}, "px", 32, (16, 32))
    assert value == 32 and "is not one of [16, 32]" in notice
    assert option_from_params({"px": "20"}, "px", 32, bounds=(16, 32)) == (20, None)


def test_the_model_parameters_and_the_page_options_of_a_link_stay_apart():
    """ui.share tells a link's model parameters from a page's options by name (a sidebar link carries the
    current model, then the page's own options): every name config_to_params writes is a model parameter,
    and no page option uses one of those names."""
    import re
    from pathlib import Path

    from ui.share import CONFIG_PARAMS

    cfg = get_preset("resnet20").replace(block="bottleneck", stage_blocks=(1, 1, 1), stage_widths=(8, 16, 32),
                                         stem="deep", stem_width=8, shortcut="B", stride_placement="v1",
                                         avg_down=True, preact=True, zero_init_residual=True, width_multiplier=0.5,
                                         num_classes=5, in_channels=1)
    assert set(config_to_params(cfg)) <= CONFIG_PARAMS
    root = Path(__file__).resolve().parents[1]
    sources = " ".join(p.read_text() for p in [*root.glob("pages/*.py"), *root.glob("ui/*.py")])
    option_params = set(re.findall(r'Linked\("[a-z_]+", "([a-z_]+)"', sources))
    assert option_params and not option_params & CONFIG_PARAMS


@pytest.mark.parametrize("link, local", [
    ("http://localhost:8501/Build?preset=resnet20", True), ("http://127.0.0.1:8501/", True),
    ("http://[::1]:8501/", True), ("http://192.168.1.20:8501/Build?preset=resnet20", False),
    ("https://explorer.example.org/Train", False), ("", False),
])
def test_a_link_naming_localhost_is_recognised_for_the_class_hint(link, local):
    assert names_this_machine_only(link) is local


def test_a_link_too_deep_to_build_quickly_falls_back_at_once():
    """stage_blocks=1000-1000-1000-1000 was accepted and took 20-38 s on every page: now refused by its layer
    count from the settings alone, before anything is built."""
    import time

    start = time.perf_counter()
    cfg, notices = config_from_params({"preset": "resnet18", "stage_blocks": "1000-1000-1000-1000",
                                       "stage_widths": "8-8-8-8"}, DEFAULT)
    assert time.perf_counter() - start < 0.5
    assert cfg == get_preset("resnet18") and "8,002 layers, more than the 1,202 allowed" in notices[0]
    assert config_from_params({"preset": "resnet1202"}, DEFAULT) == (get_preset("resnet1202"), [])
