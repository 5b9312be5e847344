"""Paths and names from visitors: folders confined to a data root in served mode, names safe to show."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .containers import DatasetError

# Served mode: when set, every folder a visitor types on a page must lie inside this folder.
DATA_ROOT_ENV = "RESNET_EXPLORER_DATA_ROOT"

# Characters that Markdown or Streamlit (links, images, colours, icons, LaTeX, HTML, e-mail autolinks) would act
# on, and control characters: a name from outside shown in a message gets '?' for each, so it stays plain text.
_MARKUP = re.compile(r"[\[\]<>`*$:|\\~#@\x00-\x1f\x7f]")
# "www.x.y" is autolinked with no special character at all: an invisible word joiner after "www" breaks it
# (as share.escape_markdown does; checked in Chromium against Streamlit 1.67).
_WWW = re.compile(r"(?i)\b(www)\.")
_NAME_LIMIT = 120


def shown(name: object, limit: int = _NAME_LIMIT) -> str:
    """An outside name (file, zip member, typed path) as it may appear in a message: plain text, short."""
    text = _WWW.sub("\\1\u2060.", _MARKUP.sub("?", str(name)))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def data_root() -> Path | None:
    """The served-mode data root ($RESNET_EXPLORER_DATA_ROOT, resolved), or None when unset (local use)."""
    value = os.environ.get(DATA_ROOT_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def inside(path: Path, root: Path) -> bool:
    """Whether the resolved `path` is `root` or lies under it (`root` already resolved)."""
    return path == root or root in path.parents


def visitor_path(text: str, what: str = "folder") -> Path:
    """The folder a visitor typed, as the server will read it.

    Without a data root: the path as typed, `~` expanded (today's local behaviour). Under one: a relative
    path is taken inside the root, and any path that resolves outside it (absolute elsewhere, '..', a
    symbolic link leading out) is refused with a DatasetError naming what was typed.
    """
    root = data_root()
    if root is None:
        return Path(text).expanduser()
    typed = Path(text.strip() or ".")
    try:
        resolved = (typed if typed.is_absolute() else root / typed).resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symbolic link loop
        resolved = None
    if resolved is None or not inside(resolved, root):
        raise DatasetError(
            f"{what} '{shown(text)}': this server reads only folders inside its data folder {shown(root)} "
            f"(served mode, {DATA_ROOT_ENV}); give a path inside it, e.g. the name of a sub-folder there, "
            "or upload a .zip instead")
    return resolved
