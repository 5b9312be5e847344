"""The recorded loss landscape of the degradation demo's 56-layer pair (assets/recorded/landscape/): read and built.

The page opens on it at once: plain-56 and ResNet-56 trained with the degradation demo's recipe (seed 0), their
1-D slices and 2-D surfaces (analysis.landscape.RECORDED_SPEC) in `landscape.json`, and `provenance.json` (command,
recipe, seed, where the weights came from, device, date, torch, seconds, and each net's figures). No weights are
kept here: the degradation recording keeps the pair's seed-0 weights when it has them, and they are used then;
otherwise the pair is trained here first. `python -m resnet_core.assets --only landscape` rebuilds it.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .analysis.common import config_label
from .analysis.landscape import (
    RECORDED_SPEC,
    Landscape,
    LandscapeError,
    LandscapeSpec,
    held_out,
    landscape,
    load_landscapes,
    save_landscapes,
)
from .analysis.landscape_reading import figures, landscape_reading, summary_line
from .assets import (
    ASSETS_DIR,
    COMMAND,
    PROVENANCE_FILE,
    RECORDED_DEGRADATION,
    Provenance,
    _degradation_configs,
    _device_text,
    _slug,
    _train,
    provenance,
)
from .recipes import CHECK_SEED, DEGRADATION_DATA, DEGRADATION_TRAIN
from .train.launch import TrainRequest
from .train.run_reading import load_run_model
from .train.runs import CONFIG_FILE, MODEL_FILE

RECORDED_LANDSCAPE = "recorded/landscape"
LANDSCAPE_FILE = "landscape.json"
LANDSCAPE_DEPTH = 56
LANDSCAPE_SEED = 0  # the training seed of the recorded pair
DATA_KEYS = ("kind", "n_train", "n_val", "seed", "image_size")  # what a run folder records of its Shapes data


def recorded_landscape(assets_dir: Path = ASSETS_DIR) -> tuple[list[Landscape], Provenance] | None:
    """The recorded 56-layer landscapes (plain first) and their provenance; None when missing or damaged."""
    folder = assets_dir / RECORDED_LANDSCAPE
    prov = provenance(folder)
    if prov is None:
        return None
    try:
        return load_landscapes(folder / LANDSCAPE_FILE), prov
    except LandscapeError:
        return None


def matches_recipe(prov: Provenance) -> bool:
    """Whether the recorded pair was trained with the degradation demo's recipe as it is now (data, training,
    the two nets): a recording made with an earlier recipe is still shown, and said to be older."""
    requests = _pair_requests()
    data = requests[0].data.to_dict()
    recorded = prov.recipe.get("dataset") or {}
    return (prov.recipe.get("train") == requests[0].train.to_dict()
            and all(recorded.get(k) == data[k] for k in DATA_KEYS)
            and prov.recipe.get("models") == [r.model.to_dict() for r in requests])


def _pair_requests() -> list[TrainRequest]:
    """The degradation demo's plain-56 and ResNet-56 runs with the recorded seed (plain first)."""
    configs = [cfg for cfg in _degradation_configs().values() if cfg.depth == LANDSCAPE_DEPTH]
    configs.sort(key=lambda cfg: cfg.residual)
    train = DEGRADATION_TRAIN.replace(seed=LANDSCAPE_SEED)
    return [TrainRequest(cfg, DEGRADATION_DATA, train, _slug(config_label(cfg))) for cfg in configs]


def _recorded_weights(assets_dir: Path, requests: list[TrainRequest]) -> list[Path] | None:
    """The degradation recording's seed-0 folders holding these nets' weights, if it kept them."""
    root = assets_dir / RECORDED_DEGRADATION
    folders = [root / r.name / f"seed{LANDSCAPE_SEED}" for r in requests]
    return folders if all((f / MODEL_FILE).is_file() for f in folders) else None


