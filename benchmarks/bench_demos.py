"""The lecture demos: the time each one says it takes on this device, against the time it takes.

    python3 benchmarks/bench_demos.py                 # normalization demo + the Shapes recipe (about 3 min on 2 cores)
    python3 benchmarks/bench_demos.py --degradation   # also the four-network degradation demo (about 4 more)
    python3 benchmarks/bench_demos.py --page          # each demo as a lecturer meets it, in Chromium (about 1 min)
    python3 benchmarks/bench_demos.py --page --live   # and the live degradation run from its button (about 4 more)

With --page: `streamlit run app.py` on localhost with an EMPTY runs folder (a fresh install: only the
bundled assets) and Debian's Chromium at 1400x900. For each demo the clock starts when the page is asked for
(or its button is clicked) and stops when its answer is on screen: the recorded degradation curves; the
depth sweep's second chart; the Grad-CAM page's maps and localization chart. Target: each within 60 s on a
2-core CPU. --live also presses "Run it live" and times the first live validation point and the end.

Figures printed, each as estimate / measured wall time (the estimate is what the page shows:
one ResNet-20 training step timed on this device, scaled to the demo's work):
  * "Why normalization matters": the depth sweep 8..110, plain and residual, BatchNorm and none;
  * the Shapes recipe (ResNet-20, what the Train page and the Grad-CAM demo train: under a minute
    on 2 cores), and the same recipe on 10,000 images (target: >= 90% within 3 minutes), with the
    validation accuracy per epoch;
  * "Where does the network look?": Grad-CAM and Guided Grad-CAM localization on 64 held-out
    Shapes images with that trained model, and its pointing-game score against chance;
  * "The degradation problem" (--degradation): the four runs' final training loss and accuracy.
Run it on a quiet machine: another process on the same cores slows the measured side only.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_core.analysis import SWEEP_DEPTHS, SideBySide, depth_sweep
from resnet_core.analysis.bands import final_loss, lesson
from resnet_core.analysis.partial import warmup_end
from resnet_core.analysis.twins import curve_of
from resnet_core.assets import recorded_run, recorded_snapshot
from resnet_core.data import Preprocess, load_dataset, make_shapes, prepare_uint8
from resnet_core.device import describe_device
from resnet_core.estimates import estimate_seconds, run_seconds, seconds_per_image, trainer_seconds_per_image
from resnet_core.explain import localization_scores
from resnet_core.jobs.training_queue import TrainingQueue
from resnet_core.model import get_preset
from resnet_core.recipes import (
    CHECK_SEED,
    DEGRADATION_DATA,
    DEGRADATION_DEPTHS,
    DEGRADATION_TRAIN,
    LOCALIZATION_IMAGES,
    SHAPES_DATA,
    SHAPES_FULL_DATA,
    SHAPES_TRAIN,
)
from resnet_core.train import EpochEvent, TrainRequest, load_metrics, load_run_model
from resnet_core.train.schedule import RunPlan


def compare(name: str, estimate: float, measured: float) -> None:
    print(f"{name}: estimate {estimate:.1f} s, measured {measured:.1f} s, ratio {estimate / measured:.2f}", flush=True)


def normalization_demo() -> None:
    estimate = estimate_seconds("normalization")
    start = time.perf_counter()
    result = depth_sweep(SWEEP_DEPTHS, ("batch", "none"), (0,), 32, 32)
    compare("Why normalization matters (depth sweep)", estimate, time.perf_counter() - start)
    for norm in ("batch", "none"):
        for residual in (False, True):
            ratios = ", ".join(f"{d}: {m:.3g}" for d, m, _, _ in result.series(residual, norm))
            print(f"  {norm:5s} {'residual' if residual else 'plain   '} first/last ratio  {ratios}")


def wait(queue: TrainingQueue, job_id: str) -> None:
    while queue.view(job_id).active:
        time.sleep(0.2)


def shapes_recipe(queue: TrainingQueue, spec=SHAPES_DATA) -> tuple[torch.nn.Module, object]:
    """The recipe as the app runs it: a worker process from the training queue, timed from submit to its end."""
    estimate = run_seconds(get_preset("resnet20"), spec.image_size, spec.n_train, spec.n_val, SHAPES_TRAIN)
    request = TrainRequest(get_preset("resnet20"), spec, SHAPES_TRAIN, queue.unique_name(f"bench-{spec.n_train}"))
    start = time.perf_counter()
    job = queue.submit("bench", [request], estimate)
    wait(queue, job.id)
    compare(f"Shapes recipe, ResNet-20, {spec.n_train:,} images (worker process)", estimate,
            time.perf_counter() - start)
    run_dir = job.run_dirs[0]
    epochs = [e for e in load_metrics(run_dir) if isinstance(e, EpochEvent) and e.val_acc is not None]
    print(f"  {queue.view(job.id).status}; validation accuracy per epoch: "
          + ", ".join(f"{100 * e.val_acc:.1f}%" for e in epochs))
    model, _, _ = load_run_model(run_dir)
    return model, load_dataset(spec)


def gradcam_demo(model: torch.nn.Module, data) -> None:
    check = make_shapes(LOCALIZATION_IMAGES, seed=CHECK_SEED, size=SHAPES_DATA.image_size)
    pre = Preprocess(mean=tuple(data.mean), std=tuple(data.std), image_size=SHAPES_DATA.image_size)
    x = prepare_uint8(check.images, pre)
    estimate = estimate_seconds("gradcam")
    start = time.perf_counter()
    rows = localization_scores(model, x, check.masks, ["gradcam", "guided_gradcam"], targets=check.labels.tolist())
    compare("Where does the network look? (localization on 64 images)", estimate, time.perf_counter() - start)
    for row in rows:
        print(f"  {row['label']}: pointing game {100 * row['pointing_game']:.1f}%, "
              f"energy inside the object {100 * row['energy_inside']:.1f}%")


def degradation_demo(queue: TrainingQueue) -> None:
    estimate = estimate_seconds("degradation")
    start = time.perf_counter()
    pair = SideBySide(DEGRADATION_DATA, DEGRADATION_TRAIN, depths=DEGRADATION_DEPTHS, record_every=5)
    pair.submit(queue, estimate)
    wait(queue, pair.job_id)
    compare("The degradation problem (four worker processes side by side)", estimate, time.perf_counter() - start)
    per_epoch = RunPlan.of(DEGRADATION_TRAIN, DEGRADATION_DATA.n_train).steps_per_epoch
    for name, curve in pair.curves().items():  # the final loss the page's cards quote: the last epoch's mean
        print(f"  {name:10s} final training loss {final_loss(curve, per_epoch) or float('nan'):.3f}, "
              f"validation accuracy {100 * curve['val_acc'][-1]:.1f}%")


CHART_WITH_DATA = """(sel) => [...document.querySelectorAll(sel + ' .js-plotly-plot')].some(g => (g.data || []).some(
    t => (t.x || t.y || t.z || []).length > 0))"""
# A live run's chart also holds the recorded curves (drawn faint): wait for a live (opaque) trace with data.
LIVE_TRACE = """(sel) => [...document.querySelectorAll(sel + ' .js-plotly-plot')].some(g => (g.data || []).some(
    t => (t.opacity === undefined || t.opacity === 1) && (t.x || []).length > 0))"""


def live_lesson(runs_dir: Path) -> None:
    """How the live degradation run in `runs_dir` ended: each net's final training loss and accuracy beside the
    recording's range over its seeds (the band the page draws it over), and the lesson read from the live run as
    bench_degradation_robustness.py reads a row of its table."""
    plan = RunPlan.of(DEGRADATION_TRAIN, DEGRADATION_DATA.n_train)
    recorded = recorded_run()
    curves = {}
    for label in SideBySide(DEGRADATION_DATA, DEGRADATION_TRAIN).names:
        found = sorted(runs_dir.glob(f"*-twins-{label.lower()}*"))
        if not found:
            print(f"  live degradation run: no run folder for {label}", flush=True)
            return
        curves[label] = c = curve_of(recorded_snapshot(found[-1]))
        loss, acc = final_loss(c, plan.steps_per_epoch), (c["val_acc"] or [0.0])[-1]
        band = ""
        if recorded is not None:
            losses, accs = recorded.finals()[label]
            inside = min(losses) <= loss <= max(losses)
            band = (f"; recorded seeds {min(losses):.3f}-{max(losses):.3f} / {100 * min(accs):.1f}-"
                    f"{100 * max(accs):.1f}%: loss {'inside' if inside else 'OUTSIDE'} the band")
        print(f"  live {label}: final training loss {loss:.3f}, validation accuracy {100 * acc:.1f}%{band}",
              flush=True)
    read = lesson(curves, plan.steps_per_epoch, warmup_end(DEGRADATION_TRAIN, plan))
    word = lambda b: "-" if b is None else ("yes" if b else "NO")
    print(f"  live lesson: plain-56 above plain-20 from the warm-up on {word(read.degraded)}; ResNet-56 at or below "
          f"ResNet-20 {word(read.cured)}; every net learns {word(read.learned)}", flush=True)


def page_demos(live: bool) -> None:
    """Each demo's answer as a lecturer meets it: the page open in Chromium, timed to the answer on screen."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.browser import wait_until_idle
    from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, served_app

    def answer(page, selector: str, what: str, start: float, limit_s: float = 600,
               test: str = CHART_WITH_DATA) -> float:
        page.wait_for_function(test, arg=selector, timeout=limit_s * 1000)
        took = time.perf_counter() - start
        print(f"{what}: answer on screen after {took:.1f} s (target <= 60 s)", flush=True)
        return took

    with tempfile.TemporaryDirectory() as runs_dir, served_app(Path(runs_dir), Path(runs_dir) / "server.log") as (
            url, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.set_default_timeout(600_000)
        page.goto(url)  # a first visit loads the app's modules; the lecturer opens Home before class
        wait_until_idle(page)
        start = time.perf_counter()
        page.goto(f"{url}/Plain_vs_Residual?demo=degradation")
        answer(page, ".st-key-pvr_rec_loss", "The degradation problem (recorded run, page opened)", start)
        wait_until_idle(page)
        start = time.perf_counter()
        page.locator(".st-key-demo_panel_normalization").get_by_role("button", name="Run demo").click()
        answer(page, ".st-key-pvr_sweep_chart_nobn", "Why normalization matters (Run demo clicked)", start)
        page.get_by_role("button", name="Run sweep").wait_for()
        if live:
            wait_until_idle(page)
            said = page.locator(".st-key-demo_panel_degradation").inner_text()
            estimate = re.search(r"Run it live takes (about [^.]*?) on this", said)
            print(f"  live degradation run: the panel said {estimate.group(1) if estimate else '(no estimate found)'}",
                  flush=True)
            start = time.perf_counter()
            page.get_by_role("button", name="Run it live").first.click()
            answer(page, ".st-key-pvr_train_loss", "  live degradation run: first live step drawn", start,
                   test=LIVE_TRACE)
            answer(page, ".st-key-pvr_train_acc", "  live degradation run: first validation point", start,
                   test=LIVE_TRACE)
            page.get_by_text("ResNet-56: finished").first.wait_for(timeout=1_800_000)  # a loaded machine: 30 min
            print(f"  live degradation run: all four finished after {time.perf_counter() - start:.0f} s", flush=True)
            live_lesson(Path(runs_dir))
        start = time.perf_counter()
        page.goto(f"{url}/Grad-CAM?demo=gradcam")
        answer(page, ".st-key-gc_loc_chart", "Where does the network look? (page opened, empty runs folder)", start)
        maps = page.locator('[data-testid="stImage"] img').count()
        print(f"  {maps} images with maps on the first view; runs folder entries: "
              f"{len([p for p in Path(runs_dir).iterdir() if p.is_dir()])}", flush=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--degradation", action="store_true", help="also run the four-network degradation demo")
    parser.add_argument("--page", action="store_true", help="time each demo's answer with the page open in Chromium")
    parser.add_argument("--live", action="store_true", help="with --page: also the live degradation run")
    args = parser.parse_args()
    if args.page:
        page_demos(args.live)
        return
    print(f"device: {describe_device().label}; ResNet-20 step: {1e3 * seconds_per_image():.2f} ms per image bare, "
          f"{1e3 * trainer_seconds_per_image():.2f} ms through the Trainer")
    normalization_demo()
    with tempfile.TemporaryDirectory() as runs_dir:
        queue = TrainingQueue(runs_dir, slots=1)
        model, data = shapes_recipe(queue)  # the Train page's defaults and the Grad-CAM demo model
        gradcam_demo(model, data)
        shapes_recipe(queue, SHAPES_FULL_DATA)  # the same recipe on 10,000 images: time to 90%+
        if args.degradation:
            degradation_demo(queue)
        queue.close()


if __name__ == "__main__":
    main()
