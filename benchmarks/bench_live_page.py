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

import re
import statistics
import subprocess
import sys
import tempfile
import time
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
        server_cpu0 = cpu_seconds(rf"streamlit run app.py")  # the server alone: workers are other processes
        chromium_cpu0 = cpu_seconds(r"chromium|chrome")
        start = time.perf_counter()
        page.get_by_role("button", name="Start").click()
        changes, last_value = [], None
        worker_cpu = 0.0
        finished = page.get_by_text(re.compile(r"finished \d+ steps"))
        while time.perf_counter() - start < TIMEOUT_S:
            if finished.count():
                break
            value = page.evaluate("() => { const m = [...document.querySelectorAll('[data-testid=\"stMetricValue\"]')];"
                                  " return m.length ? m[0].innerText : null; }")
            now = time.perf_counter()
            if value != last_value and value is not None and "/" in value and not value.startswith("0 /"):
                changes.append(now)
                last_value = value
            worker_cpu = max(worker_cpu, cpu_seconds(r"-m resnet_core\.train"))
            time.sleep(0.25)
        page_s = time.perf_counter() - start
        gaps = [b - a for a, b in zip(changes, changes[1:])]
        result = {
            "page_s": page_s, "estimate_s": estimate or float("nan"),
            "server_cpu_s": cpu_seconds(r"streamlit run app.py") - server_cpu0,
            "chromium_cpu_s": cpu_seconds(r"chromium|chrome") - chromium_cpu0, "worker_cpu_s": worker_cpu,
            "redraw_median_s": statistics.median(gaps) if gaps else float("nan"),
            "redraw_max_s": max(gaps) if gaps else float("nan"), "redraws": len(changes),
            "finished": float(bool(finished.count())),
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
    print(f"CPU seconds during the page run: worker {page['worker_cpu_s']:.0f}, server {page['server_cpu_s']:.0f}, "
          f"Chromium {page['chromium_cpu_s']:.0f}")


if __name__ == "__main__":
    main()
