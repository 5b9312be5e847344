"""ResNet Explorer's engine: models, summaries, data, training, gradients, attributions.

No Streamlit here: everything is usable from Python and the command line.
"""

import os

# OpenMP threads that spin while waiting starve everything else on a small CPU (the Streamlit
# server, the browser, a second training thread): a ResNet-20 step measured 17x slower with
# spinning on a loaded 2-core machine. Must be set before torch is first imported; users may override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .config import ConfigError, ResNetConfig, get_preset, list_presets  # noqa: E402
from .model import ResNet, build_model, count_parameters  # noqa: E402
from .summary import ModelSummary, summarize  # noqa: E402

__all__ = [
    "ConfigError", "ResNetConfig", "get_preset", "list_presets",
    "ResNet", "build_model", "count_parameters", "ModelSummary", "summarize",
]
