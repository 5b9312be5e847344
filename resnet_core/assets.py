"""The bundled demo assets under assets/: two trained Shapes models and the degradation demo's recorded run.

They let every page open on a working example with an empty runs folder, and a lecture show the degradation
result at once (recorded) while the same training runs live beside it. Each folder is a run folder as the
trainer writes it (config.json, metrics.jsonl, and model.pt for the models), plus `provenance.json`: the
command, recipe, seed, device, date, time taken and accuracy. `python -m resnet_core.assets` rebuilds them
all, through the same worker command the app's queue runs (`python -m resnet_core.train ...`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import json_limits
from .analysis.common import config_label
from .analysis.recorded import RecordedRun, finals_of, summary_of
from .analysis.twins import SideBySide, curve_of
from .model.config import ResNetConfig
from .model.summary import UNIT_SPACE
from .recipes import DEGRADATION_DATA, DEGRADATION_DEPTHS, DEGRADATION_TRAIN, demo_request
from .status import Status
from .train.block_grads import BLOCK_GRADS_FILE
from .train.events import EpochEvent, Event, StatusEvent
from .train.launch import TrainRequest, worker_command
from .train.run_reading import RunInfo, load_metrics, read_run
from .train.runs import CONFIG_FILE, METRICS_FILE, MODEL_FILE
from .train.safe_read import MAX_SMALL_JSON_BYTES, read_bytes
from .train.schedule import RunPlan
from .train.snapshot import TrainerSnapshot

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
MODELS = "models"  # assets/models/<name>/: trained Shapes models, as run folders
RECORDED_DEGRADATION = "recorded/degradation"  # assets/recorded/degradation/<net>/: metrics only
# The same recipe trained LONG_EPOCHS epochs instead of the lecture's 4: where the deep plain net does learn
# (measured: at 4 epochs plain-56 stays near chance in every seed, at 40 it reaches 59-90% in LONG_SEEDS.)
RECORDED_DEGRADATION_LONG = "recorded/degradation_long"
LONG_EPOCHS = 40
LONG_SEEDS = (0, 1, 2)
_SEEDS = " ".join(map(str, LONG_SEEDS))
LONG_COMMAND = (f"python3 benchmarks/bench_degradation_robustness.py --seeds {_SEEDS} --threads 1 --set "
                f"epochs={LONG_EPOCHS} --keep DIR && python -m resnet_core.assets --long --trained --seeds {_SEEDS} "
                "--runs-dir DIR")
# Significant digits a recording keeps of each float in its metrics (a batch's loss is noisier than that): the
# long recording's 3,720 steps per run would otherwise weigh ~0.7 MB a run.
KEPT_DIGITS = 6
PROVENANCE_FILE = "provenance.json"
DEMO_TIMES_FILE = "recorded/demo_times.json"  # what each lecture demo took when the assets were built
MODEL_NAMES = {True: "shapes-resnet20", False: "shapes-plain20"}  # residual? -> folder
COMMAND = "python -m resnet_core.assets"
DEGRADATION_RECORD_EVERY = 5  # the page's default "record gradients every k steps"
DEGRADATION_SEEDS = (0, 1, 2)  # the recording holds every seed: the page draws a band over them
SEED_PREFIX = "seed"  # assets/recorded/degradation/<net>/seed<k>/
# The 56-layer pair's seed-0 weights are kept (float16, about 1.7 MB each) for the loss-landscape view.
DEGRADATION_WEIGHTS = ("plain56", "resnet56")


@dataclass(frozen=True)
class Provenance:
    """Where a bundled asset came from: enough to rebuild it and to judge it."""

    command: str
    device: str
    date: str
    seconds: float  # wall time of the training (all nets together for the degradation run)
    torch: str
    results: dict[str, dict[str, float]]  # per net: val_acc, train_loss (the last epoch's)
    recipe: dict[str, Any]

    @property
    def day(self) -> str:
        return self.date[:10]

    def summary(self) -> str:
        """ "recorded on 2026-12-01 on cpu (2 cores), 47 s, `python -m resnet_core.assets`" """
        return f"recorded on {self.day} on {self.device}, {format_recorded(self.seconds)}, rebuilt by `{self.command}`"


def _read_provenance(folder: Path) -> Provenance | None:
    try:
        # Read like any run-folder file: a regular file of bounded size and depth (a FIFO there must not hang Home).
        data = json_limits.loads(read_bytes(folder / PROVENANCE_FILE, MAX_SMALL_JSON_BYTES, folder=folder))
        return Provenance(command=str(data["command"]), device=str(data["device"]), date=str(data["date"]),
                          seconds=float(data["seconds"]), torch=str(data["torch"]),
                          results={str(k): {str(m): float(v) for m, v in r.items()}
                                   for k, r in data["results"].items()},
                          recipe=dict(data["recipe"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def provenance(folder: str | Path) -> Provenance | None:
    """The provenance of a bundled folder (a model, or the recorded degradation run), None if unreadable."""
    return _read_provenance(Path(folder))


# ---- reading -------------------------------------------------------------------------------------------


def bundled_model(residual: bool, assets_dir: Path = ASSETS_DIR) -> RunInfo | None:
    """The bundled Shapes ResNet-20 (or its plain twin) as a finished run, None if it is missing or damaged."""
    folder = assets_dir / MODELS / MODEL_NAMES[residual]
    if not folder.is_dir():
        return None
    info = read_run(folder)
    return info if info.openable else None


def is_bundled(path: str | Path, assets_dir: Path = ASSETS_DIR) -> bool:
    """Whether a run folder is one of the bundled assets (pages say "recorded" for those)."""
    try:
        return Path(path).resolve().is_relative_to(assets_dir.resolve())
    except OSError:
        return False


def degradation_labels() -> list[str]:
    """The degradation demo's nets in SideBySide's order: plain-20, ResNet-20, plain-56, ResNet-56."""
    return list(_degradation_configs())


def _degradation_configs() -> dict[str, ResNetConfig]:
    """Label -> config of the demo's nets, as the page's SideBySide builds them."""
    return SideBySide(DEGRADATION_DATA, DEGRADATION_TRAIN, depths=DEGRADATION_DEPTHS).configs


def degradation_root(assets_dir: Path = ASSETS_DIR, long: bool = False) -> Path:
    """The folder of the degradation demo's recording (`long`: of the LONG_EPOCHS one), where its provenance is."""
    return assets_dir / (RECORDED_DEGRADATION_LONG if long else RECORDED_DEGRADATION)


