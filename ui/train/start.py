"""The Train page's Start row: Start and Stop, what Start would train and how long it takes here (with the wait in
line), why it would be refused, and queueing the run."""

from __future__ import annotations

import streamlit as st

from resnet_core import ConfigError
from resnet_core.data import DatasetError
from resnet_core.device import best_device
from resnet_core.estimates import format_duration
from resnet_core.serving import RefusedError
from resnet_core.share import escape_markdown
from resnet_core.train import (
    TrainConfig,
    TrainConfigError,
    TrainerError,
    WeightsUnavailableError,
    arch_name,
    fetch_weights,
    is_cached,
    run_name,
)
from ui.demos import on_this_device
from ui.jobs import calibrated, start_stop
from ui.train.form import TrainForm
from ui.train.session import REFUSED_KEY, TrainSession
from ui.visitor import class_limits, owner_label, share


def _device(config: TrainConfig) -> str:
    return best_device() if config.device == "auto" else config.device


def _estimate(session: TrainSession, config: TrainConfig, seconds: float | None) -> str:
    """ " — about 2 min on this CPU, after about 3 min in line": the planned time, corrected by how long runs here
    really took, and the wait in the server's queue a run started now would have."""
    if seconds is None:
        return ""
    wait = session.queue.wait_for_new(_device(config))
    line = f", after about {format_duration(wait)} waiting in line" if wait >= 5 else ""
    return f" — {on_this_device(calibrated(seconds, _device(config)))}{line}"


def _refusal(session: TrainSession, config: TrainConfig, seconds: float | None) -> str | None:
    """Why Start would be refused for this visitor now (their share, the cap), before they press it."""
    refused = session.queue.refusal(session.me, class_limits(), seconds or 0.0, _device(config))
    return None if refused is None else str(refused)


def _start(form: TrainForm, session: TrainSession) -> None:
    """Queue the run: a worker process will load the data, build the model and train it."""
    config, spec = form.config(), form.dataset()
    spec.check_source()
    if form.finetune is not None and not is_cached(form.finetune):
        with st.spinner("Downloading the pretrained weights…"):  # here, so a failure is said at once
            fetch_weights(form.finetune)
    request = form.request(session.queue.unique_name(run_name(arch_name(form.architecture()), spec.kind)))
    estimate = form.planned_seconds(config) or 60.0  # the queue corrects it by what runs here really took
    session.started(session.queue.submit(form.label, [request], estimate, _device(config), **share()))


def _plan(form: TrainForm, session: TrainSession, where) -> None:
    """What Start would train, for how long here, and whether it would be refused."""
    try:
        preview = form.config()
        try:
            planned_data = form.dataset() if form.kind in ("shapes", "cifar10", "cifar100") else None
        except DatasetError as exc:  # a folder outside the data root, a Shapes set too big: said here, and at Start
            planned_data = None
            st.warning(escape_markdown(exc))
        # What Start would train, kept for tests (the command line's defaults must equal the page's).
        st.session_state["train_planned"] = (form.architecture(), preview, planned_data)
        seconds = form.planned_seconds(preview)  # one plan for the estimate and the refusal
        where.caption(f"{preview.optimizer.upper()}, lr {preview.lr:g}, {preview.schedule} schedule, "
                      f"{preview.epochs} epochs of batches of {preview.batch_size}"
                      + _estimate(session, preview, seconds))
        why_not = _refusal(session, preview, seconds)
        if why_not:
            where.warning(f"Start would be refused: {escape_markdown(why_not)}", icon=":material/block:")
    except TrainConfigError as exc:
        where.error(str(exc))


def start_row(form: TrainForm | None, session: TrainSession) -> None:
    """Start / Stop with the plan beside them; Start queues the run and redraws the page around it. `form` None:
    drawn above the form, while a run trains (Start is locked then)."""
    buttons = st.columns([1, 1, 4])
    start_clicked = start_stop(buttons[0], buttons[1], "Start", "train", session.running, session.stop,
                               can_stop=session.mine, type="primary")
    if REFUSED_KEY in st.session_state:
        st.warning(escape_markdown(st.session_state.pop(REFUSED_KEY)))
    if session.followed is not None and not session.mine:
        st.caption(f"You are watching `{session.followed.name}`, started by {owner_label(session.followed_owner)}: "
                   "read-only (only its owner or the lecturer can stop it).")
    if not session.running and form is not None:
        _plan(form, session, buttons[2])
    if not start_clicked or form is None:
        return
    try:
        _start(form, session)
    except WeightsUnavailableError as exc:
        st.warning(f"The pretrained weights are not available: {escape_markdown(exc)}")
    except (TrainConfigError, ConfigError, DatasetError, TrainerError, RefusedError) as exc:
        st.error(f"Could not start training: {escape_markdown(exc)}")
    except Exception as exc:  # noqa: BLE001 - a message, never a traceback
        st.error(f"Could not start training: {type(exc).__name__}: {escape_markdown(exc)}")
    else:
        st.rerun()
