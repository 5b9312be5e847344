"""Figures of a model's architecture: blocks, shortcuts, where the resolution halves."""

from __future__ import annotations

import plotly.graph_objects as go

from ..model.summary import BlockRow, ModelSummary
from .style import COLORS, base_layout

SHORTCUT_LABEL = {
    "identity": "identity shortcut: y = F(x) + x",
    "zero-pad": "identity + zero-padded channels (option A, no parameters)",
    "projection": "projection shortcut: y = F(x) + W x (1x1 conv)",
    "none": "no shortcut (plain): y = F(x)",
}

# Beyond this many blocks a stage is drawn as its first and last blocks with a count between.
MAX_BLOCKS_DRAWN_PER_STAGE = 6


def _visible_blocks(blocks: list[BlockRow]) -> list[BlockRow | int]:
    """Blocks to draw, with an int standing for that many hidden blocks in a long stage."""
    out: list[BlockRow | int] = []
    for stage in sorted({b.stage for b in blocks}):
        members = [b for b in blocks if b.stage == stage]
        if len(members) <= MAX_BLOCKS_DRAWN_PER_STAGE:
            out.extend(members)
        else:
            head = MAX_BLOCKS_DRAWN_PER_STAGE - 2
            out.extend(members[:head])
            out.append(len(members) - head - 1)
            out.append(members[-1])
    return out


def _shape_text(shape: tuple[int, ...]) -> str:
    return f"{shape[0]} ch, {shape[1]}x{shape[2]}" if len(shape) == 3 else "x".join(map(str, shape))


def architecture_figure(summary: ModelSummary, title: str = "Architecture") -> go.Figure:
    """Stages and blocks left to right; arcs above the blocks are the shortcuts.

    Solid green arcs are identity shortcuts, dashed orange ones zero-padded identities,
    purple ones with a square are 1x1 projections, and plain blocks have no arc. A dashed
    vertical line marks each place where the resolution halves.
    """
    fig = go.Figure()
    items = _visible_blocks(summary.blocks)
    x = 0.0
    stem_shape = summary.blocks[0].in_shape if summary.blocks else summary.input_shape
    _box(fig, x, 1.2, "stem", COLORS["stem"], f"stem<br>{_shape_text(summary.input_shape)} → "
         f"{_shape_text(stem_shape)}")
    fig.add_annotation(x=x, y=-0.45, xanchor="left", showarrow=False, font=dict(size=10),
                       text=f"input {_shape_text(summary.input_shape)}")
    x += 1.6
    legend_shown: set[str] = set()
    previous_hw = stem_shape[1:]
    labelled_stages: set[int] = set()
    for item in items:
        if isinstance(item, int):
            fig.add_annotation(x=x + 0.4, y=0.5, text=f"… {item} more …", showarrow=False, textangle=-90)
            x += 1.0
            continue
        if item.out_shape[1:] != previous_hw:
            _halving_marker(fig, x - 0.2, previous_hw, item.out_shape[1:])
        previous_hw = item.out_shape[1:]
        if item.stage not in labelled_stages:
            labelled_stages.add(item.stage)
            fig.add_annotation(x=x, y=1.95, xanchor="left", showarrow=False, font=dict(size=11),
                               text=f"<b>layer{item.stage + 1}</b>: {_shape_text(item.out_shape)}")
        hover = (f"{item.path}<br>{_shape_text(item.in_shape)} → {_shape_text(item.out_shape)}"
                 f"<br>{item.params:,} parameters, {item.macs:,} MACs<br>{SHORTCUT_LABEL[item.shortcut]}")
        _box(fig, x, 1.0, f"{item.stage + 1}.{item.index}", COLORS["block"], hover)
        _shortcut_arc(fig, x, 1.0, item.shortcut, item.shortcut not in legend_shown)
        legend_shown.add(item.shortcut)
        x += 1.3
    _box(fig, x, 1.2, "pool+fc", COLORS["stem"], f"global average pool + fc → {summary.output_shape[0]} classes")
    fig.update_xaxes(visible=False, range=[-0.5, x + 1.7])
    fig.update_yaxes(visible=False, range=[-0.9, 2.2], fixedrange=True)
    # Anchored at its top, the legend grows downwards when it wraps in a narrow column (plotly's default anchor for
    # a legend below the plot is its bottom, so a second row rose over the "32→16 px" labels until plotly had
    # widened the margin); the bottom margin has room for two rows from the start.
    fig.update_layout(height=320, showlegend=True, legend=dict(orientation="h", yanchor="top", y=-0.02))
    return base_layout(fig, title, "architecture").update_layout(margin_b=60)


def _box(fig: go.Figure, x0: float, width: float, label: str, color: str, hover: str) -> None:
    fig.add_trace(go.Scatter(
        x=[x0, x0 + width, x0 + width, x0, x0], y=[0, 0, 1, 1, 0], fill="toself", mode="lines",
        line=dict(color=color, width=1), fillcolor=color, opacity=0.8, hoverinfo="text", hovertext=hover,
        showlegend=False,
    ))
    fig.add_annotation(x=x0 + width / 2, y=0.5, text=label, showarrow=False, font=dict(size=10),
                       textangle=-90 if len(label) > 5 else 0)


def _shortcut_arc(fig: go.Figure, x0: float, width: float, kind: str, show_legend: bool) -> None:
    if kind == "none":
        return
    xs = [x0 - 0.1, x0 - 0.1, x0 + width + 0.1, x0 + width + 0.1]
    ys = [1.0, 1.6, 1.6, 1.0]
    dash = "dash" if kind == "zero-pad" else "solid"
    fig.add_trace(go.Scatter(
        x=xs, y=ys, mode="lines", line=dict(color=COLORS[kind], width=3, dash=dash, shape="spline"),
        name=SHORTCUT_LABEL[kind], legendgroup=kind, showlegend=show_legend, hoverinfo="name",
    ))
    if kind == "projection":
        fig.add_trace(go.Scatter(
            x=[x0 + width / 2], y=[1.6], mode="markers", marker=dict(symbol="square", size=12, color=COLORS[kind]),
            name="1x1 conv", legendgroup=kind, showlegend=False, hoverinfo="name",
        ))


def _halving_marker(fig: go.Figure, x: float, before: tuple[int, ...], after: tuple[int, ...]) -> None:
    fig.add_shape(type="line", x0=x, x1=x, y0=-0.6, y1=2.0, line=dict(color=COLORS["neutral"], dash="dot"))
    fig.add_annotation(x=x, y=-0.75, text=f"{before[0]}→{after[0]} px", showarrow=False, font=dict(size=10))


def stage_table(summary: ModelSummary) -> list[dict]:
    """One row per stage: blocks, output shape, parameters, MACs (what the diagram summarises)."""
    rows: dict[int, dict] = {}
    for b in summary.blocks:
        row = rows.setdefault(b.stage, {"stage": f"layer{b.stage + 1}", "blocks": 0, "output": "",
                                        "parameters": 0, "MACs": 0, "shortcuts": set()})
        row["blocks"] += 1
        row["output"] = _shape_text(b.out_shape)
        row["parameters"] += b.params
        row["MACs"] += b.macs
        row["shortcuts"].add(b.shortcut)
    for row in rows.values():
        row["shortcuts"] = ", ".join(sorted(row["shortcuts"]))
    return [rows[k] for k in sorted(rows)]
