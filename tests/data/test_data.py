"""Datasets: Shapes (deterministic, exact masks), CIFAR through torchvision's loader, ImageFolder and zips."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import pickle
import stat
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets import CIFAR10

from resnet_core.data import (
    SHAPES_CLASSES,
    DataBundle,
    DatasetError,
    DatasetSpec,
    ImageSet,
    ShapesStyle,
    cifar_files,
    extract_zip,
    load_cifar,
    load_dataset,
    load_image_folder,
    load_shapes,
    make_shapes,
    normalize,
)

# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes() -> ImageSet:
    return make_shapes(1000, seed=7)


def test_shapes_are_deterministic_from_the_seed(shapes: ImageSet) -> None:
    again = make_shapes(1000, seed=7)
    assert torch.equal(shapes.images, again.images)
    assert torch.equal(shapes.labels, again.labels)
    assert torch.equal(shapes.masks, again.masks)
    other = make_shapes(1000, seed=8)
    assert not torch.equal(shapes.images, other.images)
    assert not torch.equal(shapes.masks, other.masks)


def test_shapes_tensors_have_the_promised_types_and_shapes(shapes: ImageSet) -> None:
    assert shapes.images.dtype == torch.uint8 and shapes.images.shape == (1000, 3, 32, 32)
    assert shapes.labels.dtype == torch.int64 and shapes.labels.shape == (1000,)
    assert shapes.masks.dtype == torch.bool and shapes.masks.shape == (1000, 32, 32)
    assert len(SHAPES_CLASSES) == 10 and len(set(SHAPES_CLASSES)) == 10
    assert int(shapes.labels.min()) == 0 and int(shapes.labels.max()) == 9
    # Images use the whole range (cluttered, noisy backgrounds), not a handful of flat colours.
    assert shapes.images.float().std() > 40
    assert torch.unique(shapes.images[0].reshape(3, -1), dim=1).shape[1] > 200


def test_shapes_classes_are_exactly_balanced(shapes: ImageSet) -> None:
    assert shapes.class_counts(10) == [100] * 10
    # ... but not in label order: the order is shuffled.
    assert not torch.equal(shapes.labels[:10], torch.arange(10))


def test_every_mask_holds_a_whole_visible_object(shapes: ImageSet) -> None:
    area = shapes.masks.sum(dim=(1, 2))
    assert int(area.min()) >= 12, "every image shows an object of at least 12 pixels"
    assert float(area.float().mean()) / (32 * 32) < 0.3, "objects leave room for background"
    # Objects sit inside the frame: few touch the border, and those only with a sliver.
    border = shapes.masks.clone()
    border[:, 1:-1, 1:-1] = False
    on_border = border.sum(dim=(1, 2))
    assert (on_border > 0).float().mean() < 0.1
    assert int(on_border.max()) <= 0.25 * int(area[on_border.argmax()])


def test_mask_is_exactly_the_object_pixels() -> None:
    # Without noise, texture, shading and distractors the object is one flat colour: the pixels of
    # that colour must be the mask, pixel for pixel.
    clean = ShapesStyle(noise_std=0.0, texture_amp=0.0, max_strokes=0, max_blobs=0, shade=0.0)
    data = make_shapes(200, seed=1, style=clean)
    for img, mask in zip(data.images, data.masks):
        colour = img[:, mask][:, 0]
        same = (img == colour[:, None, None]).all(dim=0)
        assert torch.equal(same & mask, mask), "the object's pixels all have the object's colour"
        assert (same & ~mask).sum() <= 2, "background pixels (a smooth gradient) rarely share it"


def test_hollow_shapes_have_holes_and_solid_ones_do_not(shapes: ImageSet) -> None:
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")

    def centre_filled(name: str) -> torch.Tensor:
        masks = shapes.masks[shapes.labels == SHAPES_CLASSES.index(name)]
        area = masks.sum(dim=(1, 2))
        cy = (masks * ys).sum(dim=(1, 2)) / area
        cx = (masks * xs).sum(dim=(1, 2)) / area
        return masks[torch.arange(len(masks)), cy.long(), cx.long()].float()

    for solid in ("circle", "square", "cross"):
        assert centre_filled(solid).mean() == 1.0, solid
    for hollow in ("ring", "frame"):
        assert centre_filled(hollow).mean() < 0.1, hollow


def test_shapes_scale_to_other_image_sizes() -> None:
    big = make_shapes(20, seed=0, size=64)
    assert big.images.shape == (20, 3, 64, 64) and big.masks.shape == (20, 64, 64)
    # The same scene at twice the resolution: about four times the mask pixels.
    small = make_shapes(20, seed=0, size=32)
    ratio = big.masks.sum().item() / small.masks.sum().item()
    assert 3.5 < ratio < 4.5


def test_bad_shapes_arguments_get_clear_messages() -> None:
    with pytest.raises(DatasetError, match="must be a whole number >= 1"):
        make_shapes(0)
    with pytest.raises(DatasetError, match="from 8 to 512"):
        make_shapes(10, size=4)


def test_load_shapes_gives_disjoint_sets_stats_and_a_json_description() -> None:
    data = load_shapes(n_train=300, n_val=100, seed=3)
    assert isinstance(data, DataBundle)
    assert len(data.train) == 300 and len(data.val) == 100
    assert data.classes == SHAPES_CLASSES
    assert data.train.masks is not None and data.val.masks is not None
    train_hashes = {hashlib.sha1(img.numpy().tobytes()).hexdigest() for img in data.train.images}
    assert not any(hashlib.sha1(img.numpy().tobytes()).hexdigest() in train_hashes for img in data.val.images)
    # The stats are the train set's own.
    pixels = data.train.images.float() / 255
    assert np.allclose(data.mean, pixels.mean(dim=(0, 2, 3)).numpy(), atol=1e-3)
    assert np.allclose(data.std, pixels.std(dim=(0, 2, 3)).numpy(), atol=2e-3)
    described = json.loads(json.dumps(data.description))
    assert described["kind"] == "shapes" and described["n_train"] == 300 and described["seed"] == 3
    assert load_shapes(300, 100, seed=3).train.images.equal(data.train.images)


def test_normalize_maps_uint8_to_standardised_float() -> None:
    images = torch.tensor([0, 255], dtype=torch.uint8).repeat(2, 3, 1, 1).view(2, 3, 1, 2)
    out = normalize(images, (0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    assert out.dtype == torch.float32 and out.shape == images.shape
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([-1.0, -1.0, 0.0]))
    assert torch.allclose(out[0, :, 0, 1], torch.tensor([1.0, 3.0, 1.0]))
    assert images.dtype == torch.uint8, "the input is left as it was"


# --------------------------------------------------------------------------------------------
# CIFAR, in the real pickle format, through torchvision's loader
# --------------------------------------------------------------------------------------------

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_batch(seed: int, n: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"batch_label": f"batch {seed}", "labels": rng.integers(0, 10, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "filenames": [f"img_{seed}_{i}.png" for i in range(n)]}


def make_tiny_cifar(root: Path, per_batch: int = 3) -> dict[str, dict]:
    """A CIFAR-10 folder in the original format (Python pickles of 3072-byte rows), a few images per file."""
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    batches = {}
    for i, (name, _) in enumerate(CIFAR10.train_list + CIFAR10.test_list):
        batches[name] = _cifar_batch(i, per_batch)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    meta = {"label_names": CIFAR_NAMES, "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


def test_tiny_cifar_folder_loads_through_torchvision(tmp_path: Path) -> None:
    batches = make_tiny_cifar(tmp_path)
    data = load_cifar(tmp_path, "cifar10", download=False, verify_checksums=False)
    assert data.classes == CIFAR_NAMES
    assert data.train.images.shape == (15, 3, 32, 32) and data.val.images.shape == (3, 3, 32, 32)
    assert data.train.images.dtype == torch.uint8 and data.train.masks is None
    expected = [label for i in range(1, 6) for label in batches[f"data_batch_{i}"]["labels"]]
    assert data.train.labels.tolist() == expected
    assert data.val.labels.tolist() == batches["test_batch"]["labels"]
    # Each row is the red plane, then green, then blue, each 32x32 row-major.
    row = batches["data_batch_1"]["data"][0]
    assert np.array_equal(data.train.images[0].numpy(), row.reshape(3, 32, 32))
    assert data.mean == pytest.approx((0.4914, 0.4822, 0.4465), abs=1e-4)
    assert data.description["kind"] == "cifar10" and data.description["n_train"] == 15


def test_cifar_checksums_are_checked_by_default(tmp_path: Path) -> None:
    make_tiny_cifar(tmp_path)
    with pytest.raises(DatasetError, match="data_batch_1 is corrupted"):
        load_cifar(tmp_path, "cifar10", download=False)


def test_offline_cifar_names_the_files_to_place(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as info:
        load_cifar(tmp_path / "data", "cifar10", download=False)
    message = str(info.value)
    for name in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta", "cifar-10-python.tar.gz",
                 str(tmp_path / "data" / "cifar-10-batches-py")):
        assert name in message
    assert cifar_files("cifar100") == ["cifar-100-python/train", "cifar-100-python/test", "cifar-100-python/meta"]


def test_failed_cifar_download_explains_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 9 (discard) refuses connections: the download fails at once, as it does offline.
    monkeypatch.setattr(CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(DatasetError, match="could not be downloaded") as info:
        load_cifar(tmp_path, "cifar10", download=True)
    assert "data_batch_1" in str(info.value) and "cifar-10-python.tar.gz" in str(info.value)
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".*part")), "no partial file is left"


def _tarball(source: Path, dest: Path) -> bytes:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(source / CIFAR10.base_folder, arcname=CIFAR10.base_folder)
    return dest.read_bytes()


def test_cifar_downloads_with_progress_then_extracts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tiny_cifar(tmp_path / "src")
    served = tmp_path / "served"
    served.mkdir()
    archive = _tarball(tmp_path / "src", served / CIFAR10.filename)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(CIFAR10, "url", f"http://127.0.0.1:{server.server_port}/{CIFAR10.filename}")
        monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(archive).hexdigest())
        calls: list[tuple[float, str]] = []
        data = load_cifar(tmp_path / "data", "cifar10", download=True,
                          progress=lambda f, m: calls.append((f, m)), verify_checksums=False)
    finally:
        server.shutdown()
        server.server_close()
    assert len(data.train) == 15 and len(data.val) == 3
    assert (tmp_path / "data" / CIFAR10.filename).read_bytes() == archive
    fractions = [f for f, m in calls if m.startswith("downloading")]
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert any("extracting" in m for _, m in calls)


# --------------------------------------------------------------------------------------------
# ImageFolder and zips
# --------------------------------------------------------------------------------------------

COLOURS = {"apples": (200, 30, 30), "leaves": (30, 180, 40), "sky": (40, 60, 220)}


def make_image_folder(root: Path, per_class: int = 5) -> Path:
    for k, (name, colour) in enumerate(COLOURS.items()):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = (24 + 4 * i, 18 + 2 * k)  # varied sizes and aspect ratios
            Image.new("RGB", size, colour).save(root / name / f"{i}.png")
    return root


def test_image_folder_loads_resizes_and_skips_a_corrupt_file(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "ds")
    png = (root / "sky" / "0.png").read_bytes()
    (root / "sky" / "broken.png").write_bytes(png[: len(png) // 2])
    (root / ".DS_Store").write_bytes(b"\0\0")
    data = load_image_folder(root, image_size=16, val_fraction=0.4, seed=0)
    assert data.classes == ["apples", "leaves", "sky"]
    assert len(data.train) + len(data.val) == 15
    assert data.train.images.shape[1:] == (3, 16, 16) and data.train.images.dtype == torch.uint8
    assert len(data.skipped) == 1 and "broken.png" in data.skipped[0]
    assert data.description["skipped"] == 1
    # Stratified: each class gives two of its five images to validation.
    assert data.val.class_counts(3) == [2, 2, 2] and data.train.class_counts(3) == [3, 3, 3]
    for images, labels in ((data.train.images, data.train.labels), (data.val.images, data.val.labels)):
        for img, label in zip(images, labels):
            colour = torch.tensor(list(COLOURS.values())[label], dtype=torch.uint8)
            assert torch.equal(img, colour.view(3, 1, 1).expand(3, 16, 16))
    assert data.mean[0] == pytest.approx(sum(c[0] for c in COLOURS.values()) / 3 / 255, abs=1e-3)


def test_image_folder_split_depends_on_the_seed_only(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (8, 8), (i * 20, 0, 100 if name == "a" else 200)).save(root / name / f"{i}.png")
    first = load_image_folder(root, image_size=8, seed=1)
    assert torch.equal(first.val.images, load_image_folder(root, image_size=8, seed=1).val.images)
    assert not torch.equal(first.val.images, load_image_folder(root, image_size=8, seed=2).val.images)


def test_short_side_resize_then_centre_crop(tmp_path: Path) -> None:
    wide = np.zeros((20, 40, 3), dtype=np.uint8)
    wide[:, :10] = (255, 0, 0)
    wide[:, 10:30] = (0, 255, 0)  # the central square survives the crop
    wide[:, 30:] = (255, 0, 0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(wide).save(tmp_path / name / "x.png")
        Image.fromarray(wide).save(tmp_path / name / "y.png")
    data = load_image_folder(tmp_path, image_size=10, val_fraction=0.5)
    assert data.train.images.shape[1:] == (3, 10, 10)
    inner = data.train.images[:, :, :, 1:-1]  # the outer columns blend with their neighbours
    assert (inner[:, 1] == 255).all() and (inner[:, 0] == 0).all()
    assert (data.train.images[:, 1] > 200).all() and (data.train.images[:, 0] < 55).all()


def test_fewer_than_two_classes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "only").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "only" / "a.png")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("not an image")
    with pytest.raises(DatasetError, match="at least two classes"):
        load_image_folder(tmp_path)


def test_empty_missing_and_loose_folders_get_clear_messages(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="it is empty"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
    (tmp_path / "loose").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "loose" / "a.png")
    with pytest.raises(DatasetError, match="one sub-folder per class"):
        load_image_folder(tmp_path / "loose")


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def test_zip_upload_extracts_and_loads(tmp_path: Path) -> None:
    root = make_image_folder(tmp_path / "src", per_class=3)
    entries = {f"mydata/{p.relative_to(root).as_posix()}": p.read_bytes() for p in sorted(root.rglob("*.png"))}
    entries["__MACOSX/._junk"] = b"resource fork"
    data = _zip_bytes(entries)
    found = extract_zip(data, tmp_path / "out")
    assert found == tmp_path / "out" / "mydata"
    bundle = load_image_folder(found, image_size=8)
    assert bundle.classes == list(COLOURS) and len(bundle.train) + len(bundle.val) == 9
    # The same zip given as a path, through a DatasetSpec (as the CLI does).
    (tmp_path / "upload.zip").write_bytes(data)
    spec = DatasetSpec(kind="imagefolder", root=str(tmp_path / "upload.zip"), image_size=8, n_train=4)
    capped = load_dataset(spec)
    assert len(capped.train) == 4 and capped.description["full_n_train"] > 4
    assert capped.description["root"] == str(tmp_path / "upload.zip")


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "/abs/evil.png"])
def test_zip_slip_is_refused_and_nothing_is_written(tmp_path: Path, name: str) -> None:
    data = _zip_bytes({"good/a.png": b"x", name: b"payload"})
    dest = tmp_path / "box" / "out"
    with pytest.raises(DatasetError, match="refused"):
        extract_zip(data, dest)
    assert not dest.exists()
    assert not list(tmp_path.rglob("evil.png"))


def test_zip_with_a_symlink_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("cls/a.png", b"x")
        link = zipfile.ZipInfo("cls/passwd")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(DatasetError, match="symbolic link"):
        extract_zip(buffer.getvalue(), tmp_path / "out")
    with pytest.raises(DatasetError, match="not a readable .zip"):
        extract_zip(b"this is not a zip", tmp_path / "out2")


# --------------------------------------------------------------------------------------------
# DatasetSpec
# --------------------------------------------------------------------------------------------


def test_dataset_spec_round_trips_and_validates() -> None:
    spec = DatasetSpec(kind="cifar100", root="/data", n_train=500, seed=2)
    assert DatasetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    with pytest.raises(DatasetError, match="unknown"):
        DatasetSpec(kind="mnist")
    with pytest.raises(DatasetError, match="needs a root"):
        DatasetSpec(kind="cifar10")
    with pytest.raises(DatasetError, match="n_train"):
        DatasetSpec(n_train=0)
    with pytest.raises(DatasetError, match="unknown field"):
        DatasetSpec.from_dict({"kind": "shapes", "colour": "red"})


def test_load_dataset_shapes_and_capped_cifar(tmp_path: Path) -> None:
    data = load_dataset(DatasetSpec(n_train=50, n_val=20, seed=1))
    assert len(data.train) == 50 and len(data.val) == 20 and data.classes == SHAPES_CLASSES
    make_tiny_cifar(tmp_path, per_batch=4)
    with pytest.raises(DatasetError, match="corrupted"):
        load_dataset(DatasetSpec(kind="cifar10", root=str(tmp_path), download=False))
    spec = DatasetSpec(kind="cifar10", root=str(tmp_path), download=False, verify_checksums=False, n_train=10, n_val=2)
    capped = load_dataset(spec)
    assert len(capped.train) == 10 and len(capped.val) == 2
    assert capped.description["full_n_train"] == 20 and capped.description["n_train"] == 10


def test_an_upload_is_saved_once_under_its_content_name(tmp_path, monkeypatch):
    from resnet_core.data import save_upload

    monkeypatch.setenv("RESNET_EXPLORER_UPLOADS_DIR", str(tmp_path))
    first = save_upload(b"PK\x05\x06" + b"\0" * 18)
    assert first.read_bytes().startswith(b"PK") and first.suffix == ".zip"
    assert save_upload(b"PK\x05\x06" + b"\0" * 18) == first
    assert save_upload(b"other bytes") != first
