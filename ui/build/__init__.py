"""The Build page's views: the configuration fields and the model they make (pages/1_Build.py composes them)."""
