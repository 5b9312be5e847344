"""Plain vs residual figures: gradient profiles, depth sweep, heatmaps, lesions, shattering, side-by-side curves."""

from __future__ import annotations

import textwrap

import plotly.graph_objects as go

from ..analysis.bands import CurveBand
from ..analysis.bands import band as curve_band
from ..analysis.lesion import LesionResult
from ..analysis.profiles import Band, PairProfile
from ..analysis.shattering import ShatteringProfile, ShatteringSweep
from ..analysis.sweep import SweepResult
from .style import COLORS, base_layout
from .training import MAX_POINTS_DRAWN, band_traces, ema, thin


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
    return base_layout(fig, title, f"{revision}-{kind}")


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
    return base_layout(fig, f"Gradient ratio at initialization vs depth, {bn}{state}", f"{revision}-{norm}")


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
    return base_layout(fig, title, revision)


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
    return base_layout(fig, "Lesion study: accuracy with one block deleted at test time", revision)


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
    return base_layout(fig, f"Gradient shattering at initialization ({sweep.n_points} points per line)", revision)


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
    return base_layout(fig, "Autocorrelation of the input-gradient along the line", revision)


def _curve_band(seeds: "list[dict]", metric: str, smoothing: float) -> "CurveBand | None":
    """The band over a net's recorded seeds: of the training loss smoothed as the live curves are, or of the
    validation accuracy in percent."""
    if metric == "train_loss":
        return curve_band([(c["step"], ema(c["train_loss"], smoothing) if smoothing > 0 else c["train_loss"])
                           for c in seeds])
    return curve_band([(c["val_step"], [100 * a for a in c["val_acc"]]) for c in seeds])


def plain_vs_residual_training_figure(curves: "dict[str, dict]", metric: str = "train_loss",
                                      smoothing: float = 0.6, revision: str = "pvr-training",
                                      max_points: int = MAX_POINTS_DRAWN,
                                      recorded: "dict[str, list[dict]] | None" = None,
                                      warmup_step: int = 0, too_early: bool = False,
                                      note: str = "") -> go.Figure:
    """Overlaid curves of the side-by-side runs (analysis.SideBySide.curves(), or analysis.twins.curve_of).

    Colour tells plain (orange) from residual (blue); the deeper net of each kind is drawn solid and
    thick, the shallower dashed, as in He et al. 2015's Figure 6. `recorded`: per net, the curves of a
    recorded run's seeds, drawn as the mean with its min-max band (faint and dotted behind live curves, with
    one legend entry for them), so a live run is seen inside its band or outside it. `warmup_step`: the
    learning-rate warm-up is shaded up to it,
    and labelled "too early to read" while `too_early`. `note`: a line in the middle of the plot (e.g. when the
    live curves are still empty, what will appear and when).
    """
    if metric not in ("train_loss", "val_acc"):
        raise ValueError(f"metric: {metric!r} must be 'train_loss' or 'val_acc'")
    names = list(curves) + [n for n in (recorded or {}) if n not in curves]
    depths = sorted({int(name.rsplit("-", 1)[1].split()[0]) for name in names}) if names else []
    deep = lambda name: int(name.rsplit("-", 1)[1].split()[0]) == depths[-1] and len(depths) > 1
    fig = go.Figure()
    for name, seeds in (recorded or {}).items():
        band = _curve_band(seeds, metric, smoothing)
        if band is None:
            continue
        xs, mean, low, high = thin(band.step, band.mean, band.low, band.high, max_points=max_points)
        # Behind live curves one legend entry (below) stands for the recorded bands, whose colours and dashes
        # match the live nets': eight entries would wrap over the axis title in a half-width chart.
        # The legend stays short (a half-width chart on a projector cuts longer entries); the line is the seeds'
        # mean and the band their min-max, as the panel's caption says.
        for trace in band_traces(xs, mean, low, high, f"{name} (recorded)",
                                 _pvr_color(name), opacity=0.12 if curves else 0.22, dash="dot" if curves else
                                 ("solid" if deep(name) else "dash"), width=(3 if deep(name) else 1.8),
                                 legendgroup="recorded", showlegend=not curves, mean_opacity=0.6 if curves else 1.0):
            fig.add_trace(trace)
    for name, c in curves.items():
        if metric == "train_loss":
            xs, ys = c["step"], ema(c["train_loss"], smoothing) if smoothing > 0 else c["train_loss"]
            xs, ys = thin(list(xs), list(ys), max_points=max_points)
        else:
            xs, ys = c["val_step"], [100 * a for a in c["val_acc"]]
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines" if metric == "train_loss" else "lines+markers", name=f"{name} ({c['status']})",
            line=dict(color=_pvr_color(name), width=3 if deep(name) else 1.8,
                      dash="solid" if deep(name) else "dash")))
    if recorded and curves:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="recorded seeds (dotted mean, band min–max)",
                                 opacity=0.6, legendgroup="recorded",
                                 line=dict(color=COLORS["neutral"], dash="dot", width=2)))
    if warmup_step > 0:
        fig.add_vrect(x0=0, x1=warmup_step, fillcolor=COLORS["neutral"], opacity=0.12 if too_early else 0.06,
                      line_width=0, annotation_text="warm-up: too early to read" if too_early else "warm-up",
                      annotation_position="top left")
    if note:
        fig.add_annotation(text="<br>".join(textwrap.wrap(note, 48)), xref="paper", yref="paper", x=0.5, y=0.5,
                           showarrow=False,
                           font=dict(color=COLORS["neutral"], size=13))
    fig.update_xaxes(title="training step")
    if metric == "train_loss":
        fig.update_yaxes(title="training loss (EMA)")
        title = "Training loss: plain vs residual"
    else:
        fig.update_yaxes(title="validation accuracy (%)", range=[0, 100])
        title = "Validation accuracy: plain vs residual"
    # Anchored at its top, the legend grows downwards (and widens the margin) when it wraps, instead of up over
    # the axis title.
    fig.update_layout(height=430, legend=dict(orientation="h", yanchor="top", y=-0.3))
    base_layout(fig, title, f"{revision}-{metric}")
    fig.update_layout(margin=dict(b=135))  # room for two rows of legend under the axis title
    return fig
