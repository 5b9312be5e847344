"""Trust figures: deletion and insertion curves, Grad-CAM layer by layer, and the trust table as a map of
faithfulness against sensitivity to the weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..explain.references import reference_names
from .explain import map_color
from .style import COLORS, base_layout

_REFERENCE_DASH = "dot"  # reference maps are drawn dotted, so they read as yardsticks, not methods


def deletion_insertion_figure(records: Sequence[dict[str, Any]], baseline: str = "",
                              references: Sequence[str] | None = None,
                              revision: str = "deletion-insertion") -> go.Figure:
    """Deletion (left) and insertion (right) curves, one line per map, its area in the legend.

    `records`: dicts as `Faithfulness.record()` gives them (name, label, fractions, deletion, insertion,
    deletion_auc, insertion_auc). `baseline`: words for what removed pixels become, shown under the title.
    """
    # Short subplot titles, the order of the pixels in each x-axis title: side by side in a half-width column at
    # projector size, long titles ran into each other and out of the chart.
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("Deletion (lower is better)", "Insertion (higher is better)"))
    for r in records:
        x = [100.0 * f for f in r["fractions"]]
        dash = _REFERENCE_DASH if r["name"] in (reference_names() if references is None else references) else "solid"
        for col, key in ((1, "deletion"), (2, "insertion")):
            fig.add_trace(go.Scatter(
                x=x, y=[100.0 * p for p in r[key]], mode="lines", legendgroup=r["name"], showlegend=col == 1,
                name=f"{r['label']} (areas {r['deletion_auc']:.2f} / {r['insertion_auc']:.2f})",
                line=dict(color=map_color(r["name"]), width=2, dash=dash),
                hovertemplate=f"{r['label']}: %{{x:.0f}}% of the pixels {'removed' if col == 1 else 'inserted'}, "
                              "p = %{y:.1f}%<extra></extra>"), row=1, col=col)
    fig.update_xaxes(title="% removed, most important first", range=[0, 100], row=1, col=1)
    fig.update_xaxes(title="% put back, most important first", range=[0, 100], row=1, col=2)
    fig.update_yaxes(title="class probability (%)", range=[0, 100], row=1, col=1)
    # Anchored by its top, so a legend that wraps to more rows grows away from the axis titles, not onto them.
    fig.update_layout(height=480, legend=dict(orientation="h", yanchor="top", y=-0.4))
    # What removed pixels become on a line of its own: in a half-width column one line was cut at the edge.
    title = "Deletion and insertion" + (f"<br><sup>removed pixels become {baseline}</sup>" if baseline else "")
    base_layout(fig, title, revision)
    fig.update_layout(margin=dict(t=115))  # room for the two-line title and the subplot titles under it
    return fig


def layer_scores_figure(rows: Sequence[dict[str, Any]], revision: str = "layer-scores") -> go.Figure:
    """Per layer (rows from `LayerReport.records()`): faithfulness (insertion − deletion area) and, where a
    mask was given, the pointing game and the energy inside the object, as grouped bars."""
    labels = [r["label"] for r in rows]
    fig = go.Figure(go.Bar(x=labels, y=[r["faithfulness"] for r in rows], name="insertion − deletion area",
                           marker_color=COLORS["residual"],
                           hovertemplate="%{x}: %{y:.2f}<extra>insertion − deletion</extra>"))
    for key, name, color in (("pointing_game", "pointing game", COLORS["identity"]),
                             ("energy_inside", "energy inside the object", COLORS["zero-pad"])):
        if any(r.get(key) is not None for r in rows):
            fig.add_trace(go.Bar(x=labels, y=[r.get(key) for r in rows], name=name, marker_color=color,
                                 hovertemplate="%{x}: %{y:.2f}<extra>" + name + "</extra>"))
    fig.add_hline(y=0.0, line_color=COLORS["neutral"], line_width=1)
    fig.update_yaxes(title="score (0 to 1; faithfulness can be negative)", range=[-1.05, 1.05])
    fig.update_layout(barmode="group", height=380, legend=dict(orientation="h", y=-0.3))
    return base_layout(fig, "Grad-CAM at each layer: faithful and on the object?", revision)


def layer_maps_figure(labels: Sequence[str], maps: Sequence[Any], revision: str = "layer-maps") -> go.Figure:
    """Grad-CAM maps side by side (H x W arrays or tensors, each scaled to [0, 1] by its own range), titled
    with their layers; image rows top to bottom as in the picture."""
    n = max(1, len(maps))
    # Titles on two lines ("layer2.1 after the addition" / "(16×16)"), so five maps fit side by side.
    titles = [label.replace(" (", "<br>(", 1) for label in labels]
    fig = make_subplots(rows=1, cols=n, subplot_titles=titles, horizontal_spacing=0.02)
    for i, m in enumerate(maps, start=1):
        values = [[float(v) for v in row] for row in (m.tolist() if hasattr(m, "tolist") else m)]
        lo = min(min(row) for row in values)
        span = max(max(row) for row in values) - lo
        z = [[(v - lo) / span if span > 0 else 0.0 for v in row] for row in values]
        fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=1, colorscale="Jet", showscale=i == n,
                                 hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>"), row=1, col=i)
        fig.update_yaxes(autorange="reversed", scaleanchor=f"x{'' if i == 1 else i}", showticklabels=False,
                         row=1, col=i)
        fig.update_xaxes(showticklabels=False, row=1, col=i)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=320)
    base_layout(fig, "Grad-CAM at each layer (each map scaled to its own range)", revision)
    fig.update_layout(margin=dict(t=95))
    return fig


def trust_figure(rows: Sequence[dict[str, Any]], sensitive_below: float = 0.5, n: int = 1,
                 revision: str = "trust") -> go.Figure:
    """The trust table as points: faithfulness (insertion − deletion area, x) against the mean rank
    correlation with the trained map under weight randomization (y), with 95% intervals as error bars where the
    rows carry them (`faithfulness_low/high`, `randomization_rho_low/high`, as `Standing.record()` gives them over
    `n` images). Faithful and sensitive methods sit to the right and low. Reference maps never read the weights,
    so they have no ρ (the table's "—"): each is a vertical line at its faithfulness, not a point."""
    fig = go.Figure()
    for r in rows:
        if r.get("reference"):
            # A line trace, so that it has a legend entry like the methods; it spans the whole y range.
            fig.add_trace(go.Scatter(
                x=[r["faithfulness"]] * 2, y=[-1.05, 1.15], mode="lines", name=r["label"],
                line=dict(color=map_color(r["method"]), width=2, dash=_REFERENCE_DASH),
                hovertemplate=f"{r['label']}: insertion − deletion %{{x:.2f}}; it reads no weights, so no ρ"
                              "<extra></extra>"))
            continue
        rho = r.get("randomization_rho")
        if rho is None:
            continue  # not measured: no place on this chart (the table says so)
        # Named in the legend, not beside the points: methods that score alike sit on top of each other.
        fig.add_trace(go.Scatter(
            x=[r["faithfulness"]], y=[rho], mode="markers", name=r["label"],
            error_x=_error(r, "faithfulness"), error_y=_error(r, "randomization_rho"),
            marker=dict(size=13, color=map_color(r["method"]), line=dict(width=2, color=map_color(r["method"]))),
            hovertemplate=f"{r['label']}: insertion − deletion %{{x:.2f}}, ρ %{{y:.2f}}<extra></extra>"))
    fig.add_hline(y=sensitive_below, line_dash="dash", line_color=COLORS["neutral"],
                  annotation_text=f"below: the map changes with the weights (ρ < {sensitive_below})",
                  annotation_position="bottom right")
    fig.update_xaxes(title="faithfulness: insertion − deletion area (higher is better)")
    fig.update_yaxes(title="ρ with the trained map", range=[-1.05, 1.15])
    fig.update_layout(height=460, legend=dict(orientation="h", yanchor="top", y=-0.25))
    title = ("Faithful and sensitive to the weights?" if n <= 1 else
             f"Faithful and sensitive to the weights? Means over {n} images, 95% intervals")
    return base_layout(fig, title, revision)


def _error(row: dict[str, Any], key: str) -> dict[str, Any]:
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if low is None or high is None:
        return dict(visible=False)
    return dict(type="data", symmetric=False, array=[high - row[key]], arrayminus=[row[key] - low], thickness=1.5)
