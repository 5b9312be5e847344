"""Every chart a page draws goes through `chart`, so presenter mode can scale its fonts in one place."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from resnet_core.charts import scale_fonts
from ui.presenter import PRESENTER_SCALE, presenter_on


def chart(fig: go.Figure, *, key: str, where: Any = None, **kwargs: Any) -> None:
    """`st.plotly_chart` (or `where.plotly_chart`, for a column), with fonts, ticks and legends enlarged in
    presenter mode: CSS cannot reach inside a chart, whose text sizes are set when plotly lays it out."""
    if presenter_on():
        scale_fonts(fig, PRESENTER_SCALE)
    (where if where is not None else st).plotly_chart(fig, key=key, **kwargs)
