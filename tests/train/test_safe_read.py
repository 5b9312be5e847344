"""Run-folder files are read only when they are regular files of bounded size inside their folder (issue 19):
config.json as a link to /dev/zero once grew the server to 5 GB, a FIFO there hung every page, a metrics.jsonl
to /dev/zero gave a MemoryError box. Each is now marked damaged (or left out) at once, in bounded memory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from resnet_core.assets import PROVENANCE_FILE, provenance
from resnet_core.status import Status
from resnet_core.train import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RunError,
    RunFollower,
    StepEvent,
    load_metrics,
    load_run_model,
    read_run,
)
from resnet_core.train.block_grads import BLOCK_GRADS_FILE, read_block_grads
from resnet_core.train.follow import MAX_LINE_BYTES
from resnet_core.train.safe_read import MAX_CONFIG_BYTES, UnsafeFileError, read_bytes, read_from
from tests.memory import run_measured
from tests.train.test_faults import STEP, finished_run

# What a hostile file may add to a process that lists or follows runs (its imports measured alone, below).
EXTRA_MB = 64


@pytest.fixture(scope="module")
def baseline_mb() -> float:
    return run_measured("import resnet_core.train, resnet_core.assets")[0]


def _fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _link(path: Path, target: str | Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to(target)


# ---- the reader itself ------------------------------------------------------------------------------------------


def test_only_regular_files_inside_the_folder_are_read(tmp_path):
    (tmp_path / "ok.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    _link(tmp_path / "inside", tmp_path / "ok.json")
    _link(tmp_path / "zero", "/dev/zero")
    _link(tmp_path / "out", tmp_path.parent)
    _fifo(tmp_path / "fifo")
    assert read_bytes(tmp_path / "ok.json", 10) == b"{}"
    assert read_bytes(tmp_path / "inside", 10) == b"{}"  # a link that stays in its folder is followed
    cases = {"zero": "is a symbolic link leading out of its run folder", "out": "leading out of its run folder",
             "fifo": "is a FIFO, not a regular file", "sub": "is a folder, not a regular file"}
    for name, words in cases.items():
        start = time.perf_counter()
        with pytest.raises(UnsafeFileError, match=words):
            read_bytes(tmp_path / name, 10)
        assert time.perf_counter() - start < 1.0
    assert read_bytes(tmp_path / "ok.json", 2) == b"{}"
    with pytest.raises(UnsafeFileError, match="ok.json is larger than 1 bytes"):
        read_bytes(tmp_path / "ok.json", 1)
    with pytest.raises(FileNotFoundError):
        read_bytes(tmp_path / "missing", 10)


def test_a_file_larger_than_its_cap_is_refused_and_a_follower_reads_it_in_bounded_chunks(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 1000)
    with pytest.raises(UnsafeFileError, match="big is larger than 999 bytes; it was not read"):
        read_bytes(tmp_path / "big", 999)
    assert read_from(tmp_path / "big", 990, 100) == b"x" * 10 and len(read_from(tmp_path / "big", 0, 64)) == 64


def test_a_device_reached_through_an_inside_link_is_still_refused(tmp_path):
    os.symlink("/dev/zero", tmp_path / "devz")
    _link(tmp_path / "config", tmp_path / "devz")  # a chain: the last hop leads out
    with pytest.raises(UnsafeFileError):
        read_bytes(tmp_path / "config", 100, folder=tmp_path)


# ---- every reader of a run folder ---------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", ["dev-zero", "fifo", "link-out", "too-large", "nested"])
def test_a_hostile_config_json_marks_the_run_damaged_at_once(tmp_path, hostile):
    path = finished_run(tmp_path, "hostile")
    config = path / CONFIG_FILE
    secret = tmp_path / "secret.json"
    secret.write_text(config.read_text())
    if hostile == "dev-zero":
        _link(config, "/dev/zero")
    elif hostile == "fifo":
        _fifo(config)
    elif hostile == "link-out":
        _link(config, secret)  # a valid config, but outside the folder: not read
    elif hostile == "too-large":
        config.write_text('{"pad": "' + "x" * MAX_CONFIG_BYTES + '"}')
    else:
        config.write_text('{"model": ' + "[" * 200 + "]" * 200 + "}")
    start = time.perf_counter()
    info = read_run(path)
    assert time.perf_counter() - start < 2.0
    reason = {"dev-zero": "config.json is a symbolic link leading out of its run folder; it was not read",
              "fifo": "config.json is a FIFO, not a regular file; it was not read",
              "link-out": "config.json is a symbolic link leading out of its run folder; it was not read",
              "too-large": "config.json is larger than 16 MB; it was not read",
              "nested": "config.json is not read: it is nested too deeply (more than 32 levels)"}[hostile]
    assert info.status is Status.DAMAGED and info.reason == reason


def test_listing_and_following_hostile_run_folders_is_bounded_in_memory_and_time(tmp_path, baseline_mb):
    """The issue's figures: config.json -> /dev/zero took a server from 71 MB to 5.1 GB in 10 s; a FIFO hung
    it; metrics.jsonl -> /dev/zero gave a MemoryError. Here all of them in one folder of runs, listed, loaded
    and followed by a fresh process within a time limit, adding at most EXTRA_MB to its imports."""
    zero = finished_run(tmp_path, "zero")
    _link(zero / CONFIG_FILE, "/dev/zero")
    fifo = finished_run(tmp_path, "fifo")
    _fifo(fifo / CONFIG_FILE)
    metrics_zero = finished_run(tmp_path, "metrics-zero")
    _link(metrics_zero / METRICS_FILE, "/dev/zero")
    metrics_fifo = finished_run(tmp_path, "metrics-fifo")
    _fifo(metrics_fifo / METRICS_FILE)
    long_line = finished_run(tmp_path, "long-line")  # a regular 40 MB line with no end: no event, dropped
    events = len(load_metrics(long_line))
    with open(long_line / METRICS_FILE, "ab") as f:
        f.write(b"7" * (40 * 1024**2))
    code = f"""
