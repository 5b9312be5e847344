"""Plotly figure builders: pure functions from numbers to figures (no Streamlit, no I/O).

Every figure sets `layout.uirevision` so a user's zoom survives the page's redraws,
and uses colours that read on both light and dark themes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

from .summary import BlockRow, ModelSummary

if TYPE_CHECKING:  # the figures only read attributes: no runtime import of the engine
    from .gradients import Band, LesionResult, PairProfile, ShatteringProfile, ShatteringSweep, SweepResult

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

SHORTCUT_LABEL = {
    "identity": "identity shortcut: y = F(x) + x",
    "zero-pad": "identity + zero-padded channels (option A, no parameters)",
    "projection": "projection shortcut: y = F(x) + W x (1x1 conv)",
    "none": "no shortcut (plain): y = F(x)",
}

# Beyond this many blocks a stage is drawn as its first and last blocks with a count between.
MAX_BLOCKS_DRAWN_PER_STAGE = 6


def _base_layout(fig: go.Figure, title: str, revision: str) -> go.Figure:
    fig.update_layout(
        # No template: Streamlit's own chart theme follows the app's light or dark theme.
        title=title, uirevision=revision, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        margin=dict(l=10, r=10, t=50, b=10),
    )
    return fig


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
    fig.update_layout(height=300, showlegend=True, legend=dict(orientation="h", y=-0.05))
    return _base_layout(fig, title, "architecture")


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


# --------------------------------------------------------------------------------------------
# Training curves (Train page): built from the Trainer's metric events (plain dicts)
# --------------------------------------------------------------------------------------------

TRAIN_COLORS = {
    "train": "#0072B2",
    "val": "#D55E00",
    "acc": "#009E73",
    "lr": "#CC79A7",
    "speed": "#E69F00",
}
# More points than this per trace are thinned for drawing (the smoothing uses every point).
MAX_POINTS_DRAWN = 2000
OVERLAY_METRICS = {
    "train_loss": ("step", "training loss"),
    "val_loss": ("epoch", "validation loss"),
    "val_acc": ("epoch", "validation accuracy (%)"),
    "train_acc": ("epoch", "training accuracy (%)"),
    "lr": ("step", "learning rate"),
    "grad_norm": ("step", "gradient norm (global L2)"),
    "samples_per_s": ("step", "images per second"),
}


def ema(values: "list[float]", smoothing: float = 0.6) -> list[float]:
    """TensorBoard-style smoothing: a debiased exponential moving average with weight `smoothing`.

    s_t = w s_(t-1) + (1 - w) x_t, divided by 1 - w^t so the curve starts at the first value
    instead of at zero. A non-finite value (a diverged step) is returned as is and not averaged in.
    """
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing: {smoothing!r} must be in [0, 1)")
    out: list[float] = []
    avg, weight = 0.0, 0.0
    for x in values:
        x = float(x)
        if x != x or x in (float("inf"), float("-inf")):
            out.append(x)
            continue
        avg = smoothing * avg + (1 - smoothing) * x
        weight = smoothing * weight + (1 - smoothing)
        out.append(avg / weight)
    return out


def _thin(xs: list, *columns: list) -> tuple[list, ...]:
    stride = max(1, -(-len(xs) // MAX_POINTS_DRAWN))
    if stride == 1:
        return (xs, *columns)
    keep = list(range(0, len(xs), stride))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)  # always draw the newest point
    return tuple([c[i] for i in keep] for c in (xs, *columns))


def _series(events: "list[dict]", kind: str, key: str, x: str = "step") -> tuple[list, list]:
    rows = [e for e in events if e.get("type") == kind and e.get(key) is not None and e.get(x) is not None]
    return [e[x] for e in rows], [e[key] for e in rows]


def training_loss_figure(events: "list[dict]", smoothing: float = 0.6, log_y: bool = False,
                         title: str = "Training loss", revision: str = "train-loss") -> go.Figure:
    """Per-step training loss, raw (faint) and EMA-smoothed, with per-epoch validation loss as markers."""
    steps, losses = _series(events, "step", "train_loss")
    smooth = ema(losses, smoothing) if smoothing > 0 else list(losses)
    xs, raw, sm = _thin(steps, losses, smooth)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=raw, mode="lines", name="training loss (raw)",
                             line=dict(color=TRAIN_COLORS["train"], width=1), opacity=0.3))
    fig.add_trace(go.Scatter(x=xs, y=sm, mode="lines", name=f"training loss (EMA {smoothing:g})",
                             line=dict(color=TRAIN_COLORS["train"], width=2.5)))
    vx, vy = _series(events, "epoch", "val_loss")
    if vx:
        fig.add_trace(go.Scatter(x=vx, y=vy, mode="lines+markers", name="validation loss (end of epoch)",
                                 line=dict(color=TRAIN_COLORS["val"], width=2), marker=dict(size=8)))
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="cross-entropy loss", type="log" if log_y else "linear")
    fig.update_layout(height=360, legend=dict(orientation="h", y=-0.2))
    return _base_layout(fig, title, revision)


def epoch_metrics_figure(events: "list[dict]", title: str = "Per epoch",
                         revision: str = "epoch-metrics") -> go.Figure:
    """Validation (and training) accuracy per epoch on the left axis, validation loss on the right."""
    fig = go.Figure()
    ex, val_acc = _series(events, "epoch", "val_acc", x="epoch")
    tx, train_acc = _series(events, "epoch", "train_acc", x="epoch")
    lx, val_loss = _series(events, "epoch", "val_loss", x="epoch")
    fig.add_trace(go.Scatter(x=ex, y=[100 * a for a in val_acc], mode="lines+markers", name="validation accuracy",
                             line=dict(color=TRAIN_COLORS["acc"], width=2.5)))
    fig.add_trace(go.Scatter(x=tx, y=[100 * a for a in train_acc], mode="lines+markers",
                             name="training accuracy (augmented batches)",
                             line=dict(color=TRAIN_COLORS["acc"], width=1.5, dash="dot")))
    fig.add_trace(go.Scatter(x=lx, y=val_loss, mode="lines+markers", name="validation loss", yaxis="y2",
                             line=dict(color=TRAIN_COLORS["val"], width=2)))
    fig.update_layout(
        height=360, legend=dict(orientation="h", y=-0.2),
        xaxis=dict(title="epoch", dtick=1),
        yaxis=dict(title="accuracy (%)", range=[0, 100]),
        yaxis2=dict(title="validation loss", overlaying="y", side="right", showgrid=False),
    )
    return _base_layout(fig, title, revision)


def _step_line(steps: "list[int]", values: "list[float]", name: str, color: str, y_title: str, title: str,
               revision: str, **yaxis: Any) -> go.Figure:
    """One small per-step line chart (the learning rate, the throughput)."""
    xs, ys = _thin(list(steps), list(values))
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", name=name, line=dict(color=color, width=2)))
    fig.update_xaxes(title="step")
    fig.update_yaxes(title=y_title, **yaxis)
    fig.update_layout(height=260, showlegend=False)
    return _base_layout(fig, title, revision)


def lr_figure(steps: "list[int]", lrs: "list[float]", title: str = "Learning rate",
              revision: str = "lr") -> go.Figure:
    """The learning rate per step (live from events, or a schedule preview from lr_schedule)."""
    return _step_line(steps, lrs, "learning rate", TRAIN_COLORS["lr"], "learning rate", title, revision,
                      exponentformat="power")


def throughput_figure(events: "list[dict]", smoothing: float = 0.6, title: str = "Throughput",
                      revision: str = "throughput") -> go.Figure:
    """Training images per second per step (smoothed like the loss)."""
    steps, rates = _series(events, "step", "samples_per_s")
    return _step_line(steps, ema(rates, smoothing) if smoothing > 0 else rates, "images / s",
                      TRAIN_COLORS["speed"], "images per second", title, revision, rangemode="tozero")


def runs_overlay_figure(runs: "dict[str, list[dict]]", metric: str = "train_loss", smoothing: float = 0.6,
                        log_y: bool = False, revision: str = "runs-overlay") -> go.Figure:
    """One line per run for `metric` (a key of OVERLAY_METRICS), to compare runs on one chart."""
    if metric not in OVERLAY_METRICS:
        raise ValueError(f"metric: {metric!r} is not one of {list(OVERLAY_METRICS)}")
    x_key, label = OVERLAY_METRICS[metric]
    kind = "step" if x_key == "step" else "epoch"
    fig = go.Figure()
    for name, events in runs.items():
        xs, ys = _series(events, kind, metric, x=x_key)
        if metric.endswith("_acc"):
            ys = [100 * y for y in ys]
        if kind == "step" and smoothing > 0:
            ys = ema(ys, smoothing)
        xs, ys = _thin(xs, ys)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines" if kind == "step" else "lines+markers", name=name))
    fig.update_xaxes(title=x_key)
    fig.update_yaxes(title=label, type="log" if log_y else "linear")
    fig.update_layout(height=400, legend=dict(orientation="h", y=-0.2))
    return _base_layout(fig, f"Runs compared: {label}", revision)


# --------------------------------------------------------------------------------------------
# Plain vs residual (gradients page): built from resnet_core.gradients results
# --------------------------------------------------------------------------------------------



def _pvr_color(label: str) -> str:
    return COLORS["plain"] if label.startswith("plain") else COLORS["residual"]


def _positive(values: "list[float] | tuple[float, ...]") -> list[float | None]:
    """Zeros and non-finite values become gaps: a log axis cannot show them."""
    return [v if (v > 0 and v != float("inf")) else None for v in values]


def _band_traces(fig: go.Figure, xs: list, band: "Band", label: str, hover: list[str]) -> None:
    color = _pvr_color(label)
    fig.add_trace(go.Scatter(x=xs, y=_positive(band.high), mode="lines", line=dict(width=0, color=color),
                             showlegend=False, hoverinfo="skip", legendgroup=label))
    fig.add_trace(go.Scatter(x=xs, y=_positive(band.low), mode="lines", line=dict(width=0, color=color),
                             fill="tonexty", fillcolor=_rgba(color, 0.2), showlegend=False, hoverinfo="skip",
                             legendgroup=label))
    fig.add_trace(go.Scatter(x=xs, y=_positive(band.mean), mode="lines+markers", name=f"{label} (mean, min–max)",
                             line=dict(color=color, width=2), marker=dict(size=4), legendgroup=label,
                             hovertext=hover, hoverinfo="text+y"))


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def gradient_profile_figure(pair: "PairProfile", kind: str = "convs", revision: str = "grad-profile") -> go.Figure:
    """Gradient norm per conv weight (kind="convs") or per block output ("blocks"), input to output.

    `pair` is a gradients.PairProfile; each network gets its mean line and a min–max band over the
    seeds, on a log axis. Shortcut projections (off the main path) are drawn as separate markers.
    """
    if kind not in ("convs", "blocks"):
        raise ValueError(f"kind: {kind!r} must be 'convs' or 'blocks'")
    fig = go.Figure()
    for side in (pair.a, pair.b):
        band = side.convs if kind == "convs" else side.blocks
        if kind == "convs":
            main = [i for i, s in enumerate(side.on_shortcut) if not s]
            band = type(band)(*(tuple(getattr(band, f)[i] for i in main) for f in ("paths", "mean", "low", "high")))
        xs = list(range(len(band.paths)))
        _band_traces(fig, xs, band, side.label, list(band.paths))
        if kind == "convs" and any(side.on_shortcut):
            proj = [i for i, s in enumerate(side.on_shortcut) if s]
            # Place each projection just after the main-path conv that precedes it.
            xpos = [sum(1 for j in range(i) if not side.on_shortcut[j]) - 0.5 for i in proj]
            fig.add_trace(go.Scatter(x=xpos, y=_positive([side.convs.mean[i] for i in proj]), mode="markers",
                                     marker=dict(symbol="square-open", size=9, color=_pvr_color(side.label)),
                                     name=f"{side.label}: shortcut projections",
                                     hovertext=[side.convs.paths[i] for i in proj], hoverinfo="text+y"))
    what = "convolution weight" if kind == "convs" else "block output"
    fig.update_xaxes(title=f"{what} (input → output)")
    fig.update_yaxes(title=f"‖∂loss/∂{'W' if kind == 'convs' else 'output'}‖ (log)", type="log",
                     exponentformat="power")
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.25))
    seeds = len(pair.seeds)
    title = (f"Gradient norm per {what}: {pair.a.label} vs {pair.b.label} "
             f"({seeds} seed{'s' if seeds > 1 else ''}, batch {pair.batch_size}, {pair.image_size}px)")
    return _base_layout(fig, title, f"{revision}-{kind}")


def depth_sweep_figure(result: "SweepResult", norm: str = "batch", revision: str = "depth-sweep") -> go.Figure:
    """First-conv / last-conv gradient-norm ratio against depth (log y), plain vs residual.

    `result` is a gradients.SweepResult; each point is the median over seeds with a min–max error bar.
    """
    fig = go.Figure()
    for residual in (False, True):
        series = result.series(residual, norm)
        if not series:
            continue
        label = ("ResNet" if residual else "plain") + ("" if norm == "batch" else " (no BN)")
        color = COLORS["residual" if residual else "plain"]
        depths, med, lo, hi = (list(c) for c in zip(*series))
        fig.add_trace(go.Scatter(
            x=depths, y=_positive(med), mode="lines+markers", name=label, line=dict(color=color, width=2.5),
            marker=dict(size=8),
            error_y=dict(type="data", symmetric=False, array=[h - m for h, m in zip(hi, med)],
                         arrayminus=[m - v for m, v in zip(med, lo)], color=color, thickness=1),
            hovertemplate="depth %{x}<br>ratio %{y:.3g}<extra>" + label + "</extra>"))
    fig.add_hline(y=1, line=dict(color=COLORS["neutral"], dash="dot"))
    fig.update_xaxes(title="depth (layers, 6n+2)", tickvals=list(result.depths))
    fig.update_yaxes(title="‖∇ first conv‖ / ‖∇ last conv‖ (log)", type="log", exponentformat="power")
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.2))
    bn = "with BatchNorm" if norm == "batch" else "without normalization"
    state = " (stopped)" if result.stopped else ""
    return _base_layout(fig, f"Gradient ratio at initialization vs depth, {bn}{state}", f"{revision}-{norm}")


def grad_heatmap_figure(block_paths: "list[str] | tuple[str, ...]", steps: "list[int]",
                        matrix: "list[list[float]]", title: str = "Block-output gradient norm during training",
                        zrange: "tuple[float, float] | None" = None, revision: str = "grad-heatmap") -> go.Figure:
    """Blocks (rows, input at the top) x recorded steps (columns), colour = log10 gradient norm.

    Give two heatmaps the same `zrange` (log10 units) to compare them colour for colour.
    """
    import math

    z = [[math.log10(v) if v > 0 and math.isfinite(v) else None for v in row] for row in matrix]
    heat = go.Heatmap(x=list(steps), y=list(block_paths), z=z, colorscale="Viridis",
                      colorbar=dict(title="log10 ‖∇‖"),
                      hovertemplate="%{y}, step %{x}<br>log10 norm %{z:.2f}<extra></extra>")
    if zrange is not None:
        heat.update(zmin=zrange[0], zmax=zrange[1])
    fig = go.Figure(heat)
    fig.update_xaxes(title="training step")
    fig.update_yaxes(title="block (input at the top)", autorange="reversed", type="category")
    fig.update_layout(height=max(260, 16 * len(block_paths) + 120))
    return _base_layout(fig, title, revision)


def lesion_figure(results: "list[LesionResult]", revision: str = "lesion") -> go.Figure:
    """Accuracy after deleting each single block (bars), per network, with the intact accuracy dashed.

    `results` are gradients.LesionResult; blocks a plain net cannot skip are labelled "n/a".
    """
    fig = go.Figure()
    for res in results:
        color = _pvr_color(res.label)
        paths = [e.path for e in res.entries]
        fig.add_trace(go.Bar(
            x=paths, y=[100 * e.accuracy if e.accuracy is not None else 0 for e in res.entries],
            name=f"{res.label}: one block deleted", marker_color=color,
            text=["n/a" if e.accuracy is None else "" for e in res.entries], textposition="outside",
            hovertext=[e.note or f"{e.path} deleted" for e in res.entries], hoverinfo="text+y"))
        fig.add_hline(y=100 * res.baseline, line=dict(color=color, dash="dash"),
                      annotation_text=f"{res.label} intact {100 * res.baseline:.1f}%",
                      annotation_position="top left")
    if results:
        fig.add_hline(y=100 * results[0].chance, line=dict(color=COLORS["neutral"], dash="dot"),
                      annotation_text="chance", annotation_position="bottom right")
    fig.update_xaxes(title="deleted block", type="category")
    fig.update_yaxes(title="validation accuracy (%)", range=[0, 105])
    fig.update_layout(height=380, barmode="group", legend=dict(orientation="h", y=-0.3))
    return _base_layout(fig, "Lesion study: accuracy with one block deleted at test time", revision)


def shattering_figure(sweep: "ShatteringSweep", revision: str = "shattering") -> go.Figure:
    """Mean correlation of input-gradients at neighbouring points on a line, against depth.

    `sweep` is a gradients.ShatteringSweep; error bars span the seeds.
    """
    fig = go.Figure()
    for residual in (False, True):
        series = sweep.series(residual)
        if not series:
            continue
        label = "ResNet" if residual else "plain"
        color = COLORS["residual" if residual else "plain"]
        depths, mean, lo, hi = (list(c) for c in zip(*series))
        fig.add_trace(go.Scatter(
            x=depths, y=mean, mode="lines+markers", name=label, line=dict(color=color, width=2.5),
            marker=dict(size=8),
            error_y=dict(type="data", symmetric=False, array=[h - m for h, m in zip(hi, mean)],
                         arrayminus=[m - v for m, v in zip(mean, lo)], color=color, thickness=1),
            hovertemplate="depth %{x}<br>correlation %{y:.2f}<extra>" + label + "</extra>"))
    fig.add_hline(y=0, line=dict(color=COLORS["neutral"], dash="dot"))
    fig.update_xaxes(title="depth (layers, 6n+2)", tickvals=list(sweep.depths))
    fig.update_yaxes(title="correlation of neighbouring input-gradients", range=[-0.1, 1.05])
    fig.update_layout(height=360, legend=dict(orientation="h", y=-0.2))
    return _base_layout(fig, f"Gradient shattering at initialization ({sweep.n_points} points per line)", revision)


def autocorrelation_figure(profiles: "list[ShatteringProfile]", revision: str = "autocorrelation") -> go.Figure:
    """Correlation of input-gradients against the distance between points (lag), one line per network.

    `profiles` are gradients.ShatteringProfile.
    """
    fig = go.Figure()
    for prof in profiles:
        fig.add_trace(go.Scatter(x=list(prof.lags), y=list(prof.autocorrelation), mode="lines+markers",
                                 name=prof.label, line=dict(color=_pvr_color(prof.label), width=2)))
    fig.add_hline(y=0, line=dict(color=COLORS["neutral"], dash="dot"))
    fig.update_xaxes(title="lag (points along the line)")
    fig.update_yaxes(title="gradient correlation", range=[-0.1, 1.05])
    fig.update_layout(height=320, legend=dict(orientation="h", y=-0.25))
    return _base_layout(fig, "Autocorrelation of the input-gradient along the line", revision)


def plain_vs_residual_training_figure(curves: "dict[str, dict]", metric: str = "train_loss",
                                      smoothing: float = 0.6, revision: str = "pvr-training") -> go.Figure:
    """Overlaid curves of the side-by-side runs (gradients.SideBySide.curves()).

    Colour tells plain (orange) from residual (blue); the deeper net of each kind is drawn solid and
    thick, the shallower dashed, as in He et al. 2015's Figure 6.
    """
    if metric not in ("train_loss", "val_acc"):
        raise ValueError(f"metric: {metric!r} must be 'train_loss' or 'val_acc'")
    depths = sorted({int(name.rsplit("-", 1)[1].split()[0]) for name in curves}) if curves else []
    fig = go.Figure()
    for name, c in curves.items():
        depth = int(name.rsplit("-", 1)[1].split()[0])
        deep = depth == depths[-1] and len(depths) > 1
        if metric == "train_loss":
            xs, ys = c["step"], ema(c["train_loss"], smoothing) if smoothing > 0 else c["train_loss"]
            xs, ys = _thin(list(xs), list(ys))
        else:
            xs, ys = c["val_step"], [100 * a for a in c["val_acc"]]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines" if metric == "train_loss" else "lines+markers",
                                 name=f"{name} ({c['status']})",
                                 line=dict(color=_pvr_color(name), width=3 if deep else 1.8,
                                           dash="solid" if deep else "dash")))
    fig.update_xaxes(title="training step")
    if metric == "train_loss":
        fig.update_yaxes(title="training loss (EMA)")
        title = "Training loss: plain vs residual"
    else:
        fig.update_yaxes(title="validation accuracy (%)", range=[0, 100])
        title = "Validation accuracy: plain vs residual"
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.2))
    return _base_layout(fig, title, f"{revision}-{metric}")


# --------------------------------------------------------------------------------------------
# Grad-CAM page: predictions and the two trust checks (pure functions of plain data)
# --------------------------------------------------------------------------------------------

_METHOD_COLORS = {
    "gradcam": "#0072B2", "guided_gradcam": "#D55E00", "integrated_gradients": "#009E73",
    "saliency": "#CC79A7", "occlusion": "#E69F00", "uniform": "#999999", "random": "#BBBBBB",
}


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
    return _base_layout(fig, title, revision)


def localization_figure(rows: "list[dict]", revision: str = "localization") -> go.Figure:
    """Pointing game and energy inside the mask per method (rows from attribution.localization_scores),
    with the chance level (the mean mask area fraction) as a dashed line."""
    labels = [r["label"] for r in rows]
    fig = go.Figure()
    for key, name, opacity in (("pointing_game", "pointing game (peak inside the object)", 1.0),
                               ("energy_inside", "energy inside the object", 0.55)):
        fig.add_trace(go.Bar(
            x=labels, y=[100.0 * r[key] for r in rows], name=name, opacity=opacity,
            marker_color=[_METHOD_COLORS.get(r["method"], COLORS["neutral"]) for r in rows],
            hovertemplate="%{x}: %{y:.1f}%<extra>" + name + "</extra>",
        ))
    if rows:
        chance = 100.0 * rows[0]["mask_fraction"]
        fig.add_hline(y=chance, line_dash="dash", line_color=COLORS["neutral"],
                      annotation_text=f"chance: object covers {chance:.1f}% of the image",
                      annotation_position="top left")
    fig.update_yaxes(title="% of images / of map energy", range=[0, 100])
    fig.update_layout(barmode="group", height=380, legend=dict(orientation="h", y=-0.25))
    return _base_layout(fig, "Does the map point at the object?", revision)


def randomization_figure(steps: "list[str]", correlations: "dict[str, list[float]]",
                         labels: "dict[str, str] | None" = None, revision: str = "randomization") -> go.Figure:
    """Spearman rank correlation with the trained model's map as weights are re-initialised from the
    head down (Adebayo et al. 2018). A method that depends on the model falls towards 0."""
    labels = labels or {}
    fig = go.Figure()
    for method, values in correlations.items():
        fig.add_trace(go.Scatter(
            x=steps, y=values, mode="lines+markers", name=labels.get(method, method),
            line=dict(color=_METHOD_COLORS.get(method, COLORS["neutral"]), width=2),
            hovertemplate="randomized down to %{x}: rho = %{y:.2f}<extra>" + labels.get(method, method) + "</extra>",
        ))
    fig.add_hline(y=0.0, line_dash="dot", line_color=COLORS["neutral"])
    fig.update_xaxes(title="weights re-initialised from the head down to ...", tickangle=-45)
    fig.update_yaxes(title="Spearman ρ with the trained map", range=[-1.05, 1.05])
    fig.update_layout(height=400, legend=dict(orientation="h", y=-0.45))
    return _base_layout(fig, "Cascading weight randomization", revision)
