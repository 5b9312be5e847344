"""Per-session memo and shared cached resources, for pages that recompute on every rerun."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from resnet_core.assets import ASSETS_DIR
from resnet_core.data import DataBundle, DatasetSpec, load_dataset

_BUNDLED_KEY = f"run:{ASSETS_DIR}"  # how a bundled model's Subject.key starts (explain.subjects.run_subject)

T = TypeVar("T")


class SharedMemo:
    """Results every visitor would compute alike (the bundled model's maps and checks on the bundled samples),
    computed once for the whole server: a bounded LRU with one lock per key, so eight visitors opening Grad-CAM
    at once compute its first view once and the other seven wait for it instead of computing it too."""

    def __init__(self, limit: int = 32):
        self._limit, self._lock = limit, threading.Lock()
        self._values: OrderedDict[tuple, Any] = OrderedDict()
        self._key_locks: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = compute()
            with self._lock:
                self._values[key] = value
                self._key_locks.pop(key, None)
                while len(self._values) > self._limit:
                    self._values.popitem(last=False)
            return value


@st.cache_resource(show_spinner=False)
def _shared_memo() -> SharedMemo:
    return SharedMemo()


def _shared(key: tuple) -> bool:
    """Whether `key` names only read-only inputs every visitor has: a bundled model's key ("run:<assets>/...")."""
    return any(isinstance(part, str) and part.startswith(_BUNDLED_KEY) for part in key)


def memo_get(key: tuple, compute: Callable[[], T], *, name: str = "gc_memo", limit: int = 48) -> T:
    """`compute()` once per session for `key`, kept in a bounded LRU (session state `name`).

    Per session rather than st.cache_*: models loaded from a session's files and the maps
    computed with them must not leak into another person's session. A `compute` that raises
    caches nothing. Results of the bundled models (the same for every visitor) are computed once per server
    (SharedMemo) and kept in the session too.
    """
    memo: OrderedDict[tuple, Any] = st.session_state.setdefault(name, OrderedDict())
    if key not in memo and _shared(key):
        compute = (lambda inner: lambda: _shared_memo().get(key, inner))(compute)
    if key in memo:
        memo.move_to_end(key)
        return memo[key]
    value = memo[key] = compute()
    while len(memo) > limit:
        memo.popitem(last=False)
    return value


def memo_forget(keep: Callable[[tuple], bool], *, name: str = "gc_memo") -> int:
    """Drop every entry whose key `keep` rejects (a refused upload's checkpoint and model); how many went."""
    memo: OrderedDict[tuple, Any] = st.session_state.get(name) or OrderedDict()
    gone = [key for key in memo if not keep(key)]
    for key in gone:
        del memo[key]
    return len(gone)


@st.cache_resource(max_entries=3, show_spinner=False)
def _dataset(spec: DatasetSpec) -> DataBundle:
    return load_dataset(spec)


def cached_dataset(spec: DatasetSpec, spinner: str = "Preparing the dataset…") -> DataBundle:
    """A dataset loaded once and shared by every session and page: datasets are read-only once made.

    st.spinner shows only when loading takes longer than half a second, as a cache's own spinner does.
    """
    with st.spinner(spinner):
        return _dataset(spec)
