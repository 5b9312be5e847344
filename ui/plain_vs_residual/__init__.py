"""The Plain vs Residual page's views: its options and demos, the gradient profile, the depth sweep, the
side-by-side training, the degradation demo's panel, the lesion study, the shattered gradients and the loss
landscape (pages/3_Plain_vs_Residual.py composes them)."""
