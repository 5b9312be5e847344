"""Shared look of every figure: colour-blind-safe colours, transparent background, kept zoom."""

from __future__ import annotations

import math

import plotly.graph_objects as go

# Colour-blind-safe (Okabe-Ito) colours that stay legible on light and dark backgrounds.
COLORS = {
    "residual": "#0072B2",
    "plain": "#D55E00",
    "identity": "#009E73",
    "zero-pad": "#E69F00",
    "projection": "#CC79A7",
    "block": "#56B4E9",
    "stem": "#999999",
    "neutral": "#7F7F7F",
}


def base_layout(fig: go.Figure, title: str, revision: str) -> go.Figure:
    fig.update_layout(
        # No template: Streamlit's own chart theme follows the app's light or dark theme.
        title=title, uirevision=revision, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        margin=dict(l=10, r=10, t=50, b=10),
    )
    _powers_of_ten(fig)
    return fig


def _powers_of_ten(fig: go.Figure) -> None:
    """Log axes labelled at powers of ten only, over whole decades around the data: plotly's own labels for
    minor ticks ("2", "5") read as values of their own on a projector."""
    for axis_name in ("xaxis", "yaxis"):
        axis = fig.layout[axis_name]
        if axis.type != "log":
            continue
        values = [v for trace in fig.data for v in (getattr(trace, axis_name[0]) or ())
                  if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
        update = dict(dtick=1, exponentformat="power", minor=dict(ticks="inside", showgrid=False))
        if values:
            low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
            update["range"] = [low, max(high, low + 1)]  # at least one decade: two labelled ticks
        axis.update(update)


def scale_fonts(fig: go.Figure, factor: float) -> go.Figure:
    """Every text of `fig` (title, axes, ticks, legend, annotations, colour bars) `factor` times its size, for
    a projector. Sizes not set take plotly's defaults (12 px text, 17 px title)."""
    size = lambda current, default: round((current or default) * factor)
    layout = fig.layout
    fig.update_layout(font_size=size(layout.font.size, 12), title_font_size=size(layout.title.font.size, 17),
                      legend_font_size=size(layout.legend.font.size, 12))
    fig.update_xaxes(tickfont_size=size(None, 12), title_font_size=size(None, 14))
    fig.update_yaxes(tickfont_size=size(None, 12), title_font_size=size(None, 14))
    for note in layout.annotations or ():
        note.font.size = size(note.font.size, 12)
    return fig
