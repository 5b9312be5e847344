"""Who this browser is: an unguessable visitor id in a cookie (never in a link), the lecturer's sign-in, and the
class's limits as this session reads them. The engine (resnet_core.serving) decides what each may do.

Why a cookie: Streamlit hands a session the cookies of the page that opened it (`st.context.cookies`), so an id
kept there survives a reload, a closed and reopened tab and a restart of the server, and a copied link never
carries it. Streamlit cannot set a cookie itself; one line of script on the page does, once, the first time.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import streamlit as st

from resnet_core.serving import (
    VISITOR_COOKIE,
    Actor,
    ClassLimits,
    check_analysis,
    lecturer_token_ok,
    lecturer_token_set,
    load_limits,
    new_visitor_id,
    owner_of,
    save_limits,
    served_mode,
    valid_visitor_id,
)
from resnet_core.train import default_runs_dir

_ID_KEY = "visitor_id"
COOKIE_DAYS = 365


@st.cache_resource(show_spinner=False)
def _lecturers() -> set[str]:
    """Owners (hashes) that entered the lecturer token on this server: they stay the lecturer across reloads."""
    return set()


def visitor_id() -> str:
    """This browser's id: from its cookie, or made now (and the cookie set by the page)."""
    if _ID_KEY not in st.session_state:
        try:
            cookie = st.context.cookies.get(VISITOR_COOKIE)
        except (AttributeError, RuntimeError):  # outside a served page (AppTest)
            cookie = None
        st.session_state[_ID_KEY] = cookie if valid_visitor_id(cookie) else new_visitor_id()
    return st.session_state[_ID_KEY]


def remember_visitor() -> None:
    """Set the cookie when the browser does not have it yet (a new visitor): once per session."""
    ident = visitor_id()
    try:
        known = st.context.cookies.get(VISITOR_COOKIE) == ident
    except (AttributeError, RuntimeError):
        known = False
    if known:
        return
    value = json.dumps(f"{VISITOR_COOKIE}={ident}; path=/; max-age={COOKIE_DAYS * 86400}; SameSite=Strict")
    with st.container(key="frame_visitor"):
        st.html(f"<script>document.cookie = {value};</script>", unsafe_allow_javascript=True)


def actor() -> Actor:
    """This visitor as the engine sees them. Outside served mode everyone may control everything, as before."""
    owner = owner_of(visitor_id())
    return Actor(owner, lecturer=not served_mode() or owner in _lecturers())


def class_limits() -> ClassLimits:
    return load_limits(default_runs_dir())


def share() -> dict[str, Any]:
    """What a page passes to TrainingQueue.submit: who asks, under which limits."""
    return {"actor": actor(), "limits": class_limits()}


def is_lecturer() -> bool:
    return served_mode() and owner_of(visitor_id()) in _lecturers()


def lecturer_sign_in() -> None:
    """The sidebar's lecturer box (served mode with a token only): sign in once; then sign out."""
    if not lecturer_token_set():
        return
    owner = owner_of(visitor_id())
    with st.sidebar.expander("Lecturer", icon=":material/school:", expanded=False):
        if owner in _lecturers():
            st.caption("Signed in as the lecturer: you can stop or remove any run, choose the class's demo model "
                       "(Train page, run history) and change the class's limits below.")
            limits_form()
            if st.button("Sign out", key="lecturer_sign_out"):
                _lecturers().discard(owner)
                st.rerun()
            return
        with st.form("lecturer_form", border=False):
            token = st.text_input("Lecturer token", type="password", key="lecturer_token")
            if st.form_submit_button("Sign in"):
                if lecturer_token_ok(token):
                    _lecturers().add(owner)
                    st.rerun()
                else:
                    st.error("That is not this server's lecturer token.")


def owner_label(owner: object) -> str:
    """How the run history names a run's owner, from this visitor's side."""
    if owner == owner_of(visitor_id()):
        return "you"
    if owner == "terminal":
        return "terminal"
    return "another visitor" if owner else "unknown"


def limits_form() -> None:
    """The lecturer's change of the class's limits, saved in the runs folder for every session."""
    now = class_limits()
    with st.form("lecturer_limits", border=False):
        running = st.number_input("Trainings running per visitor", 1, 16, now.max_running)
        waiting = st.number_input("Trainings waiting per visitor", 0, 64, now.max_queued)
        cap = st.number_input("Longest training (min)", 1.0, 10080.0, now.training_cap_s / 60, step=5.0)
        analysis = st.number_input("Longest analysis (s)", 1.0, 3600.0, now.analysis_cap_s, step=10.0)
        budget = st.number_input("Runs folder budget (GB)", 0.1, 10000.0, now.runs_budget_bytes / 1024**3, step=1.0)
        if st.form_submit_button("Save the class's limits"):
            save_limits(default_runs_dir(), replace(now, max_running=int(running), max_queued=int(waiting),
                                                    training_cap_s=cap * 60, analysis_cap_s=analysis,
                                                    runs_budget_bytes=int(budget * 1024**3)))
            st.toast("Saved: every visitor's next click follows the new limits.")


def allow_analysis(seconds: float) -> None:
    """Refuse (RefusedError) an analysis whose estimate here exceeds the class's cap, before it starts."""
    check_analysis(seconds, class_limits(), lecturer=is_lecturer())


def visible_runs(runs: list) -> list:
    """The runs this visitor is shown: the class's board, or (served mode with RESNET_EXPLORER_CLASS_BOARD=0)
    their own, the terminal's and the class's demo model."""
    limits, me = class_limits(), actor()
    return [r for r in runs if r.owner == "terminal" or limits.visible(r.owner, me.owner, me.lecturer)]
