"""The Grad-CAM page's views: the model to explain, the images and their overview, one image in detail, the plain
and residual pair, and the trust checks (pages/4_Grad-CAM.py composes them)."""
