"""The Train page's data section under hostile input (issue 12): refused zip uploads are said at once and deleted,
replaced ones are deleted, and in served mode a typed folder outside the data root is refused with a message."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from resnet_core.data import DATA_ROOT_ENV
from resnet_core.data.uploads import UPLOADS_ENV
from resnet_core.data.zips import ZIP_FILES_ENV

from .hostile import png_bytes

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "2_Train.py")


@pytest.fixture
def page(tmp_path, monkeypatch) -> AppTest:
    monkeypatch.setenv("RESNET_EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv(UPLOADS_ENV, str(tmp_path / "uploads"))
    at = AppTest.from_file(PAGE, default_timeout=60)
    return at.run()


def _dataset_zip(count: int = 4) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(count):
            archive.writestr(f"pets/{'cats' if i % 2 else 'dogs'}/{i}.png", png_bytes(10, 10, (i * 40, 0, 0)))
    return buffer.getvalue()


def _uploads(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "uploads"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_a_refused_zip_is_said_at_once_by_its_name_and_deleted(page, tmp_path, monkeypatch):
    monkeypatch.setenv(ZIP_FILES_ENV, "3")
    page.selectbox(key="train_dataset").set_value("upload").run()
    page.file_uploader(key="train_zip").set_value(("[pets](https://evil.example).zip", _dataset_zip(6),
                                                   "application/zip")).run()
    assert not page.exception
    errors = [e.value for e in page.error]
    assert len(errors) == 1 and "the zip holds 6 entries, more than the 3 files allowed" in errors[0]
    assert errors[0].startswith("?pets?(https?//evil.example).zip: ")
    assert "](" not in errors[0]  # the visitor's file name is shown as text, never as a link
    assert _uploads(tmp_path) == []  # refused: nothing of it stays on the server
    page.button(key="train_start").click().run()
    assert not page.exception and any("uploaded zip was refused" in e.value for e in page.error)
    assert "train_job" not in page.session_state


def test_an_accepted_zip_is_kept_under_its_name_until_it_is_removed(page, tmp_path):
    page.selectbox(key="train_dataset").set_value("upload").run()
    page.file_uploader(key="train_zip").set_value(("pets.zip", _dataset_zip(), "application/zip")).run()
    assert not page.exception and not page.error
    kept = _uploads(tmp_path)
    assert [p.name for p in kept] == ["pets.zip"]
    page.run()  # a rerun reuses the same file
    assert _uploads(tmp_path) == kept
    page.file_uploader(key="train_zip").set_value(("other.zip", _dataset_zip(2), "application/zip")).run()
    assert [p.name for p in _uploads(tmp_path)] == ["other.zip"]  # the replaced one is deleted
    page.file_uploader(key="train_zip").set_value(None).run()
    assert _uploads(tmp_path) == []  # and the removed one


def test_served_mode_refuses_a_typed_folder_outside_the_data_root(page, tmp_path, monkeypatch):
    (tmp_path / "srv").mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "srv"))
    page.selectbox(key="train_dataset").set_value("imagefolder").run()
    page.text_input(key="train_folder").set_value("/etc").run()
    page.button(key="train_start").click().run()
    assert not page.exception
    errors = [e.value for e in page.error]
    assert len(errors) == 1 and "Could not start training: image folder '/etc': this server reads only" in errors[0]
    assert "train_job" not in page.session_state


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_served_mode_refuses_a_cifar_folder_outside_the_data_root_without_a_traceback(page, tmp_path, monkeypatch,
                                                                                        kind):
    (tmp_path / "srv").mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "srv"))
    page.selectbox(key="train_dataset").set_value(kind).run()
    page.text_input(key="train_root").set_value("/etc").run()
    assert not page.exception  # the preview under Start used to raise here (pages/2_Train.py:371)
    assert any("CIFAR folder '/etc': this server reads only" in w.value for w in page.warning)
    page.button(key="train_start").click().run()
    assert not page.exception
    errors = [e.value for e in page.error]
    assert len(errors) == 1 and "Could not start training: CIFAR folder '/etc': this server reads only" in errors[0]
    assert "train_job" not in page.session_state


def test_a_linked_shapes_set_too_big_is_refused_with_its_bytes_without_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_EXPLORER_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params.update({"n": "1000000", "n_val": "200000"})
    at.run()
    assert not at.exception
    assert any("would take 4,687.5 MB in memory, more than the 1,024 MB allowed" in w.value for w in at.warning)
    at.button(key="train_start").click().run()
    assert not at.exception and any("Could not start training: Shapes: 1,200,000 images" in e.value for e in at.error)
    assert "train_job" not in at.session_state
