"""JSON from outside (run folders, model config files, uploads' sidecars) parsed with its nesting bounded.

json.loads recurses once per level: a file of 100,000 "[" ends in a RecursionError, and a value nested a few
hundred levels deep parses but breaks whatever walks it next. No file this app writes is nested more than a
few levels, so anything deeper than MAX_JSON_DEPTH is refused with a ValueError that says so.
"""

from __future__ import annotations

import json
from typing import Any

MAX_JSON_DEPTH = 32  # config.json nests 3 levels, a checkpoint's preprocess 2, a ResNetConfig file 2


class JSONTooDeepError(ValueError):
    """The text is nested deeper than the limit: a clear reason, not a RecursionError."""


def depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply `value` (parsed JSON) nests lists and objects, counted without recursion, stopping past
    `limit`: a bare number or text is 0, [1] is 1, {"a": [1]} is 2."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            level += 1
            deepest = max(deepest, level)
            if deepest > limit:
                return deepest
            stack.extend((child, level) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def loads(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, with nesting deeper than `limit` refused as JSONTooDeepError (a ValueError); malformed
    text raises json.JSONDecodeError (a ValueError too) as usual."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise JSONTooDeepError(f"it is nested too deeply (more than {limit} levels)") from None
    if depth(value, limit) > limit:
        raise JSONTooDeepError(f"it is nested too deeply (more than {limit} levels)")
    return value


__all__ = ["MAX_JSON_DEPTH", "JSONTooDeepError", "depth", "loads"]
