"""Shareable links: the model config and page options live in the URL's query parameters."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import streamlit as st

from resnet_core import ResNetConfig
from resnet_core.share import config_from_params, config_to_params, option_from_params
from ui.state import current_config, set_config

_APPLIED_KEY = "_link_applied_for"


def apply_link() -> None:
    """Load the model config from the URL when it carries parameters we have not seen; notices for bad values."""
    params = st.query_params.to_dict()
    signature = tuple(sorted(params.items()))
    if not params or st.session_state.get(_APPLIED_KEY) == signature:
        return
    st.session_state[_APPLIED_KEY] = signature
    cfg, notices = config_from_params(params, current_config())
    set_config(cfg)
    for notice in notices:
        st.warning(f"Link: {notice}. The rest of the link was applied.")


def link_option(name: str, default: Any, allowed: Any = None) -> Any:
    """A page option from the URL (or `default`), with a notice when the URL's value is bad."""
    value, notice = option_from_params(st.query_params.to_dict(), name, default, allowed)
    if notice:
        st.warning(f"Link: {notice}.")
    return value


def publish(cfg: ResNetConfig | None = None, **options: Any) -> str:
    """Write the setup into the URL and return the full link."""
    params = config_to_params(cfg or current_config())
    params.update({k: _text(v) for k, v in options.items() if v is not None})
    st.session_state[_APPLIED_KEY] = tuple(sorted(params.items()))  # our own writes are not a new link
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    base = (st.context.url or "").split("?")[0]
    return f"{base}?{urlencode(params)}"


def copy_link(link: str) -> None:
    with st.popover("🔗 Copy link to this setup"):
        st.caption("Anyone opening this link gets the same model and options.")
        st.code(link, language=None)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)
