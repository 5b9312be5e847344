"""Loss-landscape figures: 1-D slices of plain vs residual, and their 2-D surfaces side by side on one colour scale."""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.landscape import Landscape
from .style import COLORS, base_layout

LOSS_CAP = 10.0  # Li et al. clip their plots at a loss of 10: beyond it a diverged net only flattens the rest
DASHES = ("solid", "dash", "dot", "dashdot")


def _color(label: str) -> str:
    return COLORS["plain"] if label.startswith("plain") else COLORS["residual"]


def _capped(v: float, cap: float) -> float | None:
    """NaN (not computed yet) is a gap; a diverged point (inf) or anything above the cap sits at the cap."""
    return None if math.isnan(v) else min(v, cap)


def loss_range(results: Sequence[Landscape], cap: float = LOSS_CAP) -> tuple[float, float]:
    """The one (low, high) loss range every panel shares: the lowest computed loss to the highest, capped."""
    values = [v for r in results for row in (*r.lines, *r.surface) for v in row if not math.isnan(v)]
    if not values:
        return 0.1, cap
    low = max(min(values), 1e-3)
    return low, max(min(max(values), cap), low * 1.01)


def landscape_lines_figure(results: Sequence[Landscape], revision: str = "landscape-1d") -> go.Figure:
    """Loss along each 1-D slice, plain and residual in their colours, one dash per direction, log loss axis,
    with each net's doubling level (twice its lowest loss) as a dotted line."""
    fig = go.Figure()
    low, high = loss_range(results)
    for r in results:
        color = _color(r.label)
        for k, line in enumerate(r.lines):
            fig.add_trace(go.Scatter(
                x=list(r.alphas_1d), y=[_capped(v, high) for v in line], mode="lines+markers",
                name=f"{r.label}, direction {k + 1}", legendgroup=r.label, line=dict(color=color, width=2 if k == 0
                                                                                       else 1.2,
                                                                                       dash=DASHES[k % len(DASHES)]),
                marker=dict(size=3)))
        finite = [v for line in r.lines for v in line if math.isfinite(v)]
        if finite:
            fig.add_hline(y=2 * min(finite), line=dict(color=color, width=1, dash="dot"))
    fig.update_xaxes(title_text="α (filter-normalized direction units; 0 = the trained weights)")
    fig.update_yaxes(title_text="held-out loss (log; twice the minimum dotted)", type="log")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    base_layout(fig, "Loss along random directions: 1-D slices", revision)
    fig.update_yaxes(range=[math.log10(low) - 0.05, math.log10(high) + 0.05])
    return fig


def _log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    values = [m * 10**e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
              for m in (1, 2, 5) if low <= m * 10**e <= high]
    return [math.log10(v) for v in values], [f"{v:g}" for v in values]


def landscape_contour_figure(results: Sequence[Landscape], revision: str = "landscape-2d") -> go.Figure:
    """Each net's 2-D surface as filled contours, side by side, on one log colour scale and the same contour
    levels (so the same colour is the same loss in every panel); the trained weights marked at the centre."""
    low, high = loss_range(results)
    fig = make_subplots(rows=1, cols=max(len(results), 1), subplot_titles=[r.label for r in results],
                        horizontal_spacing=0.08)
    lo, hi = math.log10(low), math.log10(high)
    step = (hi - lo) / 16
    for i, r in enumerate(results, start=1):
        z = [[None if (c := _capped(v, high)) is None else math.log10(max(c, low)) for v in row] for row in r.surface]
        fig.add_trace(go.Contour(
            x=list(r.alphas_2d), y=list(r.alphas_2d), z=z, coloraxis="coloraxis", name=r.label,
            contours=dict(start=lo, end=hi, size=step), line=dict(width=0.5),
            customdata=[[_capped(v, math.inf) for v in row] for row in r.surface],
            hovertemplate="α %{x:.2f}, β %{y:.2f}: loss %{customdata:.3g}<extra>" + r.label + "</extra>"), 1, i)
        fig.add_trace(go.Scatter(x=[0], y=[0], mode="markers", marker=dict(symbol="x", size=9, color="white",
                                                                            line=dict(width=1, color="black")),
                                 name="trained weights", showlegend=False, hoverinfo="skip"), 1, i)
        fig.update_xaxes(title_text="α", row=1, col=i)
        fig.update_yaxes(title_text="β" if i == 1 else None, scaleanchor=f"x{'' if i == 1 else i}", row=1, col=i)
    ticks, text = _log_ticks(low, high)
    fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=lo, cmax=hi,
                                     colorbar=dict(title="loss", tickvals=ticks, ticktext=text)))
    # The marker is named in the title, not a legend: a legend under square panels landed on their "α".
    base_layout(fig, f"Loss surfaces on one colour scale (capped at {high:.3g}); × marks the trained weights",
                revision)
    fig.update_layout(margin=dict(t=80))  # room for the title above the panels' own titles
    return fig


def landscape_surface_figure(results: Sequence[Landscape], revision: str = "landscape-3d") -> go.Figure:
    """The same surfaces in 3-D, side by side, on one colour scale and one z range (loss capped alike)."""
    low, high = loss_range(results)
    n = max(len(results), 1)
    fig = make_subplots(rows=1, cols=n, specs=[[{"type": "surface"}] * n], subplot_titles=[r.label for r in results],
                        horizontal_spacing=0.02)
    for i, r in enumerate(results, start=1):
        fig.add_trace(go.Surface(x=list(r.alphas_2d), y=list(r.alphas_2d),
                                 z=[[_capped(v, high) for v in row] for row in r.surface], coloraxis="coloraxis",
                                 name=r.label, hovertemplate="α %{x:.2f}, β %{y:.2f}: loss %{z:.3g}<extra></extra>"),
                      1, i)
    scene = dict(xaxis_title="α", yaxis_title="β", zaxis=dict(title="loss", range=[0, high]),
                 camera=dict(eye=dict(x=1.1, y=-1.6, z=1.5)))  # from above: a near wall hides less of the bowl
    fig.update_layout(coloraxis=dict(colorscale="Viridis", cmin=low, cmax=high, colorbar=dict(title="loss")),
                      **{f"scene{'' if i == 1 else i}": scene for i in range(1, n + 1)})
    base_layout(fig, f"The same surfaces in 3-D (loss capped at {high:.3g})", revision)
    fig.update_layout(margin=dict(t=80))
    return fig