def recorded_degradation(assets_dir: Path = ASSETS_DIR, long: bool = False) -> dict[str, list[Path]]:
    """Net label -> its recorded seeds' run folders (<net>/seed<k>/: metrics.jsonl, block gradients), in seed order;
    {} if any net lacks a seed with metrics (every net must have the same seeds). `long`: the LONG_EPOCHS
    recording instead of the lecture's."""
    root = degradation_root(assets_dir, long)
    folders = {}
    for label in degradation_labels():
        net = root / _slug(label)
        seeds = sorted((p for p in net.glob(f"{SEED_PREFIX}*") if (p / METRICS_FILE).is_file()),
                       key=lambda p: int(p.name[len(SEED_PREFIX):]) if p.name[len(SEED_PREFIX):].isdigit() else -1)
        folders[label] = seeds
    counts = {tuple(p.name for p in seeds) for seeds in folders.values()}
    return folders if len(counts) == 1 and all(folders.values()) else {}


def recorded_run(assets_dir: Path = ASSETS_DIR, long: bool = False, made: Any = None) -> RecordedRun | None:
    """The degradation demo's recording (`long`: the LONG_EPOCHS one) read as the page reads it: every seed's run,
    with its provenance (or `made`, a provenance not yet written); None when the checkout lacks it."""
    folders = recorded_degradation(assets_dir, long=long)
    if not folders:
        return None
    snaps = {label: [recorded_snapshot(path) for path in paths] for label, paths in folders.items()}
    return RecordedRun.of(folders, snaps, made if made is not None else provenance(degradation_root(assets_dir, long)))


