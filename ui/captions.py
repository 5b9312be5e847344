"""What the Plain vs Residual charts say: what to look at, what this chart measured, what the literature found.

Every caption is three parts: LOOK (what the chart draws and what to look at), the reading computed from the
numbers the chart shows (resnet_core.analysis.readings: "13× at depth 20; 5,090× at 56", or that the expected
trend is absent), then FOUND (what the literature found). `caption(key, reading)` joins them; the trend is
never claimed here, only read off the numbers.
"""

from __future__ import annotations

LOOK: dict[str, str] = {
    "profile": (
        "Each line is the gradient norm of one convolution's weights, input on the left and output on the right, "
        "with a band over the seeds: look at how much larger each net's gradient is at the input than at the "
        "output."
    ),
    "blocks": (
        "The gradient norm at each block's output, input to output: look at how steeply each net's curve rises "
        "towards the input, block by block."
    ),
    "sweep": (
        "The ratio of the stem convolution's gradient norm to the last convolution's at initialization, against "
        "depth on a log axis: look at how each net's ratio changes as the nets get deeper."
    ),
    "sweep_no_bn": (
        "The same sweep without normalization: look at whether the plain net's climb with depth is still there "
        "when BatchNorm is taken out."
    ),
    "training": (
        "Training loss and validation accuracy of plain and residual nets at two depths, trained with the same "
        "data and recipe: look at the order of the curves once the warm-up is over, deep against shallow for each "
        "kind, and at whether the bands of the seeds overlap."
    ),
    "heatmap": (
        "Each row is a block (input at the top), each column a recorded training step, and the colour the log10 "
        "gradient norm at that block's output: look at how far apart the colours of each net's rows are, at the "
        "first columns and the last."
    ),
    "lesion": (
        "Validation accuracy after deleting one block at test time, with the intact network as a dashed line: "
        "look at how far each net's bars fall below its intact accuracy."
    ),
    "shattering": (
        "Correlation between input-gradients at neighbouring points on a line between two images, against depth: "
        "look at how each net's correlation changes with depth, towards 0 (white noise) or not."
    ),
    "zero_init": (
        "With zero_init_residual every block's last BatchNorm starts with gamma = 0, so each residual branch starts "
        "as the zero function: look for the branch convolutions missing from the log-scale profile, because at "
        "step 0 their gradient is exactly zero and only the gammas, the stem, the projections and the fc move on "
        "the first step."
    ),
}

FOUND: dict[str, str] = {
    "profile": (
        "With BatchNorm the plain net's gradients do not vanish — at initialization they explode towards the input "
        "as depth grows (Yang et al. 2019) — and He et al. 2015 found plain nets with BN keep healthy gradient "
        "norms yet train worse as they get deeper."
    ),
    "blocks": (
        "Veit et al. 2016 describe a residual net as an ensemble of paths of many lengths, in which most of the "
        "gradient flows through the short paths."
    ),
    "sweep": (
        "Yang et al. 2019 proved that batch-normalized plain nets' gradients explode with depth at initialization, "
        "and He et al. 2015 had observed that deeper plain nets with BN train worse (degradation) even though "
        "their gradients do not vanish."
    ),
    "sweep_no_bn": (
        "Yang et al. 2019 showed that batch normalization itself causes the gradient explosion of deep plain nets "
        "at initialization, and Zhang et al. 2019 (Fixup) trained deep residual nets without any normalization by "
        "rescaling their initialization."
    ),
    "training": (
        "He et al. 2015 (Figure 6) found plain-56 has higher training error than plain-20 — degradation is an "
        "optimization difficulty, not overfitting — and residual nets reverse that ordering."
    ),
    "heatmap": (
        "Yang et al. 2019 predict an explosion towards the input for batch-normalized plain nets at "
        "initialization; the later columns show how training reshapes it."
    ),
    "lesion": (
        "Veit et al. 2016 found that removing a single block from a trained residual net hardly changes its error "
        "while a plain VGG-style net breaks down, and read residual nets as ensembles of many paths."
    ),
    "shattering": (
        "Balduzzi et al. 2017 named this the shattered gradients problem: in deep plain nets the gradients "
        "decorrelate exponentially with depth and look like white noise, while residual nets keep them "
        "correlated (brown noise)."
    ),
    "zero_init": (
        "Goyal et al. 2017 use this initialization so that the network starts out behaving like a shallower one, "
        "which helps large-batch training."
    ),
}

# The two fixed sentences of each caption, without a reading (what a chart says before it has numbers).
CAPTIONS: dict[str, str] = {key: f"{LOOK[key]} {FOUND[key]}" for key in LOOK}


def caption(key: str, reading: str = "") -> str:
    """What to look at, what this chart measured (`reading`, from resnet_core.analysis.readings), the literature."""
    return " ".join(part for part in (LOOK[key], reading, FOUND[key]) if part)


# Page words of the degradation demo's panel (ui/plain_vs_residual/degradation.py).
RECORDED_MISSING = (
    "The recorded run of this demo is not in this checkout (assets/recorded/degradation; "
    "`python -m resnet_core.assets --only degradation` makes it). Press **Run it live** to train the four nets here."
)
RECORDED_STALE = (
    "The recorded run was made with another recipe than this demo's now: it is shown, but it is not what **Run it "
    "live** trains."
)
RECORDED_OTHER_RECIPE = (
    "No recorded curves behind these: this run's settings differ from the recorded run's recipe, so the two would "
    "not compare step for step."
)
FINAL_LOSS_MEANS = "Final training loss: the mean over the last epoch's steps (the charts draw its EMA, smoothing 0.6)."
DEEP_PLAIN_SLOW = (
    "{name} is still near chance: the deep plain net training slowest is the degradation this demo shows, not a "
    "fault of the run."
)
LESION_TOO_EARLY = ("The networks are still training; the lesion study of this pair unlocks when they finish or are "
                    "stopped.")
