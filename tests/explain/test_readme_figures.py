"""One number, one value: the README's Grad-CAM figures are the ones the page's code computes from the bundled model."""

from __future__ import annotations

from pathlib import Path

from resnet_core.figures import bundled_localization, localization_phrase, percent
from ui.gradcam.checks import localization_records

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_quotes_the_pointing_game_the_page_shows():
    rows = bundled_localization()
    phrase = localization_phrase(rows)
    assert phrase in README.read_text(encoding="utf-8"), f"README should say: {phrase}"
    # The page's localization table (same rows, same rounding) shows the numbers the phrase quotes.
    table = {r["method"]: r["pointing game %"] for r in localization_records(rows)}
    assert f"pointing game {table['Grad-CAM']:.1f}%" in phrase
    assert f"Guided Grad-CAM {table['Guided Grad-CAM']:.1f}%" in phrase
    assert percent(rows[0]["pointing_game"]) == f"{table['Grad-CAM']:.1f}%"
