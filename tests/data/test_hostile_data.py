"""Hostile images, folders and zips (issue 12): each refused or skipped with a message naming what was given,
within a memory bound measured in a subprocess; uploads leave nothing behind; served mode confines folders."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from resnet_core.data import (
    DATA_ROOT_ENV,
    DatasetError,
    DatasetSpec,
    ImageError,
    Preprocess,
    check_zip,
    clean_uploads,
    decode_image,
    discard_upload,
    extract_zip,
    load_dataset,
    load_image_folder,
    model_view,
    resize_crop,
    save_upload,
    shown,
    uploads_dir,
    visitor_path,
)
from resnet_core.data.folders import DATASET_BYTES_ENV
from resnet_core.data.uploads import EXTRACT_PREFIX, UPLOADS_ENV
from resnet_core.data.zips import ZIP_BYTES_ENV, ZIP_FILES_ENV
from tests.memory import MEMORY_BOUND_MB, run_measured

from .hostile import png_bytes, write_many_files_zip, write_zip_bomb


@pytest.fixture(scope="module")
def baseline_mb() -> float:
    """Peak RSS of a python that only imports the data package (torch included): what every script costs."""
    return run_measured("import resnet_core.data")[0]


def _class_folder(root: Path, per_class: int = 3) -> Path:
    for k, colour in enumerate([(220, 20, 20), (20, 20, 220)]):
        folder = root / f"class{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (folder / f"{i}.png").write_bytes(png_bytes(12 + i, 10, colour))
    return root


# ---- thin images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [20_000, 60_000])
def test_a_thin_strip_upload_is_refused_by_its_header_with_the_file_named(length):
    data = png_bytes(1, length)
    assert len(data) < 1000  # a few hundred bytes that used to cost 6.2 GB (20000) or a MemoryError (60000)
    with pytest.raises(ImageError) as info:
        decode_image(data, "strip.png")
    message = str(info.value)
    assert message.startswith("strip.png:") and f"1x{length}" in message and "50:1" in message
    assert "Crop it" in message


def test_an_ordinary_panorama_is_still_accepted():
    assert decode_image(png_bytes(4000, 500), "pano.png").image.size == (4000, 500)


@pytest.mark.slow
@pytest.mark.parametrize("size", [(1, 60_000), (60_000, 1), (3, 200_000)])
def test_resizing_a_thin_image_costs_what_its_output_needs(baseline_mb, size):
    # Straight into the one resize (as any caller holding a PIL image would): the 224 px crop of a
    # 1 x 60000 strip used to go through a 224 x 13,440,000 intermediate.
    code = ("from PIL import Image; from resnet_core.data import Preprocess, model_view, resize_crop\n"
            f"im = Image.new('RGB', {size}, (9, 99, 199))\n"
            "a = resize_crop(im, 224); v = model_view(im, Preprocess(image_size=224, resize=256))\n"
            "print(a.shape, v.size, a[100, 100].tolist())")
    peak, out = run_measured(code)
    assert "(224, 224, 3) (224, 224) [9, 99, 199]" in out
    assert peak < MEMORY_BOUND_MB and peak - baseline_mb < 64, (peak, baseline_mb)


def test_thin_and_wide_images_resize_to_the_requested_square_in_kilobytes():
    for size in [(1, 5000), (5000, 1), (2, 3)]:
        out = resize_crop(Image.new("RGB", size, (1, 2, 3)), 32)
        assert out.shape == (32, 32, 3) and (out == np.array([1, 2, 3], dtype=np.uint8)).all()
    assert model_view(Image.new("RGB", (1, 900)), Preprocess(image_size=16)).size == (16, 16)


@pytest.mark.slow
def test_an_imagefolder_skips_a_1x6000000_image_by_name_and_loads_the_rest(tmp_path, baseline_mb):
    root = _class_folder(tmp_path / "data")
    (root / "class0" / "thin.png").write_bytes(png_bytes(1, 6_000_000))
    (root / "class1" / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code = ("from resnet_core.data import load_image_folder\n"
            f"b = load_image_folder({str(root)!r}, image_size=64)\n"
            "print(len(b.train) + len(b.val)); print('|'.join(b.skipped))")
    peak, out = run_measured(code)
    count, skipped = out.splitlines()[-2:]
    assert count == "6"  # the six good images: one bad file never aborts the dataset
    assert "class0/thin.png: the image is 1x6000000 pixels" in skipped and "class1/junk.png" in skipped
    assert peak < MEMORY_BOUND_MB and peak - baseline_mb < 128, (peak, baseline_mb)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["16-bit grey PNG", "RGBA PNG", "palette PNG with transparency", "JPEG"])
def test_a_64_megapixel_image_of_a_few_kilobytes_decodes_within_the_bound(tmp_path, kind):
    # Under the 64 MP limit, so accepted: the image is reduced right after decoding (a JPEG decodes at
    # that scale), and 16-bit grey converts in bands; a 124 KB 16-bit PNG used to peak at 2.6 GB.
    side = 7999
    path = tmp_path / "big.png"
    if kind == "16-bit grey PNG":
        Image.fromarray(np.full((side, side), 40000, dtype=np.uint16)).save(path, format="PNG")
    elif kind == "RGBA PNG":
        Image.new("RGBA", (side, side), (10, 20, 30, 255)).save(path, format="PNG")
    elif kind == "JPEG":
        Image.new("RGB", (side, side), (200, 100, 50)).save(path, format="JPEG", quality=50)
    else:
        image = Image.new("P", (side, side), 0)
        image.putpalette([10, 20, 30] * 256)
        image.save(path, format="PNG", transparency=255)
    assert path.stat().st_size < 1.1e6
    code = ("from resnet_core.data import Preprocess, decode_image, model_view\n"
            f"d = decode_image(open({str(path)!r}, 'rb').read(), 'big.png')\n"
            "v = model_view(d.image, Preprocess(image_size=224, resize=256))\n"
            "print(*d.image.size, *v.size, *v.getpixel((100, 100)))")
    peak, out = run_measured(code)
    numbers = [int(v) for v in out.splitlines()[-1].split()]
    assert numbers[:4] == [4000, 4000, 224, 224]
    colour = {"16-bit grey PNG": (156, 156, 156), "JPEG": (199, 100, 50)}.get(kind, (10, 20, 30))
    assert all(abs(a - b) <= 2 for a, b in zip(numbers[4:], colour)), numbers
    assert peak < MEMORY_BOUND_MB, peak


def test_a_folder_too_big_to_hold_decoded_is_refused_before_decoding(tmp_path, monkeypatch):
    root = _class_folder(tmp_path / "data", per_class=4)
    monkeypatch.setenv(DATASET_BYTES_ENV, "1")  # 1 MB: 8 images at 256 px need 1.6 MB
    with pytest.raises(DatasetError, match=r"8 files at 256 px would take 1\.5 MB in memory, more than the 1 MB"):
        load_image_folder(root, image_size=256)
    assert len(load_image_folder(root, image_size=64).train) > 0  # 98 KB: fine


# ---- zips -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return write_zip_bomb(tmp_path_factory.mktemp("bomb") / "holiday photos.zip", gib=4)


@pytest.mark.slow
def test_a_4_mb_zip_holding_4_gib_is_refused_at_once_naming_the_upload(bomb, tmp_path, baseline_mb):
    assert bomb.stat().st_size < 6e6
    dest = tmp_path / "out"
    code = ("import time; from resnet_core.data import DatasetError, extract_zip\n"
            "t = time.perf_counter()\n"
            f"try:\n    extract_zip({str(bomb)!r}, {str(dest)!r})\n"
            "except DatasetError as e:\n    print('REFUSED', e)\n"
            "print('SECONDS', time.perf_counter() - t)")
    peak, out = run_measured(code)
    assert "REFUSED holiday photos.zip: the zip would unpack to 4,096 MB, more than the 1,024 MB allowed" in out
    assert float(out.split("SECONDS")[1]) < 1.0  # from its directory: nothing is inflated
    assert not dest.exists()  # no temporary disk used
    assert peak < MEMORY_BOUND_MB and peak - baseline_mb < 64, (peak, baseline_mb)


@pytest.mark.slow
def test_the_bomb_through_a_dataset_spec_names_the_zip_never_a_temporary_folder(bomb):
    spec = DatasetSpec(kind="imagefolder", root=str(bomb), image_size=16)
    for attempt in (spec.check_source, lambda: load_dataset(spec)):
        with pytest.raises(DatasetError) as info:
            attempt()
        assert str(info.value).startswith("holiday photos.zip:") and EXTRACT_PREFIX not in str(info.value)


def test_a_zip_lying_about_its_sizes_is_stopped_as_it_is_read(tmp_path):
    # 8 MB of zeros whose directory claims 1,000 bytes: the declared sizes pass, the reading does not.
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/a/x.png", png_bytes(4, 4))
        archive.writestr("data/b/zeros.png", bytes(8 << 20))
    raw = bytearray(path.read_bytes())
    directory = raw.rindex(b"PK\x01\x02")  # the last member's directory entry
    raw[directory + 24:directory + 28] = (1000).to_bytes(4, "little")  # its uncompressed size
    path.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    with pytest.raises(DatasetError, match=r"^liar\.zip: the zip is damaged: 'data/b/zeros\.png' could not be"):
        extract_zip(path, dest)
    assert not dest.exists()  # what was written before the refusal is removed


def test_the_zip_budget_is_set_by_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "three.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in ("d/a/1.bin", "d/a/2.bin", "d/b/3.bin"):
            archive.writestr(name, bytes(600_000))
    monkeypatch.setenv(ZIP_BYTES_ENV, "1")  # 1 MB: the directory declares 1.8 MB
    with pytest.raises(DatasetError, match=r"three\.zip: the zip would unpack to 2 MB, more than the 1 MB"):
        extract_zip(path, tmp_path / "out")
    monkeypatch.setenv(ZIP_BYTES_ENV, "2")
    assert extract_zip(path, tmp_path / "ok") == tmp_path / "ok" / "d"
    monkeypatch.setenv(ZIP_BYTES_ENV, "not a number")  # a mistyped setting keeps the default, never crashes
    assert extract_zip(path, tmp_path / "ok2") == tmp_path / "ok2" / "d"


@pytest.mark.slow
def test_a_zip_of_100000_tiny_files_is_refused_fast_by_its_count(tmp_path, baseline_mb):
    path = write_many_files_zip(tmp_path / "many.zip", 100_000)
    code = ("import time; from resnet_core.data import DatasetError, check_zip\n"
            "t = time.perf_counter()\n"
            f"try:\n    check_zip({str(path)!r}, 'my_dataset.zip')\n"
            "except DatasetError as e:\n    print('REFUSED', e)\n"
            "print('SECONDS', time.perf_counter() - t)")
    peak, out = run_measured(code)
    assert "REFUSED my_dataset.zip: the zip holds 100,000 entries, more than the 50,000 files allowed" in out
    assert float(out.split("SECONDS")[1]) < 0.5  # from the end record, before the directory is parsed
    assert peak < MEMORY_BOUND_MB and peak - baseline_mb < 32, (peak, baseline_mb)


def test_a_zip_whose_end_record_hides_its_count_is_still_refused(tmp_path, monkeypatch):
    path = write_many_files_zip(tmp_path / "sly.zip", 30)
    raw = bytearray(path.read_bytes())
    end = raw.rindex(b"PK\x05\x06")
    raw[end + 8:end + 12] = (3).to_bytes(2, "little") * 2  # "3 entries"
    path.write_bytes(bytes(raw))
    monkeypatch.setenv(ZIP_FILES_ENV, "10")
    with pytest.raises(DatasetError, match="sly.zip: the zip holds 30 entries, more than the 10 files allowed"):
        check_zip(path)


def test_zip_messages_show_outside_names_as_plain_text(tmp_path):
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../[Log in again](https://evil.example)![i](https://evil.example/a.png)", b"x")
    with pytest.raises(DatasetError) as info:
        check_zip(path, "[up](https://evil.example).zip")
    message = str(info.value)
    assert "](" not in message and "![" not in message and "[" not in message
    assert message.startswith("?up?(https?//evil.example).zip:")
    assert shown("a" * 500).endswith("…") and len(shown("a" * 500)) == 120


def test_an_imagefolder_inside_a_zip_is_named_by_the_zip(tmp_path):
    source = _class_folder(tmp_path / "src")
    path = tmp_path / "one class.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in (source / "class0").iterdir():
            archive.write(file, f"data/only/{file.name}")
        archive.writestr("data/empty/notes.txt", b"hello")
    with pytest.raises(DatasetError) as info:
        load_dataset(DatasetSpec(kind="imagefolder", root=str(path), image_size=16))
    message = str(info.value)
    assert message.startswith("image folder one class.zip: classification needs at least two classes")
    assert EXTRACT_PREFIX not in message and "/tmp" not in message
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"{EXTRACT_PREFIX}*/data/only"))


# ---- uploads on disk ---------------------------------------------------------------------------------------


@pytest.fixture
def uploads(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(UPLOADS_ENV, str(tmp_path / "uploads"))
    return tmp_path / "uploads"


def test_an_upload_keeps_its_own_safe_name_and_is_shared_only_by_its_owner(uploads):
    first = save_upload(b"PK zip bytes", "My cats & dogs.zip", owner="s1")
    assert first.name == "My cats _ dogs.zip" and first.read_bytes() == b"PK zip bytes"
    assert first.parent.parent == uploads_dir() == uploads
    assert save_upload(b"PK zip bytes", "My cats & dogs.zip", owner="s1") == first  # a rerun reuses it
    assert save_upload(b"PK zip bytes", "My cats & dogs.zip", owner="s2") != first  # another session's copy
    assert save_upload(b"x", "../../etc/passwd", owner="s1").name == "passwd.zip"
    assert save_upload(b"x", "[a](x)!.zip").name == "a_(x).zip"
    assert save_upload(b"x", "[a](https://e.x).zip").name == "e.x).zip"  # only the part after the last '/'

    assert save_upload(b"x", "...").name == "upload.zip"


def test_discarding_removes_an_upload_and_nothing_else(uploads, tmp_path):
    path = save_upload(b"PK", "a.zip", owner="s")
    assert discard_upload(path) and not path.exists() and not path.parent.exists()
    outside = tmp_path / "mine.zip"
    outside.write_bytes(b"keep")
    assert not discard_upload(outside) and outside.exists()
    assert not discard_upload(None) and not discard_upload(path)


def test_server_start_removes_every_upload_and_later_cleans_only_stale_ones(uploads):
    old = save_upload(b"old", "old.zip", owner="s")
    fresh = save_upload(b"fresh", "fresh.zip", owner="s")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    os.utime(old.parent, (day_ago, day_ago))
    assert clean_uploads(max_age_s=24 * 3600) == 1 and not old.exists() and fresh.exists()
    assert clean_uploads() == 1 and not fresh.exists()  # at server start: all of them


def test_a_refused_upload_checked_at_once_leaves_nothing(uploads, monkeypatch):
    monkeypatch.setenv(ZIP_FILES_ENV, "5")
    path = save_upload(write_many_files_zip(uploads.parent / "src.zip", 8).read_bytes(), "eight.zip", owner="s")
    with pytest.raises(DatasetError, match="^eight.zip: the zip holds 8 entries"):
        DatasetSpec(kind="imagefolder", root=str(path)).check_source()
    discard_upload(path)
    assert not any(uploads.iterdir())


# ---- served mode -------------------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "srv"
    _class_folder(root / "flowers")
    (root / "to-etc").symlink_to("/etc")
    (root / "loop").symlink_to(root / "loop")
    (tmp_path / "secret").mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    return root.resolve()


def test_without_a_data_root_paths_are_read_as_typed(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert visitor_path("/etc") == Path("/etc")
    assert visitor_path("~/data") == Path("~/data").expanduser()


def test_served_mode_reads_folders_inside_the_data_root(served):
    assert visitor_path("flowers") == served / "flowers"
    assert visitor_path(str(served / "flowers")) == served / "flowers"
    assert visitor_path("flowers/../flowers") == served / "flowers"
    assert visitor_path("~") == served / "~"  # no home folder: a name like any other, inside the root
    assert len(load_image_folder(visitor_path("flowers"), image_size=8).classes) == 2


@pytest.mark.parametrize("typed", ["/etc", "..", "../secret", "flowers/../../secret", "to-etc", "to-etc/ssl", "a\x00b",
                                   "loop"])
def test_served_mode_refuses_every_way_out_of_the_data_root(served, typed):
    with pytest.raises(DatasetError) as info:
        visitor_path(typed, "image folder")
    message = str(info.value)
    assert message.startswith(f"image folder '{shown(typed)}': this server reads only folders inside its data")
    assert DATA_ROOT_ENV in message and "upload a .zip" in message


def test_served_mode_skips_images_that_link_out_of_the_data_root(served, tmp_path):
    outside = tmp_path / "secret" / "photo.png"
    outside.write_bytes(png_bytes(10, 10))
    (served / "flowers" / "class0" / "sneaky.png").symlink_to(outside)
    bundle = load_image_folder(visitor_path("flowers"), image_size=8)
    assert len(bundle.train) + len(bundle.val) == 6
    assert bundle.skipped == ["class0/sneaky.png: a link to a file outside the data folder; it was skipped"]


@pytest.mark.parametrize("kind, root", [("cifar10", "/etc"), ("cifar100", "../secret"), ("imagefolder", "to-etc"),
                                        ("imagefolder", "/etc/passwd.zip")])
def test_served_mode_refuses_a_spec_outside_the_data_root_for_every_kind(served, kind, root):
    """A spec that never went through the page's typed-folder check (a queued request, a hand-made one) is refused
    by the engine too: at check_source, and again when a worker loads it."""
    spec = DatasetSpec(kind=kind, root=root if root.startswith("/") else str(served / root), download=False)
    for attempt in (spec.check_source, lambda: load_dataset(spec)):
        with pytest.raises(DatasetError, match="this server reads only folders inside its data folder"):
            attempt()


def test_served_mode_accepts_the_data_root_and_the_uploads_folder(served, tmp_path, monkeypatch):
    monkeypatch.setenv(UPLOADS_ENV, str(tmp_path / "uploads"))
    DatasetSpec(kind="imagefolder", root=str(served / "flowers")).check_source()
    DatasetSpec(kind="cifar10", root=str(served / "cifar")).check_served()  # may be downloaded there
    DatasetSpec(kind="imagefolder", root=str(tmp_path / "uploads" / "a" / "pets.zip")).check_served()


# ---- generated datasets ------------------------------------------------------------------------------------


def test_a_shapes_set_too_big_to_hold_is_refused_from_its_numbers_in_kilobytes(baseline_mb):
    """The link-reachable n=1000000&n_val=200000 once drove a worker to 9.6 GB: now refused before any drawing,
    naming its bytes and the limit, whether built directly or from a queued request's dict."""
    code = (
        "from resnet_core.data import DatasetSpec, DatasetError\n"
        "for make in (lambda: DatasetSpec(kind='shapes', n_train=1_000_000, n_val=200_000),\n"
        "             lambda: DatasetSpec.from_dict({'kind': 'shapes', 'n_train': 1000000, 'n_val': 200000}),\n"
        "             lambda: DatasetSpec(kind='shapes', n_train=2000, n_val=200, image_size=512)):\n"
        "    try:\n        make()\n    except DatasetError as exc:\n        print(exc)\n"
    )
    peak, out = run_measured(code)
    lines = out.splitlines()
    assert lines[0] == ("Shapes: 1,200,000 images at 32 px would take 4,687.5 MB in memory, more than the 1,024 MB "
                        f"allowed (set by {DATASET_BYTES_ENV} on the server); use fewer images or a smaller image size")
    assert lines[1] == lines[0] and "2,200 images at 512 px would take 2,200.0 MB" in lines[2]
    assert peak - baseline_mb < 16, (peak, baseline_mb)


def test_the_shapes_budget_is_the_dataset_budget(monkeypatch):
    assert DatasetSpec(kind="shapes", n_train=10000, n_val=2000, image_size=64).n_train == 10000  # 192 MB: fine
    monkeypatch.setenv(DATASET_BYTES_ENV, "100")
    with pytest.raises(DatasetError, match=r"12,000 images at 64 px would take 187.5 MB in memory, more than the 100"):
        DatasetSpec(kind="shapes", n_train=10000, n_val=2000, image_size=64)


@pytest.mark.parametrize("name", ["sign in at https://evil.example/login.zip", "www.evil.example.zip",
                                  "WWW.EVIL.EXAMPLE", "bob@evil.example.zip", ":material/home: pets.zip"])
def test_names_shown_in_messages_make_no_link(name):
    """shown() names go into st.error as they are: no bare URL, www. name or e-mail address may be autolinked
    (checked in Chromium against Streamlit 1.67: no <a> drawn for any of these)."""
    from tests.test_share import _AUTOLINKS

    text = shown(name)
    assert not any(p.search(text) for p in _AUTOLINKS), text
    assert text.replace("\u2060", "").replace("?", "") == "".join(c for c in name if c not in ":@")