def build_landscape(assets_dir: Path = ASSETS_DIR, spec: LandscapeSpec = RECORDED_SPEC,
                    runs_dir: Path | None = None) -> list[Landscape]:
    """Compute and record the 56-layer pair's landscapes from, in this order: the pair's run folders in `runs_dir`
    (named as _pair_requests names them) if both hold weights; the degradation recording's seed-0 weights; else a
    pair trained here with the demo's recipe (kept in `runs_dir` when given). The provenance's recipe is read from
    the weights' own run folders, so it says how they were trained even when the demo's recipe has moved on."""
    requests = _pair_requests()
    dest = assets_dir / RECORDED_LANDSCAPE
    with tempfile.TemporaryDirectory() as tmp:
        work = runs_dir or Path(tmp)
        folders = [work / r.name for r in requests]
        train_seconds = None
        if all((f / MODEL_FILE).is_file() for f in folders):
            train_seconds = _trained_seconds(folders)
            source = (f"trained by {COMMAND} --only landscape's two workers at once (kept in its runs folder), "
                      f"{train_seconds:.0f} s")
        elif (recorded := _recorded_weights(assets_dir, requests)) is not None:
            folders = recorded
            source = f"the degradation recording's seed-{LANDSCAPE_SEED} weights (float16), {RECORDED_DEGRADATION}"
        else:
            train_seconds = _train(requests, work)
            source = f"trained here by {COMMAND} --only landscape ({train_seconds:.0f} s, both at once)"
        trained = [json.loads((f / CONFIG_FILE).read_text(encoding="utf-8")) for f in folders]
        results, start = [], time.perf_counter()
        for folder in folders:
            model, _, pre = load_run_model(folder)
            images, labels = held_out(spec.n_images, pre, CHECK_SEED)
            results.append(landscape(model.float(), images, labels, spec, _print_progress))
            print(summary_line(results[-1]), flush=True)
        seconds = time.perf_counter() - start
    dest.mkdir(parents=True, exist_ok=True)
    save_landscapes(results, dest / LANDSCAPE_FILE)
    data_spec = {k: v for k, v in trained[0]["dataset"].items() if k in DATA_KEYS}
    recipe: dict[str, Any] = {"train": trained[0]["train"], "dataset": data_spec,
                              "models": [t["model"] for t in trained], "seed": trained[0]["train"]["seed"],
                              "weights": source, "landscape": spec.to_dict(),
                              "held_out": f"{spec.n_images} Shapes images of seed {CHECK_SEED} (recipes.CHECK_SEED)",
                              "train_seconds": train_seconds, "threads": torch.get_num_threads()}
    data = {"command": f"{COMMAND} --only landscape", "device": _device_text(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(seconds, 1), "torch": torch.__version__,
            "results": {r.label: _figures(r) for r in results}, "recipe": recipe}
    (dest / PROVENANCE_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(landscape_reading(results))
    print(f"landscape: {seconds:.0f} s for both nets, written to {dest}")
    return results


def _trained_seconds(folders: list[Path]) -> float:
    """Wall time of runs trained together: from the first one's start to the last one's end (their config.json)."""
    from datetime import datetime

    stamps = [json.loads((f / CONFIG_FILE).read_text(encoding="utf-8")) for f in folders]
    start = min(datetime.fromisoformat(s["created"]) for s in stamps)
    return (max(datetime.fromisoformat(s["finished"]) for s in stamps) - start).total_seconds()


def _print_progress(done: int, total: int, message: str, _partial: object) -> None:
    print(f"{done}/{total} {message}", flush=True)


def _figures(result: Landscape) -> dict[str, float]:
    """The provenance's per-net numbers (the caption reads the surfaces themselves; these are for people)."""
    f = figures(result)
    out = {"held_out_loss": round(f.center_loss, 4), "held_out_acc": round(f.center_acc, 4),
           "convex_share": round(f.convex_share, 4), "curvature_ratio": round(f.ratio, 4),
           "seconds": round(result.seconds, 1)}
    if f.radius is not None and math.isfinite(f.radius):
        out["doubling_radius"] = round(f.radius, 4)
    return out