def recorded_snapshot(folder: Path) -> TrainerSnapshot:
    """A recorded run's events as a finished snapshot (the folder has no weights, so it is not a usable run)."""
    events: list[Event] = load_metrics(folder, skip_damaged=True)
    statuses = [e for e in events if isinstance(e, StatusEvent)]
    last = statuses[-1] if statuses else None
    total = next((e.total_steps for e in statuses if e.total_steps), 0) or 0
    step = max((getattr(e, "step", 0) for e in events), default=0)
    status = last.status if last is not None else Status.FINISHED
    return TrainerSnapshot(events, status, last.message if last else "", step, total, 1.0, 0.0)


def _slug(label: str) -> str:
    return label.lower().replace(" ", "").replace("-", "")


# ---- building --------------------------------------------------------------------------------------------


def _device_text() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"


def _train(requests: list[TrainRequest], runs_dir: Path, threads: int | None = None) -> float:
    """Train the requests at once in worker processes (as the app's queue does, with `threads` torch threads each
    when given); their wall time."""
    spool = runs_dir / ".spool"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    start = time.perf_counter()
    procs = [subprocess.Popen(worker_command(r, runs_dir, spool), env=env) for r in requests]
    for p in procs:
        p.wait()  # a run that "did not learn" exits non-zero: each run's status is checked from its folder
    return time.perf_counter() - start


def _results(run_dir: Path) -> dict[str, float]:
    info = read_run(run_dir)
    epochs = [e for e in load_metrics(run_dir) if isinstance(e, EpochEvent)]
    if info.status is not Status.FINISHED or not epochs or info.val_acc is None:  # a model to show must have learnt
        raise RuntimeError(f"{run_dir.name} ended {info.status}: {info.reason}")
    return {"val_acc": round(info.val_acc, 4), "train_loss": round(epochs[-1].train_loss, 4)}


