"""Peak memory of a script run in a fresh subprocess: how the hostile-input tests check the issue's memory bound."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEMORY_BOUND_MB = 1536  # the bound for any single request on the CPU machine

# Runs the script given as its argument as its only child, then reports that child's peak RSS
# (RUSAGE_CHILDREN of a process with no other children: earlier tests' children do not count).
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run([sys.executable, '-c', sys.argv[1]], capture_output=True, text=True)\n"
    "sys.stdout.write(r.stdout); sys.stderr.write(r.stderr)\n"
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(r.returncode)\n"
)


def run_measured(code: str, env: dict[str, str] | None = None, timeout: float = 300) -> tuple[float, str]:
    """(peak RSS in MB, stdout) of `code` run by a fresh python in the repository root; fails on a crash."""
    full_env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1", **(env or {})}
    out = subprocess.run([sys.executable, "-c", _WRAPPER, code], cwd=ROOT, env=full_env, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    peak_kb = int(next(line for line in reversed(lines) if line.startswith("PEAK_KB")).split()[1])
    return peak_kb / 1024, "\n".join(line for line in lines if not line.startswith("PEAK_KB"))
