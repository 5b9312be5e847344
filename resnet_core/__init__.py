"""ResNet Explorer's engine: models, data, training, analyses, explanations; no Streamlit anywhere.

Packages (imports flow one way, model <- data <- train <- analysis / explain):
    model     config + presets, blocks, the ResNet, summaries, checkpoints, export
    data      Shapes, CIFAR, folders and zips, image decoding, the one transforms module
    train     TrainConfig, schedules, the Trainer and its events, run folders, pretrained weights, the CLI
    analysis  gradient profiles, depth sweep, recorder, twin training, lesions, shattering
    explain   captum methods, maps, trust checks, what is explained
    charts    plotly figure builders
and the modules recipes (the one recipe), estimates (time estimates), jobs (background work),
share (link parsing), status (the one status type), validation (the one way to check values), device.
"""

import os

# OpenMP threads that spin while waiting starve everything else on a small CPU (the Streamlit
# server, the browser, a second training thread): a ResNet-20 step measured 17x slower with
# spinning on a loaded 2-core machine. Must be set before torch is first imported; users may override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .model import (  # noqa: E402  # noqa: E402
    ConfigError,
    ModelSummary,
    ResNet,
    ResNetConfig,
    build_model,
    count_parameters,
    get_preset,
    list_presets,
    summarize,
)

__all__ = [
    "ConfigError", "ResNetConfig", "get_preset", "list_presets",
    "ResNet", "build_model", "count_parameters", "ModelSummary", "summarize",
]
