"""ResNet Explorer's engine: models, summaries, data, training, gradients, attributions.

No Streamlit here: everything is usable from Python and the command line.
"""

from .config import ConfigError, ResNetConfig, get_preset, list_presets
from .model import ResNet, build_model, count_parameters
from .summary import ModelSummary, summarize

__all__ = [
    "ConfigError", "ResNetConfig", "get_preset", "list_presets",
    "ResNet", "build_model", "count_parameters", "ModelSummary", "summarize",
]
