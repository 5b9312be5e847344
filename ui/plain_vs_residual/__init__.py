"""The Plain vs Residual page's views: its options and demos, the gradient profile, the depth sweep, the
side-by-side training and the shattered gradients (pages/3_Plain_vs_Residual.py composes them; the degradation
panel, the lesion study and the loss landscape are in ui/degradation.py, ui/lesion.py and ui/landscape.py)."""
