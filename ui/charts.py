"""Every chart a page draws goes through `chart`, so presenter mode can enlarge chart text in one place."""

from __future__ import annotations

import html
import re
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from resnet_core.charts.style import for_projector
from resnet_core.share import escape_markdown
from ui.presenter import PRESENTER_SCALE, presenter_on


def chart(fig: go.Figure, *, key: str, where: Any = None, **kwargs: Any) -> None:
    """`st.plotly_chart` (or `where.plotly_chart`, for a column). In presenter mode the chart's fonts, ticks,
    legend and labels are enlarged (CSS cannot do it: plotly sets text sizes when it lays a chart out, and
    would clip text it did not plan for), and its title is shown above it as page text, which wraps to the
    column where plotly would cut a long title off."""
    target = where if where is not None else st
    if presenter_on():
        title = for_projector(fig, PRESENTER_SCALE)
        if title:
            target.markdown(f"**{_plain(title)}**")
    target.plotly_chart(fig, key=key, **kwargs)


def _plain(title: str) -> str:
    """A plotly title (which may hold <br>, <b>, <sup>) as Markdown text that renders literally."""
    text = re.sub(r"<br\s*/?>", " ", title, flags=re.IGNORECASE)
    return escape_markdown(html.unescape(re.sub(r"<[^>]+>", "", text)))
