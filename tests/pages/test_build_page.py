"""The Build page and the landing page, driven through Streamlit's AppTest."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from resnet_core import get_preset

ROOT = Path(__file__).resolve().parents[2]
BUILD = str(ROOT / "pages" / "1_Build.py")


def _metric(at: AppTest, label: str) -> str:
    """The metric's value as a person reads it (the page joins number and unit with a no-break space)."""
    return next(m.value for m in at.metric if m.label == label).replace("\u00a0", " ")


def test_landing_page_names_the_device_and_links_every_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert "Device found" in at.info[0].value


def test_build_page_renders_the_default_model():
    at = AppTest.from_file(BUILD, default_timeout=60).run()
    assert not at.exception and not at.error
    assert _metric(at, "Parameters") == "269.72 k"  # resnet20
    assert _metric(at, "Plain twin: parameters") == "269.72 k"
    assert at.session_state["model_config"].stage_blocks == (3, 3, 3)


def test_switching_preset_changes_the_parameter_count():
    at = AppTest.from_file(BUILD, default_timeout=60).run()
    at.selectbox(key="build_preset").set_value("resnet56").run()
    assert not at.exception
    assert _metric(at, "Parameters") == "853.02 k"
    at.selectbox(key="build_preset").set_value("resnet18").run()
    assert _metric(at, "Parameters") == "11.69 M"
    # the plain twin of resnet18 loses exactly the three 1x1 projections
    assert _metric(at, "Plain twin: parameters") == "11.52 M"


def test_bad_edit_shows_the_config_error_and_keeps_the_last_model():
    at = AppTest.from_file(BUILD, default_timeout=60).run()
    at.text_input(key="cfg_stage_widths").set_value("16, 32").run()
    assert not at.exception
    assert len(at.error) == 1
    message = at.error[0].value
    assert "stage_widths" in message and "2 entries" in message and "3" in message
    assert at.session_state["model_config"].stage_widths == (16, 32, 64)
    at.text_input(key="cfg_stage_blocks").set_value("3, x, 3").run()
    assert "not a list of whole numbers" in at.error[0].value
    at.text_input(key="cfg_stage_blocks").set_value("3, 3, 3")
    at.text_input(key="cfg_stage_widths").set_value("16, 32, 64")
    at.toggle(key="cfg_residual").set_value(False)
    at.toggle(key="cfg_zero_init_residual").set_value(True).run()
    assert any("zero_init_residual" in e.value for e in at.error)


def test_editing_a_field_rebuilds_the_session_model():
    at = AppTest.from_file(BUILD, default_timeout=60).run()
    at.text_input(key="cfg_stage_blocks").set_value("1, 1, 1").run()
    assert not at.exception and not at.error
    assert _metric(at, "Parameters") == "75.29 k"  # 464 stem + 4,672 + 13,952 + 55,552 blocks + 650 fc
    model = at.session_state["model"]
    assert len(list(model.named_blocks())) == 3
    snippet = at.code[0].value
    assert "stage_blocks=(1, 1, 1)" in snippet


def test_a_shared_link_reproduces_the_model():
    at = AppTest.from_file(BUILD, default_timeout=60)
    at.query_params.update({"preset": "resnet56", "preact": "1", "size": "64"})
    at.run()
    assert not at.exception and not at.warning
    assert at.session_state["model_config"] == get_preset("resnet56").replace(preact=True)
    assert at.session_state["build_image_size"] == 64
    assert "MACs at 64x64" in [m.label for m in at.metric]


def test_a_hostile_link_falls_back_to_defaults_with_a_notice():
    at = AppTest.from_file(BUILD, default_timeout=60)
    at.query_params.update({"preset": "../../etc/passwd", "stage_blocks": "1-x", "size": "-3"})
    at.run()
    assert not at.exception and not at.error
    assert len(at.warning) == 3
    assert _metric(at, "Parameters") == "269.72 k"


