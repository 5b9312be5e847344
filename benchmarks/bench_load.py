"""A class presses Start at once: six Chromium sessions train, a seventh visitor opens the Home page.

    python3 benchmarks/bench_load.py            # the Train page's default run, six times: about 6 minutes
    python3 benchmarks/bench_load.py --quick    # a 1-epoch run on 2,000 images (a shared link sets it)

On localhost only, bounded in sessions (7) and time (--timeout): `streamlit run app.py`, six browser contexts
(six sessions) on the Train page, Start pressed in each within a second or two; then a seventh session opens
Home and is timed until its script has run and its title shows. Then every run is followed until it ends.
Printed: the seventh visitor's time (target <= 5 s), what each session's page said about its place in the
training queue right after Start and again 20 s later (when the queue has measured the first run's speed), each
run's wait and duration against that estimate, and whether every run finished.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import wait_until_idle  # noqa: E402
from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, served_app  # noqa: E402

SESSIONS = 6
LATER_S = 20  # when the waits the pages show are read a second time


def parse_wait(text: str) -> float | None:
    """ "... starting in about 3 min. ..." -> 180.0; None when the page shows no wait."""
    match = re.search(r"starting in (?:about (\d+(?:\.\d+)?) (s|min|h)|(under a second))", text)
    if not match:
        return None
    if match.group(3):
        return 0.0
    return float(match.group(1)) * {"s": 1, "min": 60, "h": 3600}[match.group(2)]


def read_created(run_dir: Path) -> float | None:
    try:
        created = json.loads((run_dir / "config.json").read_text())["created"]
        return datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (OSError, ValueError, KeyError):
        return None


def read_status(run_dir: Path) -> str:
    try:
        return json.loads((run_dir / "config.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return "not started"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 epoch on 2,000 images instead of the default run")
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    args = parser.parse_args()
    query = "?epochs=1&n=2000" if args.quick else ""

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        with served_app(runs_dir, Path(tmp) / "streamlit.log") as (url, _), sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            pages = []
            for _ in range(SESSIONS):
                page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
                page.set_default_timeout(120_000)
                page.goto(f"{url}/Train{query}")
                pages.append(page)
            for page in pages:
                wait_until_idle(page)
            estimate_text = pages[0].get_by_text(re.compile(r"epochs of batches of")).first.inner_text()
            start, start_wall = time.perf_counter(), time.time()
            for page in pages:
                page.get_by_role("button", name="Start").click()
            clicked = time.perf_counter() - start
            for page in pages:  # each page has drawn its answer to Start (running or waiting in line)
                waiting = page.get_by_text("Waiting for a free training slot")
                page.get_by_role("progressbar").or_(waiting).first.wait_for()
            said = []
            for page in pages:
                waiting = page.get_by_text(re.compile(r"Waiting for a free training slot"))
                said.append(waiting.first.inner_text().split(".")[0] if waiting.count() else "training")

            visitor = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
            t0 = time.perf_counter()
            visitor.goto(url)
            visitor.locator("h1").first.wait_for(timeout=60_000)
            wait_until_idle(visitor, timeout=60)
            home_s = time.perf_counter() - t0 - 1.0  # wait_until_idle waits one extra quiet second
            active_then = sum(read_status(p) == "running" for p in runs_dir.iterdir() if p.is_dir() and
                              not p.name.startswith("."))

            # What each page says of its wait once the first run has trained a few seconds (the queue then knows
            # how fast trainings go here), to set against when each run really started.
            while time.perf_counter() - start < LATER_S:
                time.sleep(0.5)
            said_later = []
            for page in pages:
                waiting = page.get_by_text(re.compile(r"Waiting for a free training slot"))
                text = waiting.first.inner_text() if waiting.count() else ""
                said_later.append((time.perf_counter() - start, parse_wait(text)))

            # Follow every run to its end: when each started (folder made) and ended (final status).
            seen_start: dict[str, float] = {}
            ended: dict[str, float] = {}
            deadline = time.perf_counter() + args.timeout
            while time.perf_counter() < deadline:
                for run in (p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                    created = read_created(run)  # when the worker made the folder (to the second)
                    if created is not None:
                        seen_start.setdefault(run.name, created - start_wall)
                    if run.name not in ended and read_status(run) not in ("running", "not started"):
                        ended[run.name] = time.perf_counter() - start
                if len(ended) == SESSIONS:
                    break
                time.sleep(0.5)
            finished_pages = sum(page.get_by_text(re.compile(r"finished \d+ steps")).count() > 0 for page in pages)
            browser.close()
        statuses = {p.name: read_status(p) for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}

    print(f"{SESSIONS} sessions pressed Start within {clicked:.1f} s ({'quick run' if args.quick else 'default run'}; "
          f"the page's estimate: {estimate_text.split('—')[-1].strip()})")
    for k, text in enumerate(said, 1):
        print(f"  session {k}: {text}")
    print(f"7th visitor's Home page rendered in {home_s:.1f} s with {active_then} run(s) training and the rest "
          "queued (target <= 5 s)")
    order = sorted(seen_start, key=seen_start.get)  # the queue starts jobs in the order Start was pressed
    for k, name in enumerate(order):
        end = ended.get(name)
        took = f"ran {end - seen_start[name]:.0f} s" if end is not None else "did not end in time"
        at, wait = said_later[k] if k < len(said_later) else (None, None)
        said = (f"; at {at:.0f} s its page said it would start in {wait:.0f} s, i.e. at {at + wait:.0f} s "
                f"({(at + wait) / seen_start[name]:.2f} of the real start)" if wait is not None and at is not None
                else "")
        print(f"  {name}: started after {seen_start[name]:.0f} s, {took}, status {statuses.get(name)}{said}")
    done = sum(s == "finished" for s in statuses.values())
    print(f"runs finished: {done} of {SESSIONS}; pages showing their run finished: {finished_pages} of {SESSIONS}")


if __name__ == "__main__":
    main()
