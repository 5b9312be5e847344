"""The live view at command-line speed: the Train page's default run, watched in Chromium, against the CLI.

    python3 benchmarks/bench_live_page.py            # about 2 minutes on 2 cores

One after the other, on the same machine:
  1. `streamlit run app.py` on localhost, Debian's Chromium on the Train page; press Start and time until the
     page shows the run finished. Meanwhile the seconds between redraws of the step counter are sampled, and
     the CPU seconds of the server, the worker and Chromium are read from /proc.
  2. The browser and server closed, `python -m resnet_core.train` with no flags (the same run), timed from
     process start to exit.
Printed: both times and their ratio (target <= 1.2), the page's own estimate against the page time (target
within +-25%), the redraw interval (target <= 1 s) and where the CPU went. Localhost only; stops itself.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import wait_until_idle  # noqa: E402
from tests.e2e.server import CHROMIUM, CHROMIUM_ARGS, served_app  # noqa: E402

TIMEOUT_S = 600
CLK_TCK = 100  # os.sysconf("SC_CLK_TCK") on Linux


def cpu_seconds(pattern: str) -> float:
    """User + system CPU seconds of every live process whose command line matches `pattern` (from /proc)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if not re.search(pattern, cmdline):
                continue
            fields = stat.read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            continue
    return total


WATCH_JS = """() => {
  window.__t0 = performance.now(); window.__changes = []; window.__finishedAt = null;
  let last = null;
  new MutationObserver(() => {
    const metric = document.querySelector('[data-testid="stMetricValue"]');
    const value = metric ? metric.textContent : null;
    if (value !== null && value !== last && value.includes("/") && !value.startsWith("0 /")) {
      window.__changes.push(performance.now()); last = value;
    }
    if (window.__finishedAt === null && [...document.querySelectorAll('[data-testid="stAlert"]')]
          .some(a => /finished \\d+ steps/.test(a.textContent))) {
      window.__finishedAt = performance.now();
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def run_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "config.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return None


def parse_estimate(text: str) -> float | None:
    """ "... — about 52 s on this CPU" -> 52.0 (minutes become seconds)."""
    match = re.search(r"about (\d+(?:\.\d+)?) (s|min|h)\b", text)
    if not match:
        return None
    return float(match.group(1)) * {"s": 1, "min": 60, "h": 3600}[match.group(2)]


def page_run(runs_dir: Path, log: Path) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    with served_app(runs_dir, log) as (url, server), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.set_default_timeout(TIMEOUT_S * 1000)
        page.goto(f"{url}/Train")
        wait_until_idle(page)
        caption = page.get_by_text(re.compile(r"epochs of batches of")).first.inner_text()
        estimate = parse_estimate(caption)
        server_cpu0 = cpu_seconds(r"streamlit run app.py")  # the server alone: workers are other processes
        chromium_cpu0 = cpu_seconds(r"chromium|chrome")
        # The page itself notes when the step counter changes and when "finished N steps" appears (a
        # MutationObserver, reading textContent only): this script then needs to look only once a second, so the
        # measuring costs the two cores next to nothing.
        page.evaluate(WATCH_JS)
        start, start_wall = time.perf_counter(), time.time()
        page.get_by_role("button", name="Start").click()
        worker_cpu = 0.0
        while time.perf_counter() - start < TIMEOUT_S:
            if page.evaluate("() => window.__finishedAt !== null"):
                break
            worker_cpu = max(worker_cpu, cpu_seconds(r"-m resnet_core\.train"))
            time.sleep(1.0)
        # When the worker made its run folder (config.json's "created", to the second) and last wrote config.json
        # (its final status).
        run_dirs = [p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        folder_at = ended_at = float("nan")
        if run_dirs and run_status(run_dirs[0]) not in ("running", None):
            created = json.loads((run_dirs[0] / "config.json").read_text())["created"]
            folder_at = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").timestamp() - start_wall
            ended_at = (run_dirs[0] / "config.json").stat().st_mtime - start_wall
        seen = page.evaluate("() => ({t0: window.__t0, changes: window.__changes, finished: window.__finishedAt})")
        finished_at = seen["finished"]
        page_s = ((finished_at - seen["t0"]) / 1000) if finished_at is not None else time.perf_counter() - start
        changes = [t / 1000 for t in seen["changes"]]
        gaps = [b - a for a, b in zip(changes, changes[1:])]
        result = {
            "page_s": page_s, "estimate_s": estimate or float("nan"),
            "server_cpu_s": cpu_seconds(r"streamlit run app.py") - server_cpu0,
            "chromium_cpu_s": cpu_seconds(r"chromium|chrome") - chromium_cpu0, "worker_cpu_s": worker_cpu,
            "redraw_median_s": statistics.median(gaps) if gaps else float("nan"),
            "redraw_max_s": max(gaps) if gaps else float("nan"), "redraws": len(changes),
            "finished": float(finished_at is not None),
            "folder_at": folder_at, "ended_at": ended_at,
        }
        browser.close()
        del server
    return result


def cli_run(runs_dir: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "resnet_core.train", "--runs-dir", str(runs_dir), "--no-progress"],
                   cwd=ROOT, check=True, timeout=TIMEOUT_S, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        page = page_run(tmp_path / "page-runs", tmp_path / "streamlit.log")
        cli_s = cli_run(tmp_path / "cli-runs")
    print(f"Train page default run, watched in Chromium: {page['page_s']:.1f} s "
          f"(finished shown: {'yes' if page['finished'] else 'NO'})")
    print(f"same run from the command line:            {cli_s:.1f} s")
    print(f"page / CLI ratio: {page['page_s'] / cli_s:.2f} (target <= 1.2)")
    print(f"page estimate: {page['estimate_s']:.0f} s; estimate / page time {page['estimate_s'] / page['page_s']:.2f} "
          "(target 0.75-1.25)")
    print(f"step counter redrawn {page['redraws']} times: median every {page['redraw_median_s']:.2f} s, "
          f"longest gap {page['redraw_max_s']:.2f} s (target <= 1 s)")
    print(f"where the page time went: worker started and made its run folder {page['folder_at']:.1f} s after the "
          f"click, wrote its final status at {page['ended_at']:.1f} s; the page showed it at {page['page_s']:.1f} s")
    print(f"CPU seconds during the page run: worker {page['worker_cpu_s']:.0f}, server {page['server_cpu_s']:.0f}, "
          f"Chromium {page['chromium_cpu_s']:.0f}")


if __name__ == "__main__":
    main()
