"""One way to check values from outside (configs, links, files): each failure names the field, the value
and what is allowed, in the error type of the thing being checked."""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import fields
from typing import Any


def is_int(value: Any) -> bool:
    """A whole number (bool is not one, though Python says it is an int)."""
    return not isinstance(value, bool) and isinstance(value, int)


def is_number(value: Any) -> bool:
    """A finite int or float (not bool, NaN or infinity)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def need(ok: bool, error: type[Exception], name: str, value: Any, rule: str) -> None:
    """Raise `error("name: value rule")` unless `ok`, e.g. "epochs: 0 must be a whole number from 1 to 10000"."""
    if not ok:
        raise error(f"{name}: {value!r} {rule}")


def need_choice(error: type[Exception], name: str, value: Any, allowed: Collection[Any]) -> None:
    need(value in allowed, error, name, value, f"is not allowed; choose one of {list(allowed)}")


def need_int(error: type[Exception], name: str, value: Any, low: int, high: int | None = None,
             hint: str = "") -> None:
    """A whole number in [low, high] (no upper end when `high` is None); `hint` is added to the message."""
    ok = is_int(value) and value >= low and (high is None or value <= high)
    span = f"from {low} to {high}" if high is not None else f">= {low}"
    need(ok, error, name, value, f"must be a whole number {span}{hint}")


def need_number(error: type[Exception], name: str, value: Any, low: float, high: float,
                high_open: bool = False, hint: str = "") -> None:
    """A finite number in [low, high] (or [low, high) with `high_open`); `hint` is added to the message."""
    ok = is_number(value) and low <= value and (value < high if high_open else value <= high)
    need(ok, error, name, value, f"must be a number in [{low:g}, {high:g}{')' if high_open else ']'}{hint}")


def need_bool(error: type[Exception], name: str, value: Any) -> None:
    need(isinstance(value, bool), error, name, value, "must be true or false")


def dataclass_from_dict(cls: type, data: Any, error: type[Exception], label: str) -> Any:
    """Build dataclass `cls` from a JSON object, naming unknown fields in an `error` instead of a TypeError."""
    if not isinstance(data, dict):
        raise error(f"{label}: expected a JSON object of fields, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise error(f"{label}: unknown field(s) {unknown}; allowed fields are {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as exc:  # e.g. a value of a type the dataclass cannot hold
        raise error(f"{label}: {exc}") from None


__all__ = ["dataclass_from_dict", "is_int", "is_number", "need", "need_bool", "need_choice", "need_int",
           "need_number"]
