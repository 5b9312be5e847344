"""What a loss landscape shows, read off its numbers: loss-doubling radius, local convexity, a caption.

* **Loss-doubling radius**: on a 1-D slice, the distance from the slice's lowest point to where the loss first
  reaches twice that lowest loss (linear between grid points), the mean of the two sides; None when a side
  never doubles inside the slice. A wider radius is a flatter valley.
* **Local convexity** of the 2-D surface: at every interior grid point the 2x2 Hessian of the surface from
  central finite differences; the point is convex when its smaller eigenvalue is at least -1% of the larger
  one's size. Li et al. map |λmin/λmax| of the full Hessian; the surface's own curvature is the Hessian
  restricted to the plotted plane, so it can only show non-convexity that lies in that plane.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .landscape import Landscape

CONVEX_TOLERANCE = 0.01  # a point is convex when λmin >= -1% of |λmax| (finite differences are not exact)
DOUBLING = 2.0
NEAR_CHANCE = 0.1  # a net within 10 points of chance accuracy has barely learned


def doubling_radius(alphas: Sequence[float], losses: Sequence[float]) -> float | None:
    """Mean over both sides of the distance from the slice's lowest point to where its loss first reaches twice
    that lowest loss (linear between points); None when either side stays below it to the slice's edge."""
    values = [v for v in losses if not math.isnan(v)]
    if len(values) != len(losses) or len(losses) < 3:
        return None
    m = min(range(len(losses)), key=lambda i: losses[i])
    target = DOUBLING * losses[m]
    sides = []
    for step in (1, -1):
        i, found = m, None
        while 0 <= i + step < len(losses):
            nxt = i + step
            if losses[nxt] >= target:
                lo, hi = losses[i], losses[nxt]
                frac = 1.0 if math.isinf(hi) else (target - lo) / (hi - lo)
                found = abs(alphas[i] + frac * (alphas[nxt] - alphas[i]) - alphas[m])
                break
            i = nxt
        if found is None:
            return None
        sides.append(found)
    return statistics.fmean(sides)


@dataclass(frozen=True)
class Curvature:
    """The 2-D surface's curvature at its interior points: the eigenvalues of its finite-difference Hessian."""

    lam_min: tuple[tuple[float, ...], ...]  # rows are β, like the surface; NaN where undefined
    lam_max: tuple[tuple[float, ...], ...]

    def _points(self) -> list[tuple[float, float]]:
        return [(lo, hi) for r_lo, r_hi in zip(self.lam_min, self.lam_max) for lo, hi in zip(r_lo, r_hi)
                if math.isfinite(lo) and math.isfinite(hi)]

    @property
    def convex_share(self) -> float:
        """The share of interior points where the surface curves upwards in both principal directions."""
        points = self._points()
        if not points:
            return math.nan
        return sum(lo >= -CONVEX_TOLERANCE * max(abs(lo), abs(hi)) for lo, hi in points) / len(points)

    @property
    def ratio(self) -> float:
        """Mean of |λmin/λmax| over the points where λmin < 0 counted as non-convex, 0 elsewhere (Li et al.'s map
        of the ratio, on the plotted plane): 0 is convex everywhere, 1 a saddle as curved down as up."""
        points = self._points()
        if not points:
            return math.nan
        return statistics.fmean(max(0.0, -lo) / max(abs(lo), abs(hi)) if max(abs(lo), abs(hi)) > 0 else 0.0
                                for lo, hi in points)


def surface_curvature(alphas: Sequence[float], surface: Sequence[Sequence[float]]) -> Curvature:
    """Eigenvalues of the 2x2 Hessian of the surface from central differences at each interior grid point."""
    n = len(alphas)
    h = (alphas[-1] - alphas[0]) / (n - 1)
    lo = [[math.nan] * n for _ in range(n)]
    hi = [[math.nan] * n for _ in range(n)]
    f = surface
    for j in range(1, n - 1):
        for i in range(1, n - 1):
            fxx = (f[j][i + 1] - 2 * f[j][i] + f[j][i - 1]) / h**2
            fyy = (f[j + 1][i] - 2 * f[j][i] + f[j - 1][i]) / h**2
            fxy = (f[j + 1][i + 1] - f[j + 1][i - 1] - f[j - 1][i + 1] + f[j - 1][i - 1]) / (4 * h**2)
            if not all(math.isfinite(v) for v in (fxx, fyy, fxy)):
                continue
            mean, diff = (fxx + fyy) / 2, math.hypot((fxx - fyy) / 2, fxy)
            lo[j][i], hi[j][i] = mean - diff, mean + diff
    return Curvature(tuple(map(tuple, lo)), tuple(map(tuple, hi)))


