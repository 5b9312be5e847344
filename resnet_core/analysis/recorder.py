"""BlockGradRecorder: each block's output-gradient norm during training, through hooks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .common import GradientError, check_model


class BlockGradRecorder:
    """Records each block's output-gradient norm every `every` training steps, through hooks.

    Attach it to a model before training; it needs nothing from the trainer. A forward pre-hook on
    the model counts training forward passes (train mode with grad enabled: the trainer's steps;
    validation runs in eval mode without grad and is not counted), and on step 1 and every
    `every`-th step the blocks' outputs get tensor hooks that store their gradient's norm during
    backward. The norm stays a device tensor until `snapshot()` (no host sync in the loop). Cost:
    one norm per block on recorded steps only. This assumes one forward per optimizer step, as
    `resnet_core.train.Trainer` does.
    """

    def __init__(self, model: nn.Module, every: int = 10):
        check_model(model)
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise GradientError(f"record every {every!r} steps: must be a whole number >= 1")
        self.every = every
        self.block_paths = tuple(path for path, _ in model.named_blocks())
        self._model = model
        self._lock = threading.Lock()
        self._count = 0
        self._armed = False
        self._rows: dict[int, list[Tensor | None]] = {}
        self._handles = [model.register_forward_pre_hook(self._on_model_forward)]
        self._handles += [block.register_forward_hook(self._block_hook(i)) for i, (_, block)
                          in enumerate(model.named_blocks())]

    def _on_model_forward(self, module: nn.Module, _inputs: Any) -> None:
        if module.training and torch.is_grad_enabled():
            self._count += 1
            self._armed = self._count == 1 or self._count % self.every == 0
        else:
            self._armed = False

    def _block_hook(self, index: int) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            if not self._armed or not output.requires_grad:
                return
            step = self._count
            with self._lock:
                row = self._rows.setdefault(step, [None] * len(self.block_paths))

            def store(grad: Tensor) -> None:
                norm = grad.detach().float().norm()
                with self._lock:  # backward may run on an autograd device thread
                    row[index] = norm

            output.register_hook(store)
        return hook

    def remove(self) -> None:
        """Detach every hook (the model then trains as if never recorded)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def snapshot(self) -> tuple[tuple[str, ...], list[int], list[list[float]]]:
        """(block paths, recorded steps, matrix[block][step]) of complete rows only."""
        with self._lock:
            items = sorted(self._rows.items())
        steps, columns = [], []
        for step, row in items:
            if all(v is not None for v in row):
                steps.append(step)
                columns.append(torch.stack(row).cpu().tolist())  # type: ignore[arg-type]
        matrix = [[col[i] for col in columns] for i in range(len(self.block_paths))]
        return self.block_paths, steps, matrix
