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
        update = dict(dtick=1, exponentformat="power")
        if values:
            low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
            update["range"] = [low, max(high, low + 1)]  # at least one decade: two labelled ticks
        axis.update(update)


def scale_fonts(fig: go.Figure, factor: float) -> go.Figure:
    """Every text of `fig` `factor` times its size, for a projector: title, axis ticks and titles, legend (and
    its title), annotations, trace text (bar labels), colour bars and hover labels. Sizes a figure does not set
    take plotly's defaults (12 px text, 17 px title, 14 px axis titles, 13 px hover labels)."""
    size = lambda current, default: round((current or default) * factor)
    layout = fig.layout
    fig.update_layout(font_size=size(layout.font.size, 12), title_font_size=size(layout.title.font.size, 17),
                      legend_font_size=size(layout.legend.font.size, 12),
                      legend_title_font_size=size(layout.legend.title.font.size, 12),
                      hoverlabel_font_size=size(layout.hoverlabel.font.size, 13))
    fig.for_each_xaxis(lambda axis: _scale_axis(axis, size))
    fig.for_each_yaxis(lambda axis: _scale_axis(axis, size))
    for note in layout.annotations or ():
        note.font.size = size(note.font.size, 12)
    for trace in fig.data:
        if "textfont" in trace:
            trace.textfont.size = size(trace.textfont.size, 12)
        if "colorbar" in trace:
            _scale_colorbar(trace.colorbar, size)
    for name in layout.to_plotly_json():  # the colour axes the figure sets (coloraxis, coloraxis2, ...)
        if name.startswith("coloraxis"):
            _scale_colorbar(layout[name].colorbar, size)
    return fig


def _scale_axis(axis, size) -> None:
    axis.update(tickfont_size=size(axis.tickfont.size, 12), title_font_size=size(axis.title.font.size, 14))


def _scale_colorbar(colorbar, size) -> None:
    colorbar.update(tickfont_size=size(colorbar.tickfont.size, 12),
                    title_font_size=size(colorbar.title.font.size, 12))


def for_projector(fig: go.Figure, factor: float) -> str:
    """`fig` with its text `factor` times larger and laid out so that none of it is clipped; returns the title,
    which it takes out of the figure for the page to show as text.

    Plotly neither wraps a title nor moves a legend out of the way of the axis titles: a 1.5x title is cut
    at the chart's edge in a half-width column, and a legend set below the plot (at a fraction of the plot's
    height) lands on the enlarged x-axis title once it takes two rows. So the title goes (the page wraps it),
    and a horizontal legend moves above the plot, where it has the top margin to itself: plotly widens that
    margin for as many rows as the legend takes, at any width. Where text already sits above the plot
    (subplot titles), the legend stays and the top margin keeps room for that text at its new size.
    """
    title = fig.layout.title.text or ""
    scale_fonts(fig, factor)
    fig.update_layout(title_text=None)
    above = [note for note in fig.layout.annotations or () if _above_the_plot(note)]
    if above:
        lines = lambda note: str(note.text or "").lower().count("<br>") + 1
        fig.update_layout(margin_t=max(round(1.3 * (note.font.size or 12) * lines(note)) + 12 for note in above))
        return title
    fig.update_layout(margin_t=10)
    if fig.layout.legend.orientation == "h":
        fig.update_layout(legend_x=0, legend_xanchor="left", legend_y=1, legend_yanchor="bottom", legend_yref="paper")
    return title


def _above_the_plot(note) -> bool:
    """An annotation placed on top of the plot area, in the top margin (make_subplots' subplot titles)."""
    on_plot_height = note.yref == "paper" or str(note.yref or "").endswith("domain")
    return on_plot_height and (note.y or 0) >= 1 and note.yanchor == "bottom"
