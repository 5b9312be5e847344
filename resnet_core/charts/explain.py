"""Grad-CAM page figures: top predictions, localization scores, the randomization check."""

from __future__ import annotations

import plotly.graph_objects as go

from ..explain.references import reference_colors
from ..explain.registry import method_colors
from ..stats import mean_interval
from .style import COLORS, base_layout


def map_color(name: str) -> str:
    """A method's or a reference map's colour: its registry entry's, read when drawn (so a method or reference
    registered later has its own too)."""
    return {**method_colors(), **reference_colors()}.get(name, COLORS["neutral"])


def probability_figure(rows: "list[dict]", title: str = "Top predictions", revision: str = "probs") -> go.Figure:
    """Horizontal bars of top-k probabilities; `rows` as from attribution.topk (rank, label, probability)."""
    ordered = sorted(rows, key=lambda r: r["rank"], reverse=True)  # most probable on top
    labels = [f"{r['label']} " for r in ordered]
    probs = [100.0 * float(r["probability"]) for r in ordered]
    fig = go.Figure(go.Bar(
        x=probs, y=labels, orientation="h", marker_color=COLORS["residual"],
        text=[f"{p:.1f}%" for p in probs], textposition="auto",
        hovertemplate="%{y}: %{x:.2f}%<extra></extra>",
    ))
    fig.update_xaxes(title="probability (%)", range=[0, 100])
    fig.update_layout(height=max(180, 40 * len(rows) + 90), showlegend=False)
    return base_layout(fig, title, revision)


def localization_figure(rows: "list[dict]", revision: str = "localization") -> go.Figure:
    """Pointing game and energy inside the mask per method (rows from attribution.localization_scores), each with
    its 95% interval over the images, and the chance level (the mean mask area fraction) as a dashed line."""
    labels = [r["label"] for r in rows]
    fig = go.Figure()
    for key, name, opacity in (("pointing_game", "pointing game (peak inside the object)", 1.0),
                               ("energy_inside", "energy inside the object", 0.55)):
        halves = [_half_width(r, key) for r in rows]
        fig.add_trace(go.Bar(
            x=labels, y=[100.0 * r[key] for r in rows], name=name, opacity=opacity,
            marker_color=[map_color(r["method"]) for r in rows],
            # The 95% interval over the images, where the rows carry each image's value (localization_scores does).
            error_y=dict(type="data", array=[100.0 * h for h in halves], thickness=1.2)
            if all(h is not None for h in halves) else dict(visible=False),
            hovertemplate="%{x}: %{y:.1f}%<extra>" + name + "</extra>",
        ))
    if rows:
        chance = 100.0 * rows[0]["mask_fraction"]
        fig.add_hline(y=chance, line_dash="dash", line_color=COLORS["neutral"],
                      annotation_text=f"chance: object covers {chance:.1f}% of the image",
                      annotation_position="top left")
    fig.update_yaxes(title="% of images / of map energy", range=[0, 100])
    fig.update_layout(barmode="group", height=380, legend=dict(orientation="h", y=-0.25))
    return base_layout(fig, "Does the map point at the object?", revision)


def _half_width(row: dict, key: str) -> float | None:
    values = (row.get("per_image") or {}).get(key)
    if not values or len(values) < 2:
        return None
    return mean_interval(values).half_width


def randomization_figure(steps: "list[str]", correlations: "dict[str, list[float]]",
                         labels: "dict[str, str] | None" = None, revision: str = "randomization") -> go.Figure:
    """Spearman rank correlation with the trained model's map as weights are re-initialised from the
    head down (Adebayo et al. 2018). A method that depends on the model falls towards 0."""
    labels = labels or {}
    fig = go.Figure()
    for method, values in correlations.items():
        fig.add_trace(go.Scatter(
            x=steps, y=values, mode="lines+markers", name=labels.get(method, method),
            line=dict(color=map_color(method), width=2),
            hovertemplate="randomized down to %{x}: rho = %{y:.2f}<extra>" + labels.get(method, method) + "</extra>",
        ))
    fig.add_hline(y=0.0, line_dash="dot", line_color=COLORS["neutral"])
    fig.update_xaxes(title="weights re-initialised from the head down to ...", tickangle=-45)
    fig.update_yaxes(title="Spearman ρ with the trained map", range=[-1.05, 1.05])
    fig.update_layout(height=400, legend=dict(orientation="h", y=-0.45))
    return base_layout(fig, "Cascading weight randomization", revision)
