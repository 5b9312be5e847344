"""The Train page in served mode (a lecturer token set), through AppTest with real worker processes: one
visitor's share (one running, one waiting, a reason for the rest, said before the click), another visitor's run
read-only in the history, and the lecturer's buttons."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from resnet_core.serving import Actor, owner_of, stop_run
from resnet_core.status import Status
from resnet_core.train import list_runs, read_run
from tests.pages.test_train_page import PAGE, TINY

pytestmark = pytest.mark.slow

A, B = "visitor-a-0123456789abcdefghijklmnopqrstu", "visitor-b-0123456789abcdefghijklmnopqrstu"


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("RESNET_EXPLORER_LECTURER_TOKEN", "token")
    yield tmp_path / "runs"
    for run in list_runs(tmp_path / "runs"):  # nothing left training
        if run.status is Status.RUNNING:
            stop_run(run.path, Actor("lecturer", lecturer=True))


def tab(visitor: str) -> AppTest:
    """One browser tab of `visitor` on the Train page, set to a small, long run (so it is still going)."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["model_config"] = TINY
    at.session_state["visitor_id"] = visitor
    at.run()
    for key, value in (("train_n_train", 200), ("train_n_val", 50), ("train_image_size", 16), ("train_epochs", 200),
                       ("train_batch", 50)):
        at.number_input(key=key).set_value(value)
    at.selectbox(key="train_device").set_value("cpu")
    return at.run()


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def test_one_visitor_in_three_tabs_gets_one_running_one_waiting_and_a_reason(served):
    first, second, third = tab(A), tab(A), tab(A)
    first.button(key="train_start").click().run()
    second.button(key="train_start").click().run()
    assert not first.exception and not second.exception and not first.error and not second.error
    third.run()
    assert any(t.startswith("Start would be refused: you already have 1 training(s) running and 1 waiting")
               for t in texts(third.warning))  # said before the click
    third.button(key="train_start").click().run()
    assert any(t.startswith("Could not start training: you already have") for t in texts(third.error))
    other = tab(B)  # another visitor is not affected by A's share
    assert not any("Start would be refused" in t for t in texts(other.warning))

    deadline = time.monotonic() + 60
    while not list_runs(served) or list_runs(served)[0].status is not Status.RUNNING:
        assert time.monotonic() < deadline, "the first run did not start"
        time.sleep(0.3)
    run = list_runs(served)[0]
    assert run.owner == owner_of(A)
    other.run()
    assert not any(b.label == "Stop this run" for b in other.button)  # B's history: A's run is read-only
    first.run()
    assert any(b.label == "Stop this run" for b in first.button)
    lecturer = tab(B)
    lecturer.session_state["visitor_id"] = "lecturer-0123456789abcdefghijklmnopqrstuvw"
    lecturer.run()
    lecturer.text_input(key="lecturer_token").set_value("token")
    lecturer.button(key="FormSubmitter:lecturer_form-Sign in").click().run()
    lecturer.run()
    assert any(b.label == "Stop this run" for b in lecturer.button)  # the lecturer may stop anyone's run
    assert read_run(run.path).status is Status.RUNNING
