"""Tables whose every column stays in view: on a projector (1024 px, sidebar open, presenter mode) and at 800 px
a scrolling grid hides the columns a page's sentences quote ("ins − del", "rand. ρ", "faithful"). A static table
wraps its headers and cells between words instead, and what a short header means is said under it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st


def wrapping_table(rows: Sequence[Mapping[str, Any]], column_help: Mapping[str, str] | None = None) -> None:
    """`rows` as a static table with every column in view; the headers that `column_help` explains (by their start:
    "ins − del ↑" explains "ins − del ↑ (mean ± 95%)" too) are explained in a closed expander under it."""
    # Floats as written ("0.395", not the table's "0.3950"), as the sentences quote them; a missing one as "—".
    data = pd.DataFrame(list(rows)).style.format(
        lambda v: ("—" if v != v else f"{v:g}") if isinstance(v, float) else v)
    st.table(data, hide_index=True)
    headers = list(rows[0]) if rows else []
    explained = [(name, words) for name, words in (column_help or {}).items()
                 if any(h.startswith(name) for h in headers)]
    if explained:
        with st.expander("What the columns mean"):
            st.markdown("\n".join(f"- **{name}**: {words}" for name, words in explained))
