"""Helpers for the hostile-input tests: peak memory of a script in a fresh subprocess, and generated files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
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


def png_bytes(width: int, height: int, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A solid-colour PNG: a thin one compresses to a few hundred bytes however long it is."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_zip_bomb(path: Path, gib: int = 4) -> Path:
    """A zip whose one member is `gib` GiB of zeros, streamed through ZIP_DEFLATED in 16 MB chunks, so the
    test never holds more than a chunk: about 1 MB of zip per GiB (4 GiB: a 4.2 MB file)."""
    chunk = bytes(16 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("dataset/cats/zeros.png")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            for _ in range(gib * 64):
                member.write(chunk)
    return path


def write_many_files_zip(path: Path, count: int) -> Path:
    """A zip of `count` empty files in two class folders (about 100 bytes of directory each)."""
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(count):
            archive.writestr(f"dataset/c{i % 2}/{i:06d}.png", b"")
    return path
