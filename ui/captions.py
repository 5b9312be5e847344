"""What the Plain vs Residual charts say: what to look for, then what the literature found."""

from __future__ import annotations

# Each caption: what to look for, then what the literature found.
CAPTIONS: dict[str, str] = {
    "profile": (
        "Each line is the gradient norm of one convolution's weights, input on the left and output on the right, "
        "with a band over the seeds: look for the plain net's gradients growing by orders of magnitude towards the "
        "input while the residual net's stay within about one. "
        "With BatchNorm the plain net's gradients do not vanish — at initialization they explode towards the input "
        "as depth grows (Yang et al. 2019) — and He et al. 2015 found plain nets with BN keep healthy gradient "
        "norms yet train worse as they get deeper."
    ),
    "blocks": (
        "The gradient norm at each block's output, input to output: look for the residual net's curve rising only "
        "gently towards the input (every shortcut passes the output's gradient back unchanged) while the plain "
        "net's rises by a roughly constant factor per block. "
        "Veit et al. 2016 describe a residual net as an ensemble of paths of many lengths, in which most of the "
        "gradient flows through the short paths."
    ),
    "sweep": (
        "The ratio of the stem convolution's gradient norm to the last convolution's at initialization, against "
        "depth on a log axis: look for the plain net's ratio climbing by orders of magnitude while the residual "
        "net's grows slowly. "
        "Yang et al. 2019 proved that batch-normalized plain nets' gradients explode with depth at initialization, "
        "and He et al. 2015 had observed that deeper plain nets with BN train worse (degradation) even though "
        "their gradients do not vanish."
    ),
    "sweep_no_bn": (
        "The same sweep without normalization: look for the plain net's exponential climb disappearing — without "
        "BatchNorm neither ratio trends exponentially with depth (both stayed between about 0.05 and 15 in our "
        "runs), so the explosion in the chart above comes from BatchNorm in a plain stack, not from depth alone. "
        "Yang et al. 2019 showed that batch normalization itself causes the gradient explosion of deep plain nets "
        "at initialization, and Zhang et al. 2019 (Fixup) trained deep residual nets without any normalization by "
        "rescaling their initialization."
    ),
    "training": (
        "Training loss and validation accuracy of plain and residual nets at two depths, trained with the same "
        "data, seed and recipe: look for the deeper plain net's loss staying above the shallower plain net's while "
        "the deeper residual net does at least as well as the shallower one. "
        "He et al. 2015 (Figure 6) found plain-56 has higher training error than plain-20 — degradation is an "
        "optimization difficulty, not overfitting — and residual nets reverse that ordering."
    ),
    "heatmap": (
        "Each row is a block (input at the top), each column a recorded training step, and the colour the log10 "
        "gradient norm at that block's output: look for the plain net's rows spreading over orders of magnitude "
        "and the residual net's staying close together. "
        "Yang et al. 2019 predict this explosion towards the input for batch-normalized plain nets at "
        "initialization; the later columns show how training reshapes it."
    ),
    "lesion": (
        "Validation accuracy after deleting one block at test time, with the intact network as a dashed line: "
        "look for the residual net barely moving for most blocks while the plain net drops towards chance. "
        "Veit et al. 2016 found that removing a single block from a trained residual net hardly changes its error "
        "while a plain VGG-style net breaks down, and read residual nets as ensembles of many paths."
    ),
    "shattering": (
        "Correlation between input-gradients at neighbouring points on a line between two images, against depth: "
        "look for the plain net's correlation falling towards 0 (white noise) while the residual net's stays well "
        "above it. "
        "Balduzzi et al. 2017 named this the shattered gradients problem: in deep plain nets the gradients "
        "decorrelate exponentially with depth and look like white noise, while residual nets keep them "
        "correlated (brown noise)."
    ),
    "zero_init": (
        "With zero_init_residual every block's last BatchNorm starts with gamma = 0, so each residual branch starts "
        "as the zero function: look for the branch convolutions missing from the log-scale profile, because at "
        "step 0 their gradient is exactly zero and only the gammas, the stem, the projections and the fc move on "
        "the first step. "
        "Goyal et al. 2017 use this initialization so that the network starts out behaving like a shallower one, "
        "which helps large-batch training."
    ),
}
