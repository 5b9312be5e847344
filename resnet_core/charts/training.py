"""Training curves from metric events: loss, per-epoch metrics, learning rate, throughput, run overlays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from ..analysis.bands import band as seed_band
from ..train.events import EpochEvent, Event, StepEvent
from .style import base_layout

TRAIN_COLORS = {
    "train": "#0072B2",
    "val": "#D55E00",
    "acc": "#009E73",
    "lr": "#CC79A7",
    "speed": "#E69F00",
}
# More points than this per trace are thinned for drawing (the smoothing uses every point).
MAX_POINTS_DRAWN = 2000
# While a run trains its charts are redrawn every second, and each point drawn costs the browser on the same
# CPU as the training (benchmarks/bench_live_page.py): live charts draw at most this many points per trace.
LIVE_POINTS_DRAWN = 400
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


def thin(xs: list, *columns: list, max_points: int = MAX_POINTS_DRAWN) -> tuple[list, ...]:
    """Every k-th point of `xs` and its `columns` (k chosen so at most `max_points` remain), and the newest."""
    stride = max(1, -(-len(xs) // max_points))
    if stride == 1:
        return (xs, *columns)
    keep = list(range(0, len(xs), stride))
    if keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)  # always draw the newest point
    return tuple([c[i] for i in keep] for c in (xs, *columns))


# Okabe-Ito: one colour per run (or per band of seeds) on the overlay, readable by colour-blind viewers.
OVERLAY_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

_KINDS: dict[str, type] = {"step": StepEvent, "epoch": EpochEvent}


def band_traces(xs: list, mean: list, low: list, high: list, name: str, color: str, *, opacity: float = 0.2,
                dash: str = "solid", width: float = 2.0, legendgroup: str | None = None,
                showlegend: bool = True, mean_opacity: float = 1.0) -> list[go.Scatter]:
    """A mean line with its min-max band filled behind it (three traces: the upper edge, the lower edge filled up
    to it, then the mean), for several runs of one configuration."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    edge = dict(width=0, color=color)
    group = legendgroup or name
    return [
        go.Scatter(x=xs, y=high, mode="lines", line=edge, showlegend=False, hoverinfo="skip", legendgroup=group),
        go.Scatter(x=xs, y=low, mode="lines", line=edge, fill="tonexty", fillcolor=f"rgba({r},{g},{b},{opacity})",
                   showlegend=False, hoverinfo="skip", legendgroup=group),
        go.Scatter(x=xs, y=mean, mode="lines", name=name, line=dict(color=color, width=width, dash=dash),
                   legendgroup=group, showlegend=showlegend, opacity=mean_opacity),
    ]


def _series(events: "list[Event]", kind: str, key: str, x: str = "step") -> tuple[list, list]:
    """(x values, `key` values) of the events of `kind` ("step" or "epoch") that have both."""
    cls = _KINDS[kind]
    rows = [(getattr(e, x), getattr(e, key)) for e in events if isinstance(e, cls)]
    rows = [(xv, yv) for xv, yv in rows if xv is not None and yv is not None]
    return [xv for xv, _ in rows], [yv for _, yv in rows]


def training_loss_figure(events: "list[Event]", smoothing: float = 0.6, log_y: bool = False,
                         title: str = "Training loss", revision: str = "train-loss",
                         max_points: int = MAX_POINTS_DRAWN) -> go.Figure:
    """Per-step training loss, raw (faint) and EMA-smoothed, with per-epoch validation loss as markers.
    `max_points`: per trace drawn (LIVE_POINTS_DRAWN while the run trains)."""
    steps, losses = _series(events, "step", "train_loss")
    smooth = ema(losses, smoothing) if smoothing > 0 else list(losses)
    xs, raw, sm = thin(steps, losses, smooth, max_points=max_points)
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
    return base_layout(fig, title, revision)


def epoch_metrics_figure(events: "list[Event]", title: str = "Per epoch",
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
    return base_layout(fig, title, revision)


def _step_line(steps: "list[int]", values: "list[float]", name: str, color: str, y_title: str, title: str,
               revision: str, **yaxis: Any) -> go.Figure:
    """One small per-step line chart (the learning rate, the throughput)."""
    xs, ys = thin(list(steps), list(values))
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", name=name, line=dict(color=color, width=2)))
    fig.update_xaxes(title="step")
    fig.update_yaxes(title=y_title, **yaxis)
    fig.update_layout(height=260, showlegend=False)
    return base_layout(fig, title, revision)


def lr_figure(steps: "list[int]", lrs: "list[float]", title: str = "Learning rate",
              revision: str = "lr") -> go.Figure:
    """The learning rate per step (live from events, or a schedule preview from lr_schedule)."""
    return _step_line(steps, lrs, "learning rate", TRAIN_COLORS["lr"], "learning rate", title, revision,
                      exponentformat="power")


def throughput_figure(events: "list[Event]", smoothing: float = 0.6, title: str = "Throughput",
                      revision: str = "throughput") -> go.Figure:
    """Training images per second per step (smoothed like the loss)."""
    steps, rates = _series(events, "step", "samples_per_s")
    return _step_line(steps, ema(rates, smoothing) if smoothing > 0 else rates, "images / s",
                      TRAIN_COLORS["speed"], "images per second", title, revision, rangemode="tozero")


def runs_overlay_figure(runs: "dict[str, list[Event]]", metric: str = "train_loss", smoothing: float = 0.6,
                        log_y: bool = False, revision: str = "runs-overlay",
                        groups: "Sequence[Sequence[str]] | None" = None) -> go.Figure:
    """One line per run for `metric` (a key of OVERLAY_METRICS), to compare runs on one chart. `groups`: runs of one
    recipe with different seeds (analysis.bands.same_recipe); a group of several is drawn as its mean with the
    min-max band over the x values they all reached, so a viewer sees how much of a difference is the seed's."""
    if metric not in OVERLAY_METRICS:
        raise ValueError(f"metric: {metric!r} is not one of {list(OVERLAY_METRICS)}")
    x_key, label = OVERLAY_METRICS[metric]
    kind = "step" if x_key == "step" else "epoch"
    series = {}
    for name, events in runs.items():
        xs, ys = _series(events, kind, metric, x=x_key)
        if metric.endswith("_acc"):
            ys = [100 * y for y in ys]
        if kind == "step" and smoothing > 0:
            ys = ema(ys, smoothing)
        series[name] = (xs, ys)
    fig = go.Figure()
    palette = list(OVERLAY_PALETTE)
    for i, members in enumerate([list(g) for g in (groups or [[n] for n in runs])]):
        members = [m for m in members if m in series]
        color = palette[i % len(palette)]
        together = seed_band([series[m] for m in members]) if len(members) > 1 else None
        if together is not None:
            xs, mean, low, high = thin(together.step, together.mean, together.low, together.high)
            name = f"{members[0]} and {len(members) - 1} more: mean and min–max of {len(members)} seeds"
            for trace in band_traces(xs, mean, low, high, name, color):
                fig.add_trace(trace)
            continue
        for m in members:
            xs, ys = thin(*series[m])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines" if kind == "step" else "lines+markers", name=m,
                                     line=dict(color=color)))
    fig.update_xaxes(title=x_key)
    fig.update_yaxes(title=label, type="log" if log_y else "linear")
    fig.update_layout(height=400, legend=dict(orientation="h", y=-0.2))
    return base_layout(fig, f"Runs compared: {label}", revision)
