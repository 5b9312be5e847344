"""Plotly figure builders: pure functions from numbers to figures (no Streamlit, no I/O)."""

from .architecture import MAX_BLOCKS_DRAWN_PER_STAGE, SHORTCUT_LABEL, architecture_figure, stage_table
from .explain import localization_figure, probability_figure, randomization_figure
from .gradients import (
    autocorrelation_figure,
    depth_sweep_figure,
    grad_heatmap_figure,
    gradient_profile_figure,
    lesion_figure,
    plain_vs_residual_training_figure,
    shattering_figure,
)
from .style import COLORS, base_layout, scale_fonts
from .training import (
    LIVE_POINTS_DRAWN,
    MAX_POINTS_DRAWN,
    OVERLAY_METRICS,
    TRAIN_COLORS,
    ema,
    epoch_metrics_figure,
    lr_figure,
    runs_overlay_figure,
    thin,
    throughput_figure,
    training_loss_figure,
)
from .trust import deletion_insertion_figure, layer_maps_figure, layer_scores_figure, trust_figure

__all__ = [
    "COLORS",
    "LIVE_POINTS_DRAWN",
    "MAX_BLOCKS_DRAWN_PER_STAGE",
    "MAX_POINTS_DRAWN",
    "OVERLAY_METRICS",
    "SHORTCUT_LABEL",
    "TRAIN_COLORS",
    "architecture_figure",
    "autocorrelation_figure",
    "base_layout",
    "deletion_insertion_figure",
    "depth_sweep_figure",
    "ema",
    "epoch_metrics_figure",
    "grad_heatmap_figure",
    "gradient_profile_figure",
    "layer_maps_figure",
    "layer_scores_figure",
    "lesion_figure",
    "localization_figure",
    "lr_figure",
    "plain_vs_residual_training_figure",
    "probability_figure",
    "randomization_figure",
    "runs_overlay_figure",
    "scale_fonts",
    "shattering_figure",
    "stage_table",
    "thin",
    "throughput_figure",
    "training_loss_figure",
    "trust_figure",
]