import sys
from pathlib import Path
from resnet_core.train import list_runs, load_metrics, RunFollower, RunError
root = Path({str(tmp_path)!r})
print(sorted((r.name, r.status.value) for r in list_runs(root)))
for name in ("metrics-zero", "metrics-fifo"):
    try:
        load_metrics(root / name)
    except RunError as exc:
        print("refused:", exc)
for name in ("zero", "fifo", "metrics-zero", "metrics-fifo", "long-line"):
    follower = RunFollower(root / name)
    for _ in range(12):
        snap = follower.poll()
    print(name, snap.status.value, len(snap.events), len(follower._partial))
"""
    peak, out = run_measured(code, timeout=60)
    lines = out.splitlines()
    assert lines[0] == ("[('fifo', 'damaged'), ('long-line', 'finished'), ('metrics-fifo', 'damaged'), "
                        "('metrics-zero', 'damaged'), ('zero', 'damaged')]")
    assert lines[1] == ("refused: metrics-zero: metrics.jsonl is a symbolic link leading out of its run folder; "
                        "it was not read")
    assert lines[2] == "refused: metrics-fifo: metrics.jsonl is a FIFO, not a regular file; it was not read"
    followed = {line.split()[0]: line.split()[1:] for line in lines[3:]}
    assert followed["zero"][0] == "damaged" and followed["fifo"][0] == "damaged"
    assert followed["metrics-zero"][1] == "0" and followed["metrics-fifo"][1] == "0"  # nothing read, no hang
    # Its real events; of the endless line at most MAX_LINE_BYTES is held at any time.
    assert followed["long-line"][:2] == ["finished", str(events)] and int(followed["long-line"][2]) <= MAX_LINE_BYTES
    assert peak - baseline_mb < EXTRA_MB, (peak, baseline_mb)


@pytest.mark.parametrize("hostile", ["dev-zero", "fifo", "link-out"])
def test_a_hostile_model_pt_is_a_run_error_not_a_read(tmp_path, hostile):
    path = finished_run(tmp_path, "m")
    model = path / MODEL_FILE
    outside = tmp_path / "outside.pt"
    outside.write_bytes(model.read_bytes())
    {"dev-zero": lambda: _link(model, "/dev/zero"), "fifo": lambda: _fifo(model),
     "link-out": lambda: _link(model, outside)}[hostile]()
    start = time.perf_counter()
    with pytest.raises(RunError, match="model.pt"):
        load_run_model(path)
    assert time.perf_counter() - start < 2.0


def test_block_gradients_and_provenance_from_a_fifo_or_dev_zero_read_as_absent(tmp_path):
    path = finished_run(tmp_path, "b")
    _fifo(path / BLOCK_GRADS_FILE)
    assert read_block_grads(path) == ((), [], [])
    _link(path / BLOCK_GRADS_FILE, "/dev/zero")
    assert read_block_grads(path) == ((), [], [])
    _fifo(path / PROVENANCE_FILE)
    assert provenance(path) is None
    _link(path / PROVENANCE_FILE, "/dev/zero")
    assert provenance(path) is None


def test_deeply_nested_metrics_lines_are_skipped_like_damaged_ones(tmp_path):
    path = finished_run(tmp_path, "deep")
    step2 = json.dumps({"type": "step", "step": 2, "epoch": 1, "train_loss": 1.0, "lr": 0.1, "samples_per_s": 1.0,
                        "grad_norm": 1.0, "time": 0.2})
    with open(path / METRICS_FILE, "a") as f:
        f.write("[" * 100_000 + "]" * 100_000 + "\n" + step2 + "\n")
    assert [e.step for e in load_metrics(path, skip_damaged=True) if isinstance(e, StepEvent)] == [STEP.step, 2]
    with pytest.raises(RunError, match="is not valid JSON"):
        load_metrics(path)
    follower = RunFollower(path)
    assert [e.step for e in follower.poll().events if isinstance(e, StepEvent)] == [STEP.step, 2]


def test_a_metrics_file_that_is_no_regular_file_is_named_as_such_not_as_missing(tmp_path):
    fifo, gone = finished_run(tmp_path, "fifo"), finished_run(tmp_path, "gone")
    _fifo(fifo / METRICS_FILE)
    (gone / METRICS_FILE).unlink()
    assert read_run(fifo).reason == "metrics.jsonl is a FIFO, not a regular file; it was not read"
    assert read_run(gone).reason == "metrics.jsonl is missing"