def _copy_run(src: Path, dest: Path, with_model: bool, compact: bool = False) -> None:
    """A run folder's files into `dest` (its weights only `with_model`); `compact`: its metrics with KEPT_DIGITS
    significant digits per float and no spaces, the numbers every reader of the copy then shares."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    names = [CONFIG_FILE, METRICS_FILE, BLOCK_GRADS_FILE] + ([MODEL_FILE] if with_model else [])
    for name in names:
        if (src / name).is_file():
            shutil.copy2(src / name, dest / name)
    if compact and (dest / METRICS_FILE).is_file():
        lines = (dest / METRICS_FILE).read_text(encoding="utf-8").splitlines()
        rounded = lambda v: float(f"{v:.{KEPT_DIGITS}g}") if isinstance(v, float) and math.isfinite(v) else v
        out = [json.dumps({k: rounded(v) for k, v in json.loads(line).items()}, separators=(",", ":"))
               for line in lines if line.strip()]
        (dest / METRICS_FILE).write_text("\n".join(out) + "\n", encoding="utf-8")
    if not with_model:  # a folder without weights must not claim them
        config = json.loads((dest / CONFIG_FILE).read_text(encoding="utf-8"))
        config.pop("checkpoint", None)
        (dest / CONFIG_FILE).write_text(json.dumps(config, indent=1), encoding="utf-8")


def _write_provenance(folder: Path, seconds: float, results: dict[str, dict[str, float]],
                      recipe: dict[str, Any], command: str = COMMAND) -> None:
    import torch

    data = {"command": command, "device": _device_text(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seconds": round(seconds, 1), "torch": torch.__version__, "results": results, "recipe": recipe}
    (folder / PROVENANCE_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _recipe(request: TrainRequest) -> dict[str, Any]:
    return {"model": request.model.to_dict(), "train": request.train.to_dict(), "dataset": request.data.to_dict(),
            "record_block_grads": request.record_block_grads}


def build_models(assets_dir: Path = ASSETS_DIR, which: tuple[bool, ...] = (True, False)) -> None:
    """Train the Shapes ResNet-20 and plain-20 (the Grad-CAM demo's recipe; `which`: residual or not), one after
    the other, each timed alone."""
    with tempfile.TemporaryDirectory() as tmp:
        for residual in which:
            name = MODEL_NAMES[residual]
            request = demo_request(residual, name)
            seconds = _train([request], Path(tmp))
            dest = assets_dir / MODELS / name
            _copy_run(Path(tmp) / name, dest, with_model=True)
            _write_provenance(dest, seconds, {config_label(request.model): _results(dest)}, _recipe(request))
            print(f"{name}: {seconds:.0f} s, {_results(dest)}")


def degradation_requests(seed: int, threads: int = 1, epochs: int | None = None) -> list[TrainRequest]:
    """The degradation demo's four runs with `seed`, as the page's SideBySide submits them (named
    <net>-s<seed>-t<threads>, as benchmarks/bench_degradation_robustness.py names its runs); `epochs`: the same
    recipe trained that long."""
    train = DEGRADATION_TRAIN.replace(seed=seed, **({} if epochs is None else {"epochs": epochs}))
    return [TrainRequest(cfg, DEGRADATION_DATA, train,
                         f"{_slug(label)}-s{seed}-t{threads}",
                         record_block_grads=DEGRADATION_RECORD_EVERY) for label, cfg in _degradation_configs().items()]


def build_degradation(assets_dir: Path = ASSETS_DIR, seeds: tuple[int, ...] = DEGRADATION_SEEDS,
                      runs_dir: Path | None = None, trained: bool = False, long: bool = False) -> None:
    """Train the degradation demo's four nets at once for each seed, as the page's demo does (the queue gives
    each worker cores // 4 threads), and keep their metrics, block gradients and the 56-layer pair's seed-0
    weights in float16. `runs_dir`: keep the run folders there too; with `trained`, train nothing and bundle the
    finished runs of this recipe found there instead (benchmarks/bench_degradation_robustness.py --keep
    --record-block-grads 5 leaves them, its 1-thread runs: <net>-s<seed>-t1). `long`: the LONG_EPOCHS recording
    (bench_degradation_robustness.py --set epochs=40 --keep DIR, then --long --trained --runs-dir DIR)."""
    root = degradation_root(assets_dir, long)
    epochs, command = (LONG_EPOCHS, LONG_COMMAND) if long else (None, COMMAND)
    threads = 1 if trained else max(1, (os.cpu_count() or 1) // len(DEGRADATION_DEPTHS * 2))
    if trained and runs_dir is None:
        raise ValueError("bundling trained runs needs the folder that holds them (runs_dir)")
    with tempfile.TemporaryDirectory() as tmp:
        work = runs_dir or Path(tmp)
        times = []
        for seed in seeds:
            requests = degradation_requests(seed, threads, epochs)
            if trained:
                _check_recipe(work, requests)
                # Trained side by side elsewhere: the four-net time is the slowest net's own run time.
                times.append(max(_run_seconds(work / r.name) for r in requests))
            else:
                times.append(_train(requests, work, threads))
            for request in requests:
                net = request.name.split("-s")[0]
                dest = root / net / f"{SEED_PREFIX}{seed}"
                _copy_run(work / request.name, dest, with_model=False, compact=long)
                if seed == seeds[0] and net in DEGRADATION_WEIGHTS and not long:
                    _half_weights(work / request.name / MODEL_FILE, dest / MODEL_FILE)
                _check_ended(dest)
                curve = curve_of(recorded_snapshot(dest))
                plan = RunPlan.of(request.train, request.data.n_train)
                result = summary_of(*finals_of([curve], plan.steps_per_epoch))
                kept = {k: round(v, 4) for k, v in result.items() if not k.endswith(("_min", "_max"))}
                _write_provenance(dest, times[-1], {config_label(request.model): kept},
                                  {"threads_per_worker": threads, **_recipe(request)}, command)
            print(f"degradation seed {seed}: {times[-1]:.0f} s", flush=True)
    for net_dir in root.iterdir() if root.is_dir() else ():
        for stale in net_dir.glob(f"{SEED_PREFIX}*") if net_dir.is_dir() else ():
            if int(stale.name[len(SEED_PREFIX):] or -1) not in seeds:
                shutil.rmtree(stale)
        for name in (CONFIG_FILE, METRICS_FILE, BLOCK_GRADS_FILE):  # the one-seed layout's files
            if net_dir.is_dir() and (net_dir / name).is_file():
                (net_dir / name).unlink()
    results = _degradation_results(assets_dir, long)
    recipe = {"depths": list(DEGRADATION_DEPTHS), "seeds": list(seeds), "threads_per_worker": threads,
              **_recipe(degradation_requests(seeds[0], epochs=epochs)[0])}
    # The time a lecture waits: one seed's four nets trained at once (the mean over the seeds).
    _write_provenance(root, sum(times) / len(times), results, recipe, command)
    print(f"degradation: {[round(t) for t in times]} s per seed, {results}")


def _check_recipe(work: Path, requests: list[TrainRequest]) -> None:
    """Every request's run folder in `work` holds a finished run of exactly its recipe, or RuntimeError."""
    for r in requests:
        config = read_run(work / r.name)
        try:
            saved = json.loads((work / r.name / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        data = saved.get("dataset") if isinstance(saved.get("dataset"), dict) else {}
        if (_cpu_fp32(saved.get("train")) != _cpu_fp32(r.train.to_dict()) or saved.get("model") != r.model.to_dict()
                or any(data.get(k) != getattr(r.data, k) for k in ("kind", "n_train", "n_val", "seed", "image_size"))):
            raise RuntimeError(f"{work / r.name} is not a run of the demo's recipe (or is missing)")
        if config.status not in (Status.FINISHED, Status.DID_NOT_LEARN):
            raise RuntimeError(f"{work / r.name} ended {config.status}: {config.reason}")


def _cpu_fp32(train: object) -> object:
    """A train config with bf16/channels_last null read as false: on a CPU without native bf16 an automatic
    setting ran as fp32 in the default layout until the trainer began timing layouts (train.precision), so a run
    that forced them off trained exactly as the automatic ones did."""
    if not isinstance(train, dict):
        return train
    return {**train, **{k: bool(train.get(k)) for k in ("bf16", "channels_last")}}


def _run_seconds(folder: Path) -> float:
    """A run's own duration: the time of its last event (seconds since it started)."""
    return max((float(getattr(e, "time", 0.0) or 0.0) for e in load_metrics(folder, skip_damaged=True)), default=0.0)


def _half_weights(src: Path, dest: Path) -> None:
    """A checkpoint with its floating-point tensors in float16 (load_run_model loads it into a float32 model)."""
    import torch

    payload = torch.load(src, map_location="cpu", weights_only=True)
    payload["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    torch.save(payload, dest)


def _degradation_results(assets_dir: Path, long: bool) -> dict[str, dict[str, float]]:
    """Per net: mean, min and max over the seeds of the final training loss and validation accuracy, computed as
    the page computes them (analysis.recorded), so provenance.json and the page's cards agree."""
    run = recorded_run(assets_dir, long,
                       _Recipe(_recipe(degradation_requests(0, epochs=LONG_EPOCHS if long else None)[0])))
    return {label: {k: round(v, 4) for k, v in summary_of(*f).items()} for label, f in run.finals().items()}


@dataclass(frozen=True)
class _Recipe:  # what RecordedRun.of reads of a provenance, before the provenance is written
    recipe: dict[str, Any]
    seconds: float = 0.0

    def summary(self) -> str:
        return ""


def _check_ended(folder: Path) -> None:
    snap = recorded_snapshot(folder)
    # "did not learn" is a result here: a deep plain net near chance would be the degradation the demo shows.
    if snap.status not in (Status.FINISHED, Status.DID_NOT_LEARN) or not snap.validated_epochs:
        raise RuntimeError(f"{folder} ended {snap.status}: {snap.message}")


def format_recorded(seconds: float) -> str:
    """A recorded time as Home and the README quote it: "2.3 s", "188 s"."""
    return f"{seconds:.1f}{UNIT_SPACE}s" if seconds < 10 else f"{seconds:.0f}{UNIT_SPACE}s"


def demo_times(assets_dir: Path = ASSETS_DIR) -> dict[str, Any]:
    """The lecture demos' times measured when the assets were built (Home and the README quote these):
    {"device", "date", "degradation", "normalization", "gradcam", "gradcam_model"} (seconds); {} if missing."""
    try:
        data = json_limits.loads(read_bytes(assets_dir / DEMO_TIMES_FILE, MAX_SMALL_JSON_BYTES, folder=assets_dir))
    except (OSError, ValueError):
        return {}
    keys = ("degradation", "normalization", "gradcam", "gradcam_model")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), (int, float)) for k in keys):
        return {}
    return data


def record_demo_times(assets_dir: Path = ASSETS_DIR) -> dict[str, Any]:
    """Time the two quick demos here (the depth sweep; Grad-CAM localization with the bundled model) and store
    them with the trainings' times from the provenance files, in one file."""
    from .analysis import SWEEP_DEPTHS, depth_sweep
    from .data import Preprocess, make_shapes, prepare_uint8
    from .explain import localization_scores
    from .recipes import CHECK_SEED, LOCALIZATION_IMAGES, SWEEP_BATCH
    from .train.run_reading import load_run_model

    start = time.perf_counter()
    depth_sweep(SWEEP_DEPTHS, ("batch", "none"), (0,), SWEEP_BATCH, 32)
    normalization = time.perf_counter() - start
    model_dir = assets_dir / MODELS / MODEL_NAMES[True]
    model, _, pre = load_run_model(model_dir)
    check = make_shapes(LOCALIZATION_IMAGES, seed=CHECK_SEED, size=int(pre["image_size"]))
    x = prepare_uint8(check.images, Preprocess(mean=tuple(pre["mean"]), std=tuple(pre["std"]),
                                               image_size=int(pre["image_size"])))
    start = time.perf_counter()
    localization_scores(model, x, check.masks, ["gradcam", "guided_gradcam"], targets=check.labels.tolist())
    gradcam = time.perf_counter() - start
    degradation, trained = provenance(assets_dir / RECORDED_DEGRADATION), provenance(model_dir)
    if degradation is None or trained is None:
        raise RuntimeError("build the models and the degradation run first")
    data = {"device": _device_text(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "degradation": degradation.seconds, "normalization": round(normalization, 1),
            "gradcam": round(gradcam, 1), "gradcam_model": trained.seconds}
    (assets_dir / DEMO_TIMES_FILE).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"demo times: {data}")
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__)
    parser.add_argument("--only", choices=("models", "degradation", "landscape", "times"),
                        help="rebuild only these assets")
    parser.add_argument("--out", type=Path, default=ASSETS_DIR, help="the assets folder (default: the repo's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEGRADATION_SEEDS),
                        help="the degradation recording's seeds")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the degradation run folders here")
    parser.add_argument("--long", action="store_true",
                        help=f"the degradation recording of {LONG_EPOCHS} epochs (assets/{RECORDED_DEGRADATION_LONG})")
    parser.add_argument("--trained", action="store_true",
                        help="bundle the finished degradation runs in --runs-dir instead of training them")
    args = parser.parse_args(argv)
    if args.long:  # the long recording alone: the lecture's assets and their times stay as they are
        build_degradation(args.out, tuple(args.seeds), args.runs_dir, args.trained, long=True)
        return 0
    if args.only in (None, "models"):
        build_models(args.out)
    if args.only in (None, "degradation"):
        build_degradation(args.out, tuple(args.seeds), args.runs_dir, args.trained)
    if args.only in (None, "landscape"):  # after the degradation run, whose seed-0 56-layer weights it reads
        from .landscape_assets import build_landscape

        build_landscape(args.out)
    if args.only != "landscape":
        record_demo_times(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
