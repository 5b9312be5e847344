"""Generated hostile files for the data tests: images and zips (peak memory: tests/memory.py)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
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
