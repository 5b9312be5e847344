"""A class on one server: six visitors follow a training, eight open the heaviest page at once, a ninth opens Home.

    python3 benchmarks/bench_class.py

On localhost only, bounded in sessions (15) and time: `streamlit run app.py` in served mode (a lecturer token
set), an empty runs folder, one training started from a terminal (the lecturer's demo run: `python -m
resnet_core.train`, 20 epochs of 2,000 Shapes images). Six Chromium contexts follow it on the Train page (`?run=`),
then eight open Grad-CAM (maps, top-k, localization and the trust checks on the first view) at once, then a ninth
opens Home and is timed until its script has run. Printed: the ninth visitor's Home time (target <= 5 s), the time
the eight Grad-CAM pages took to settle, and the server's resident memory: idle, with the followers, with every
session open, and 40 s after every session closed (Streamlit drops a closed session after
server.disconnectedSessionTTL = 15 s; the server hands freed memory back every 15 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_core.serving.memory import rss_bytes  # noqa: E402
from tests.e2e.browser import wait_until_idle  # noqa: E402
from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, served_app  # noqa: E402

FOLLOWERS, HEAVY = 6, 8


def mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1024**2:.0f} MB"


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        env = {"RESNET_EXPLORER_LECTURER_TOKEN": "bench-token"}
        with served_app(runs, Path(tmp) / "streamlit.log", env=env) as (url, server), sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)

            def visit(path: str):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                page.set_default_timeout(180_000)
                page.goto(url + path)
                return context, page

            first = visit("/")
            wait_until_idle(first[1])
            first[0].close()
            time.sleep(2)
            idle = rss_bytes(server.pid)

            train = subprocess.Popen(
                [sys.executable, "-m", "resnet_core.train", "--runs-dir", str(runs), "--name", "lecture-run",
                 "--n-train", "2000", "--n-val", "500", "--epochs", "20", "--no-progress"],
                cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            try:
                while not (runs / "lecture-run" / "metrics.jsonl").exists():
                    time.sleep(0.5)
                followers = [visit("/Train?run=lecture-run") for _ in range(FOLLOWERS)]
                for _, page in followers:
                    page.get_by_text("lecture-run").first.wait_for()
                time.sleep(20)
                following = rss_bytes(server.pid)

                t0 = time.perf_counter()
                heavy = [visit("/Grad-CAM") for _ in range(HEAVY)]
                for _, page in heavy:
                    page.locator("h1").first.wait_for()
                    page.get_by_text("Recorded").first.wait_for()
                    wait_until_idle(page, timeout=300)
                settled = time.perf_counter() - t0 - 1.0

                ninth_ctx, ninth = visit("/")
                t1 = time.perf_counter()
                ninth.locator("h1").first.wait_for(timeout=60_000)
                wait_until_idle(ninth, timeout=60)
                home_s = time.perf_counter() - t1 - 1.0
                peak = rss_bytes(server.pid)

                for context, _ in followers + heavy + [(ninth_ctx, ninth)]:
                    context.close()
                time.sleep(40)
                after = rss_bytes(server.pid)
            finally:
                train.terminate()
                train.wait(30)
            browser.close()

    print(f"server memory: idle {mb(idle)}; with {FOLLOWERS} sessions following one run {mb(following)}; "
          f"with them and {HEAVY} Grad-CAM sessions and a Home {mb(peak)}; 40 s after every session closed "
          f"{mb(after)}")
    print(f"{HEAVY} Grad-CAM pages opened at once settled in {settled:.1f} s")
    print(f"9th visitor's Home rendered in {home_s:.1f} s with {FOLLOWERS} followers and {HEAVY} Grad-CAM sessions "
          "open and a training running (target <= 5 s)")


if __name__ == "__main__":
    main()
