"""Per-session memo and shared cached resources, for pages that recompute on every rerun."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from resnet_core.data import DataBundle, DatasetSpec, load_dataset

T = TypeVar("T")


def memo_get(key: tuple, compute: Callable[[], T], *, name: str = "gc_memo", limit: int = 48) -> T:
    """`compute()` once per session for `key`, kept in a bounded LRU (session state `name`).

    Per session rather than st.cache_*: models loaded from a session's files and the maps
    computed with them must not leak into another person's session. A `compute` that raises
    caches nothing.
    """
    memo: OrderedDict[tuple, Any] = st.session_state.setdefault(name, OrderedDict())
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
