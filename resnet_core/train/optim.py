"""The optimizer a TrainConfig names, and the one gradient norm every step logs."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .config import TrainConfig


def global_grad_norm(params: list[nn.Parameter]) -> Tensor:
    """L2 norm of all gradients together, as one tensor (no per-parameter host sync)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def make_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD (with the config's momentum and Nesterov choice), Adam or AdamW, with its weight decay."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=config.nesterov,
                               weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)
