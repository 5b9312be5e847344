"""Shareable links: the model config and a page's options live in the URL's query parameters.

A page lists its linked widgets as `Linked` options, calls `apply_link(options)` before drawing
any widget, creates those widgets through their option (`option.widget(st.number_input, "Epochs")`:
the key, min/max from `bounds` and the options from `choices`, so each is written once), and calls
`share_link(options)`: that writes the current setup into the URL and offers it in a "copy
link" popover. Widget values are in the session before the script runs, so it may be called
before the widgets are drawn (the model config must be current, which is why the Build page
calls it after its editor).

The sidebar's page links carry the same query (`page_query`): the model and the options that page last
wrote, which is what it writes again when it opens. Streamlit adds a browser-history entry for the
navigation and another one whenever a run changes the query string; a link that arrives with the
final query leaves one entry per page, so one Back press returns to the previous page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from resnet_core import ResNetConfig
from resnet_core.share import (
    config_from_params,
    config_to_params,
    encode_value,
    names_this_machine_only,
    option_from_params,
)
from ui.presenter import PRESENTER_PARAM, presenter_on
from ui.state import current_config, set_config

# The parameters that describe the model (config_to_params writes "preset" and the fields that differ).
CONFIG_PARAMS = frozenset({"preset", *(f.name for f in fields(ResNetConfig))})
_APPLIED_KEY = "_link_applied_for"
_PAGE_KEY = "_link_page"  # (page file, redraw of the sidebar's page links) of the page now running
PAGE_OPTIONS_KEY = "_link_page_options"  # page file -> the non-model parameters it last published (tests read it)
LINKED_DEMO_KEY = "_link_demo"  # the demo a followed link (?demo=…) points at
LINKED_OPTIONS_KEY = "_linked_options"  # the page's options by widget key, as last applied (tests read them)


@dataclass(frozen=True)
class Linked:
    """A widget whose value travels in the URL.

    key: the widget's session-state key. param: its name in the URL.
    default: its value when the URL does not name it (defaults are left out of links, so links
    stay short), or a function of the model config giving it (the image size follows the stem).
    choices: the values a URL may set (each item, for a list option); bounds: an inclusive
    (min, max) for a number.
    """

    key: str
    param: str
    default: Any
    choices: Any = None
    bounds: tuple[Any, Any] | None = None

    def default_value(self) -> Any:
        return self.default(current_config()) if callable(self.default) else self.default

    def widget_args(self) -> dict[str, Any]:
        """What the option gives its widget: the key, min_value/max_value from `bounds`, options from `choices`."""
        args: dict[str, Any] = {"key": self.key}
        if self.bounds is not None:
            args["min_value"], args["max_value"] = self.bounds
        if self.choices is not None:
            args["options"] = list(self.choices)
        return args

    def widget(self, make: Callable[..., Any], label: str, **kwargs: Any) -> Any:
        """Draw the option's widget: `make` is e.g. st.number_input or cols[0].selectbox, given `label`,
        `widget_args()` and `kwargs` (which win: a page may narrow a range for the model at hand).

        persist_state="page": a linked value is set in session state (by apply_link) before its widget is
        drawn, and a page may stop above the widget on some runs (a model source without a model). Without it,
        the widget came back showing its minimum while the page used the kept value."""
        return make(label, **{**self.widget_args(), "persist_state": "page", **kwargs})


def by_key(options: Sequence[Linked]) -> dict[str, Linked]:
    """The options by widget key, to draw each widget from its option."""
    return {option.key: option for option in options}


def apply_link(options: Sequence[Linked] = ()) -> bool:
    """Set the model config and the options from the URL when it is a link we have not applied yet.

    Bad values fall back to their defaults with a notice each. Options the URL does not set keep
    their session value (or start at their default). Returns True when a new link was applied.
    """
    st.session_state[LINKED_OPTIONS_KEY] = by_key(options)
    params = st.query_params.to_dict()
    signature = tuple(sorted(params.items()))
    new_link = bool(params) and st.session_state.get(_APPLIED_KEY) != signature
    if new_link:
        st.session_state[_APPLIED_KEY] = signature
        st.session_state[LINKED_DEMO_KEY] = params.get("demo")  # publish() drops it from the URL
        notices: list[str] = []
        # A link that names the current model (the sidebar's page links do) leaves it as it is: parsing it
        # again could only lose precision (a width multiplier travels as %g).
        if {k: v for k, v in params.items() if k in CONFIG_PARAMS} != config_to_params(current_config()):
            cfg, notices = config_from_params(params, current_config())
            set_config(cfg)
        for option in options:
            value, notice = option_from_params(params, option.param, option.default_value(),
                                               option.choices, option.bounds)
            st.session_state[option.key] = value
            if notice:
                notices.append(notice)
        for notice in notices:
            st.warning(f"Link: {notice}. The rest of the link was applied.")
    for option in options:
        st.session_state.setdefault(option.key, option.default_value())
    return new_link


def publish(options: Sequence[Linked] = (), extra: dict[str, str] | None = None) -> str:
    """Write the model config and the options that differ from their defaults into the URL; return the link.
    `extra`: more parameters the page reads itself (the Train page's `run`, the run it follows)."""
    params = {**config_to_params(current_config()), **(extra or {})}
    if presenter_on():
        params[PRESENTER_PARAM] = "1"
    for option in options:
        default = option.default_value()
        value = st.session_state.get(option.key, default)
        if value != default:
            params[option.param] = encode_value(value)
    st.session_state[_APPLIED_KEY] = tuple(sorted(params.items()))  # our own writes are not a new link
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    page = st.session_state.get(_PAGE_KEY)
    if page is not None:
        path, redraw_links = page
        st.session_state.setdefault(PAGE_OPTIONS_KEY, {})[path] = {
            k: v for k, v in params.items() if k not in CONFIG_PARAMS}
        redraw_links()  # drawn at the top of the run, before this page settled its model and options
    base = (st.context.url or "").split("?")[0]
    return f"{base}?{urlencode(params)}"


def on_page(path: str, redraw_links: Callable[[], None]) -> None:
    """Called by every page first (ui.frame.page_setup): the page file now running, and how to redraw the
    sidebar's page links once `publish` knows the final query."""
    st.session_state[_PAGE_KEY] = (path, redraw_links)


def page_query(path: str) -> dict[str, str]:
    """The query a link to page `path` carries: the current model, then the options that page last
    published (in `publish`'s order, so the query string is the very one the page writes)."""
    query = {**config_to_params(current_config()), **st.session_state.get(PAGE_OPTIONS_KEY, {}).get(path, {})}
    query.pop(PRESENTER_PARAM, None)
    return {**query, **({PRESENTER_PARAM: "1"} if presenter_on() else {})}


def copy_link(link: str) -> None:
    with st.popover("Copy link to this setup", icon=":material/link:"):
        st.caption("Anyone opening this link gets the same model, seed and options on this page.")
        st.code(link, language=None)
        if names_this_machine_only(link):
            st.caption("This link names this machine (localhost): on another computer it would open that computer "
                       "instead. To share it with a class, open the app at this machine's network address "
                       "(README: *Serving a class on a local network*) and copy the link from there.")


def share_link(options: Sequence[Linked] = (), extra: dict[str, str] | None = None) -> None:
    """Publish the setup (and `extra`) to the URL and draw the "copy link" control."""
    copy_link(publish(options, extra))
