"""The one recipe, from the page and from the command line: same configuration, same seed, same accuracy.

    python3 benchmarks/bench_recipe.py        # about 3 min on 2 cores

Prints the validation accuracy and wall time of
  * the Train page's default run, trained in this process the way the page does (recipes.SHAPES_DATA with
    recipes.SHAPES_TRAIN, the model built from the seed, a Trainer writing its run folder);
  * `python -m resnet_core.train --preset resnet20 --dataset shapes` (no other flags) in a subprocess;
  * the README's line, `... --epochs 3` (target: at least 80% validation accuracy).
The first two must agree: the command line's defaults are the page's (tests/train/test_cli.py checks the
configurations; this checks the outcome).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_core.data import load_dataset  # noqa: E402
from resnet_core.model import build_seeded, get_preset  # noqa: E402
from resnet_core.recipes import DEFAULT_PRESET, SHAPES_DATA, SHAPES_TRAIN  # noqa: E402
from resnet_core.train import create_trainer  # noqa: E402


def page_default_run(runs_dir: Path) -> tuple[float, float]:
    start = time.perf_counter()
    data = load_dataset(SHAPES_DATA)
    model = build_seeded(get_preset(DEFAULT_PRESET), SHAPES_TRAIN.seed, data.num_classes)
    trainer = create_trainer(model, data, SHAPES_TRAIN, runs_dir=runs_dir, name="page-default")
    trainer.start()
    trainer.join()
    acc = trainer.snapshot().validated_epochs[-1].val_acc
    return acc, time.perf_counter() - start


def cli_run(runs_dir: Path, *flags: str) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "resnet_core.train", "--preset", "resnet20", "--dataset", "shapes",
                           *flags, "--runs-dir", str(runs_dir), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    found = re.search(r"final validation accuracy: ([\d.]+)%", done.stdout)
    if done.returncode or not found:
        raise SystemExit(f"the command line failed:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1)) / 100, time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        page_acc, page_s = page_default_run(runs)
        print(f"Train page default run (in process):  validation accuracy {100 * page_acc:.2f}%  in {page_s:.0f} s",
              flush=True)
        cli_acc, cli_s = cli_run(runs)
        print(f"command line, no flags (subprocess):  validation accuracy {100 * cli_acc:.2f}%  in {cli_s:.0f} s",
              flush=True)
        readme_acc, readme_s = cli_run(runs, "--epochs", "3")
        print(f"README line (--epochs 3):             validation accuracy {100 * readme_acc:.2f}%  in {readme_s:.0f} s"
              f"  (target >= 80%: {'met' if readme_acc >= 0.8 else 'NOT met'})", flush=True)
        same = abs(page_acc - cli_acc) < 1e-9
        print(f"page and command line agree: {'yes' if same else 'NO'} ({100 * page_acc:.2f}% vs {100 * cli_acc:.2f}%)")


if __name__ == "__main__":
    main()
