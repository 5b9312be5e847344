"""Each block's output-gradient norm during training: BlockGradRecorder (hooks) and the file a worker writes.

The Plain vs Residual page draws these norms as heatmaps while its twins train in worker processes: the
worker appends complete rows to `block_grads.jsonl` in its run folder and the page reads them back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import json_limits
from .config import TrainConfigError
from .safe_read import MAX_BLOCK_GRADS_BYTES, read_text

BLOCK_GRADS_FILE = "block_grads.jsonl"


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
        if not isinstance(model, nn.Module) or not hasattr(model, "named_blocks"):
            raise TrainConfigError(f"block gradients need a ResNet built by resnet_core (with named_blocks()), got "
                                   f"{type(model).__name__}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise TrainConfigError(f"record every {every!r} steps: must be a whole number >= 1")
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


class BlockGradWriter:
    """Appends a recorder's new complete rows to `<run folder>/block_grads.jsonl`: a first line with the block
    paths, then one line per recorded step. Call `write_new()` now and then from the process that trains."""

    def __init__(self, recorder: BlockGradRecorder, run_dir: Path):
        self.recorder = recorder
        self.path = Path(run_dir) / BLOCK_GRADS_FILE
        self._written: set[int] = set()
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(json.dumps({"blocks": list(recorder.block_paths)}) + "\n")

    def write_new(self) -> None:
        _, steps, matrix = self.recorder.snapshot()
        lines = [json.dumps({"step": step, "norms": [row[j] for row in matrix]})
                 for j, step in enumerate(steps) if step not in self._written]
        if lines:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            self._written.update(steps)


def read_block_grads(run_dir: str | Path) -> tuple[tuple[str, ...], list[int], list[list[float]]]:
    """(block paths, recorded steps, matrix[block][step]) from a run folder, as BlockGradRecorder.snapshot()
    gives them; empty when the run records none (yet). A cut-off last line is skipped."""
    path = Path(run_dir) / BLOCK_GRADS_FILE
    try:  # a run-folder file: regular, inside the folder, bounded (safe_read)
        lines = read_text(path, MAX_BLOCK_GRADS_BYTES, folder=path.parent, errors="replace").splitlines()
    except OSError:
        return (), [], []
    blocks: tuple[str, ...] = ()
    steps: list[int] = []
    columns: list[list[float]] = []
    for line in lines:
        try:
            row = json_limits.loads(line)
        except ValueError:  # not JSON, or nested too deeply
            continue
        if not isinstance(row, dict):
            continue
        if isinstance(row.get("blocks"), list):
            blocks = tuple(str(b) for b in row["blocks"])
        elif (isinstance(row.get("step"), int) and isinstance(row.get("norms"), list)
              and len(row["norms"]) == len(blocks) and all(isinstance(v, (int, float)) for v in row["norms"])):
            steps.append(row["step"])
            columns.append([float(v) for v in row["norms"]])
    return blocks, steps, [[col[i] for col in columns] for i in range(len(blocks))]