@dataclass(frozen=True)
class LandscapeFigures:
    """The numbers a caption quotes, for one net."""

    label: str
    center_loss: float
    center_acc: float
    radii: tuple[float | None, ...]
    convex_share: float
    ratio: float

    @property
    def radius(self) -> float | None:
        """The mean loss-doubling radius over the slices, None if any slice never doubles."""
        return None if not self.radii or any(r is None for r in self.radii) else statistics.fmean(self.radii)

    def radius_range(self) -> tuple[float, float] | None:
        known = [r for r in self.radii if r is not None]
        return (min(known), max(known)) if known and len(known) == len(self.radii) else None


def figures(result: Landscape) -> LandscapeFigures:
    """The caption's numbers for one net: the doubling radius of each 1-D slice, the surface's convexity."""
    curvature = surface_curvature(result.alphas_2d, result.surface)
    radii = tuple(doubling_radius(result.alphas_1d, line) for line in result.lines)
    return LandscapeFigures(result.label, result.center_loss, result.center_acc, radii, curvature.convex_share,
                            curvature.ratio)


def landscape_reading(results: Sequence[Landscape]) -> str:
    """What the slices and surfaces show, from their numbers: each net's loss-doubling radius (with its range
    over the directions) and its convex share; which is wider only when the ranges do not overlap."""
    done = [r for r in results if r.complete]
    if not done:
        return ""
    figs = [figures(r) for r in done]
    span = done[0].spec.span

    def radius_text(f: LandscapeFigures) -> str:
        rng = f.radius_range()
        if rng is None:
            return f"beyond ±{span:g} on some slice"
        low, high = rng
        spread = f" (from {low:.2f} to {high:.2f} over {len(f.radii)} directions)" if len(f.radii) > 1 else ""
        return f"{f.radius:.2f}{spread}"

    parts = [f"{f.label} (held-out loss {f.center_loss:.3f} at the trained weights): the loss doubles at a distance "
             f"of {radius_text(f)}, and {100 * f.convex_share:.0f}% of its surface is locally convex "
             f"(mean |λmin/λmax| {f.ratio:.2f})" for f in figs]
    text = "Measured here: " + "; ".join(parts) + "."
    untrained = [r for r in done if r.classes and r.center_acc < 1 / r.classes + NEAR_CHANCE]
    for r in untrained:
        text += (f" {r.label} is near chance at its trained weights ({100 * r.center_acc:.0f}% correct against "
                 f"{100 / r.classes:.0f}% by guessing, loss {r.center_loss:.2f} against ln {r.classes} = "
                 f"{math.log(r.classes):.2f}): its landscape is that of a net that has barely learned, not of a "
                 "trained minimum like Li et al.'s.")
    plain = [f for f in figs if f.label.startswith("plain")]
    residual = [f for f in figs if not f.label.startswith("plain")]
    if untrained and len(done) > 1:
        # A radius measured from a loss near ln(classes) and one from a trained minimum are not the same kind of
        # number: no ranking of the two landscapes.
        text += " So the two landscapes are not compared here as Li et al. compare their trained pair."
    elif len(plain) == 1 and len(residual) == 1:
        text += " " + _comparison(plain[0], residual[0])
    return text


def _comparison(plain: LandscapeFigures, res: LandscapeFigures) -> str:
    p, r = plain.radius_range(), res.radius_range()
    if p is None or r is None:
        width = "The radii cannot be compared: a slice never doubles its loss within the plotted range."
    elif r[0] > p[1]:
        width = f"{res.label}'s valley is wider than {plain.label}'s on every direction drawn, as in Li et al."
    elif p[0] > r[1]:
        width = (f"Unlike Li et al.'s CIFAR-10 nets, {plain.label}'s valley is wider than {res.label}'s on every "
                 "direction drawn here.")
    else:
        width = ("The two radii overlap over the directions drawn, so this slice does not tell the nets' widths "
                 "apart (in Li et al.'s Figure 1 the net without skip connections has the narrower, chaotic basin).")
    gap = res.convex_share - plain.convex_share
    if abs(gap) < 0.1:
        convex = "Their convex shares are within 10 points of each other on this one plane."
    elif gap > 0:
        convex = f"{res.label}'s surface is convex over {100 * gap:.0f} points more of the plane, as in Li et al."
    else:
        convex = (f"{plain.label}'s surface is convex over {100 * -gap:.0f} points more of the plane: not the "
                  "paper's picture.")
    return f"{width} {convex}"


def summary_line(result: Landscape) -> str:
    f = figures(result)
    radii = ", ".join("never" if r is None else f"{r:.3f}" for r in f.radii)
    return (f"{f.label:>10}: loss {f.center_loss:.4f} acc {100 * f.center_acc:.1f}%  doubling radius {radii}  "
            f"convex {100 * f.convex_share:.1f}%  |λmin/λmax| {f.ratio:.3f}  {result.seconds:.1f} s")
