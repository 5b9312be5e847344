"""Shareable links: a page's setup as URL query parameters, and back.

Everything read from a URL is untrusted: each value is parsed on its own, and a bad one
falls back to its default with a notice instead of failing the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

from .model.config import PRESETS, ConfigError, ResNetConfig, default_image_size, get_preset, preset_name_of
from .model.summary import check_cost

MAX_PARAM_LENGTH = 200  # longer values are not a setting anyone typed; refuse them
LIST_SEPARATOR = "-"  # tuples of ints (stage_blocks=3-4-6-3)
CHOICES_SEPARATOR = ","  # page options that are lists (depths=20,56; methods=gradcam,saliency)
_CONFIG_FIELDS = {f.name: f for f in fields(ResNetConfig)}


def encode_value(value: Any) -> str:
    """A setting as URL text: 1/0 for booleans, 3-4-6-3 for a tuple, a,b for a list, %g for floats."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, tuple):
        return LIST_SEPARATOR.join(map(str, value))
    if isinstance(value, list):
        return CHOICES_SEPARATOR.join(map(encode_value, value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _decode(name: str, text: str, default: Any) -> Any:
    """Parse `text` as the type of `default`; ValueError with a reason when it isn't."""
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected 1 or 0")
    if isinstance(default, tuple):
        return tuple(_whole(p, "whole numbers separated by '-', e.g. 3-4-6-3") for p in text.split(LIST_SEPARATOR))
    if isinstance(default, list):
        if not text:
            return []
        as_int = bool(default) and all(isinstance(v, int) for v in default)
        items = [_whole(p, "whole numbers separated by commas") if as_int else p
                 for p in text.split(CHOICES_SEPARATOR)]
        return list(dict.fromkeys(items))  # a repeated choice would draw the same widget twice
    if isinstance(default, int):
        return _whole(text, "a whole number")
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    return text


def _whole(text: str, expected: str) -> int:
    """int(text), with a reason of our own: int()'s message would repeat the outside text unquoted."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected {expected}") from None


# Characters that start Markdown: links and images need "[", emphasis "*"/"_", code "`", HTML "<", headings
# "#", tables "|", strikethrough "~", LaTeX "$", e-mail autolinks "@", entities "&"; a colon before a
# non-space starts a URL ("https://"), a colour directive (":red[") or an icon (":material/..."). Quotes,
# commas, parentheses and hyphens stay as they are, so a message reads as it would in plain text.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~$@&]|:(?=\S))")
# A backslash escape is not enough for what Streamlit finds in the *text* after parsing (measured in Chromium,
# Streamlit 1.67): GFM's bare-URL and e-mail autolinks ("https://x.y", "www.x.y", "a@b.c"), ":material/...:"
# icons and ":smile:" emoji are matched in the unescaped text. An invisible WORD JOINER (U+2060) after each
# such colon, before each "@" and inside "www." breaks every one of those patterns and shows nothing.
WORD_JOINER = "\u2060"


def escape_markdown(text: object) -> str:
    """`text` shown literally where Markdown is rendered (st.warning, st.error, st.markdown): the characters
    that start Markdown are backslash-escaped (CommonMark's rule), so no link, image, emphasis, HTML, LaTeX
    or colour directive is made from it; bare URLs, e-mail addresses, icons and emoji shortcodes are broken
    by an invisible word joiner, so they stay inert text; line breaks become spaces."""
    out = re.sub(r"[\r\n\t]+", " ", str(text))
    out = _MARKDOWN_SPECIAL.sub(lambda m: (WORD_JOINER if m.group(1) == "@" else "") + "\\" + m.group(1)
                                + (WORD_JOINER if m.group(1) == ":" else ""), out)
    out = re.sub(r"(?i)\bwww\.", lambda m: m.group(0)[:3] + WORD_JOINER + "\\.", out)  # "www.x.y" is autolinked
    return re.sub(r"^(\s*)([-=])", r"\1\\\2", out)  # a leading "-" would start a list


def quoted(text: str, limit: int = 40) -> str:
    """An outside value (a link value, a file name) as shown in a notice: quoted, shortened to `limit`
    characters, and escaped so that the page renders it as plain text (see `escape_markdown`)."""
    text = str(text)
    short = text[:limit] + ("…" if len(text) > limit else "")
    return escape_markdown(repr(short))


def config_to_params(cfg: ResNetConfig) -> dict[str, str]:
    """`{"preset": name}` for a preset, else the preset it came from plus the fields that differ."""
    name = preset_name_of(cfg)
    if name:
        return {"preset": name}
    base = get_preset("resnet20") if cfg.stem == "cifar" else get_preset("resnet18")
    params = {"preset": preset_name_of(base) or "resnet20"}
    for f in fields(cfg):
        if getattr(cfg, f.name) != getattr(base, f.name):
            params[f.name] = encode_value(getattr(cfg, f.name))
    return params


def config_from_params(params: Mapping[str, str], default: ResNetConfig,
                       image_size: int | None = 0) -> tuple[ResNetConfig, list[str]]:
    """The config a link describes, and one notice per value that was ignored.

    A config too costly to build (parameters, or MACs and feature maps at `image_size` px; 0: the size its
    stem is made for; None: parameters only) is refused from the settings alone, before anything is built.
    """
    notices: list[str] = []
    base = default
    preset = params.get("preset")
    if preset is not None:
        if preset in PRESETS:
            base = PRESETS[preset]
        else:
            fallback = preset_name_of(default) or "the default"
            notices.append(f"preset {quoted(preset)} in the link is unknown; using {fallback}")
    changes: dict[str, Any] = {}
    for name, text in params.items():
        if name not in _CONFIG_FIELDS:
            continue
        if len(text) > MAX_PARAM_LENGTH:
            notices.append(f"{name} in the link is too long; ignored")
            continue
        try:
            changes[name] = _decode(name, text, getattr(base, name))
        except ValueError as exc:
            notices.append(f"{name}={quoted(text)} in the link is not valid ({exc}); ignored")
    fallback = preset_name_of(base) or "defaults"
    try:
        cfg = base.replace(**changes) if changes else base
        if image_size is not None and cfg != base:
            check_cost(cfg, image_size if image_size > 0 else default_image_size(cfg))
    except (ConfigError, TypeError) as exc:
        # The message repeats the values, and a text field (block, stem, ...) may hold any outside text.
        notices.append(f"the link's model settings do not fit together ({escape_markdown(exc)}); using {fallback}")
        return base, notices
    return cfg, notices


def option_from_params(params: Mapping[str, str], name: str, default: Any, choices: Any = None,
                       bounds: tuple[Any, Any] | None = None) -> tuple[Any, str | None]:
    """One page option from the URL: (value, notice or None).

    `choices`: the values allowed (for a list option, each of its items); `bounds`: an inclusive
    (min, max) for a number. Two separate arguments, because a pair of choices such as (16, 32)
    would otherwise read as a range.
    """
    text = params.get(name)
    if text is None:
        return default, None
    try:
        if len(text) > MAX_PARAM_LENGTH:
            raise ValueError("too long")
        value = _decode(name, text, default)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise ValueError(f"must be between {bounds[0]} and {bounds[1]}")
        if choices is not None:
            bad = [v for v in (value if isinstance(value, list) else [value]) if v not in choices]
            if bad:
                raise ValueError(f"{quoted(str(bad[0]))} is not one of {list(choices)[:12]}")
    except ValueError as exc:
        return default, f"{name}={quoted(text)} in the link is not valid ({exc}); using {default!r}"
    return value, None


__all__ = ["config_to_params", "config_from_params", "encode_value", "escape_markdown", "option_from_params", "quoted"]


def names_this_machine_only(link: str) -> bool:
    """Whether a link's host is a loopback name, which opens on whoever's machine follows it (a lecturer who
    copies a link from http://localhost:8501 gives the class links to their own laptops)."""
    host = (urlsplit(link).hostname or "").lower()
    return host in ("localhost", "0.0.0.0", "::1") or host.startswith("127.")
