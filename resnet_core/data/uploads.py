"""Uploaded files kept on disk under a content hash."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path


def save_upload(data: bytes, suffix: str = ".zip") -> Path:
    """An uploaded file written once to the temporary folder, named by its content, so a rerun or a
    second upload of the same file reuses it (and the dataset cache keyed by its path)."""
    folder = Path(tempfile.gettempdir()) / "resnet-explorer-uploads"
    folder.mkdir(exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if not path.exists():
        path.write_bytes(data)
    return path
