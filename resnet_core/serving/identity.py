"""Who is asking: a visitor (a browser, by an unguessable id kept in a cookie), the terminal, or the lecturer.

A run records its owner as a hash of the visitor id, never the id itself: the runs folder is readable by every
visitor (the class's board), and a hash there cannot be turned back into a cookie that controls the run.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass

VISITOR_COOKIE = "resnet_explorer_visitor"
LECTURER_TOKEN_ENV = "RESNET_EXPLORER_LECTURER_TOKEN"
TERMINAL = "terminal"  # the owner of a run started from a command line (no visitor)
_ID = re.compile(r"[A-Za-z0-9_-]{32,64}")


def new_visitor_id() -> str:
    """192 random bits, URL- and cookie-safe."""
    return secrets.token_urlsafe(24)


def valid_visitor_id(text: object) -> bool:
    """Whether `text` (a cookie's value: outside input) has the shape of a visitor id."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None


def owner_of(visitor_id: str) -> str:
    """The owner name a visitor's runs and jobs record: a salted hash of the id."""
    return "v-" + hashlib.sha256(f"resnet-explorer-visitor:{visitor_id}".encode()).hexdigest()[:24]


def lecturer_token_set() -> bool:
    return bool(os.environ.get(LECTURER_TOKEN_ENV, "").strip())


def lecturer_token_ok(text: object) -> bool:
    """Whether `text` is the lecturer token the server was started with (compared in constant time)."""
    token = os.environ.get(LECTURER_TOKEN_ENV, "").strip()
    return bool(token) and isinstance(text, str) and hmac.compare_digest(text.strip().encode(), token.encode())


@dataclass(frozen=True)
class Actor:
    """Who presses a button: `owner` as runs record it; `lecturer` may control every run and the class's limits."""

    owner: str
    lecturer: bool = False

    def may_control(self, owner: object) -> bool:
        """Whether this actor may stop, cancel or remove something owned by `owner` (a run without an owner
        was started before owners were recorded, or from a terminal: the lecturer's alone)."""
        return self.lecturer or (isinstance(owner, str) and owner == self.owner)


__all__ = ["LECTURER_TOKEN_ENV", "TERMINAL", "VISITOR_COOKIE", "Actor", "lecturer_token_ok", "lecturer_token_set",
           "new_visitor_id", "owner_of", "valid_visitor_id"]