def test_a_hostile_link_is_refused_quickly_with_its_reason():
    import time
    at = AppTest.from_file(BUILD, default_timeout=60)
    for name, value in {"preset": "resnet18", "stem_width": "8192", "in_channels": "1024",
                        "num_classes": "100000"}.items():
        at.query_params[name] = value
    start = time.perf_counter()
    at.run()
    assert not at.exception and time.perf_counter() - start < 10
    warning = at.warning[0].value
    assert "478.7M parameters" in warning and "100M allowed" in warning
    assert at.session_state["model_config"] == get_preset("resnet18")


def test_link_values_are_quoted_as_plain_text():
    at = AppTest.from_file(BUILD, default_timeout=60)
    at.query_params["preset"] = "[Log in again](https://x.y)"
    at.query_params["block"] = "![i](https://x.y/a.png)"
    at.run()
    assert not at.exception
    shown = " ".join(w.value for w in at.warning)
    wj = "\u2060"  # the word joiner escape_markdown puts after a colon, so no bare URL is autolinked
    assert rf"\[Log in again\](https\:{wj}//x.y)" in shown and rf"!\[i\](https\:{wj}//x.y/a.png)" in shown
    assert "https://" not in shown and "https:/" not in shown


def test_an_image_size_too_costly_for_the_model_is_refused_before_building():
    at = AppTest.from_file(BUILD, default_timeout=60)
    at.query_params["preset"] = "resnet152"
    at.query_params["size"] = "1024"
    at.run()
    assert not at.exception
    assert any("GMACs per image, more than the 50 GMACs allowed" in e.value for e in at.error)


def _sidebar_note(at: AppTest) -> str:
    return " ".join(c.value for c in at.sidebar.caption)


def test_a_custom_link_says_custom_in_the_sidebar_not_a_presets_paper_error():
    at = AppTest.from_file(BUILD, default_timeout=60)
    at.query_params.update({"preset": "resnet20", "stage_blocks": "1-1-1"})
    at.run()
    assert not at.exception and not at.warning
    assert at.session_state["model_config"] == get_preset("resnet20").replace(stage_blocks=(1, 1, 1))
    assert at.selectbox(key="build_preset").value is None  # shows "Custom model", not resnet20
    note = _sidebar_note(at)
    assert "Custom model" in note and "no paper result" in note
    assert "8.75" not in note and "test error" not in note  # not resnet20's paper error
    # Picking a preset again describes that preset, with its paper result.
    at.selectbox(key="build_preset").set_value("resnet56").run()
    assert "6.97%" in _sidebar_note(at) and _metric(at, "Parameters") == "853.02 k"


def test_editing_a_preset_makes_the_sidebar_say_custom():
    at = AppTest.from_file(BUILD, default_timeout=60).run()
    assert "8.75%" in _sidebar_note(at)  # resnet20, as it opens
    at.text_input(key="cfg_stage_blocks").set_value("1, 2, 3").run()
    note = _sidebar_note(at)
    assert "Custom model (edited from resnet20)" in note and "8.75" not in note
    at.text_input(key="cfg_stage_blocks").set_value("5, 5, 5").run()  # that is resnet32
    assert _sidebar_note(at).startswith("Equals the preset resnet32.") and "7.51%" in _sidebar_note(at)


def test_presenter_mode_enlarges_chart_text_and_sets_the_title_above_the_chart():
    import json

    normal = AppTest.from_file(BUILD, default_timeout=60).run()
    at = AppTest.from_file(BUILD, default_timeout=60)
    at.session_state["presenter_mode"] = True
    at.run()
    assert not at.exception
    before, after = (json.loads(a.get("plotly_chart")[0].proto.spec)["layout"] for a in (normal, at))
    assert before["title"]["text"].startswith("Stages and blocks")
    assert not after.get("title", {}).get("text")  # plotly cannot wrap it: the page shows it
    assert any(m.value.startswith("**Stages and blocks") for m in at.markdown)
    assert after["legend"]["font"]["size"] == 18 and after["legend"]["yanchor"] == "bottom"  # above the plot
    assert all(a["font"]["size"] >= 15 for a in after["annotations"])  # the architecture's labels, 10-11 px
