"""One preprocessing path: an image trained on (ImageFolder) and the same file uploaded for
classification reach the network as the same tensor. Real files on disk, real PIL, real torch."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_core.data import (
    DatasetSpec,
    Normalizer,
    Preprocess,
    decode_image,
    load_dataset,
    load_image,
    load_image_folder,
    model_view,
    normalize,
    prepare,
    resize_crop,
    to_tensor,
)

# 400 x 250: wide, and over 6x the 32 px target, so a resize that reduces by whole factors first
# (reducing_gap) and one that does not give different pixels: only one shared path makes them agree.
SIZE = (400, 250)


def _picture(seed: int = 0, size: tuple[int, int] = SIZE) -> Image.Image:
    """Noise over a colour gradient: every resampling difference shows in some pixel."""
    rng = np.random.default_rng(seed)
    w, h = size
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None] * np.array([1.0, 0.5, 0.2], dtype=np.float32)
    pixels = np.clip(ramp + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _folder(root: Path, fmt: str) -> Path:
    """An ImageFolder: class 'a_target' holds only the picture under test, 'b_other' two more."""
    suffix = {"PNG": "png", "JPEG": "jpg"}[fmt]
    (root / "a_target").mkdir(parents=True)
    (root / "b_other").mkdir()
    _picture(0).save(root / "a_target" / f"target.{suffix}", fmt)
    for i in (1, 2):
        _picture(i, (120, 90)).save(root / "b_other" / f"other{i}.{suffix}", fmt)
    return root / "a_target" / f"target.{suffix}"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_training_and_upload_paths_give_the_same_normalised_tensor(tmp_path, fmt):
    target = _folder(tmp_path / "data", fmt)
    bundle = load_dataset(DatasetSpec(kind="imagefolder", root=str(tmp_path / "data"), image_size=32, seed=0))
    assert bundle.classes == ["a_target", "b_other"]
    # A class of one image keeps it for training; the trainer sees it like this with augmentation off.
    train_uint8 = bundle.train.images[bundle.train.labels == 0]
    assert train_uint8.shape == (1, 3, 32, 32) and train_uint8.dtype == torch.uint8
    norm = Normalizer(bundle.mean, bundle.std, torch.device("cpu"), torch.contiguous_format)
    trained = norm(train_uint8)[0]

    # The upload-and-classify path: the file's bytes, decoded, prepared with the run's preprocessing.
    data = target.read_bytes()
    pre = Preprocess(image_size=32, mean=tuple(bundle.mean), std=tuple(bundle.std))
    for image in (decode_image(data, target.name).image, load_image(data, target.name)):
        view, uploaded = prepare(image, pre)
        assert uploaded.shape == (3, 32, 32) and uploaded.dtype == torch.float32
        assert torch.allclose(uploaded, trained, atol=1e-6)
        # The picture the page shows is exactly the pixels trained on.
        assert np.array_equal(np.asarray(view), train_uint8[0].permute(1, 2, 0).numpy())


def test_the_folder_loader_and_model_view_share_one_resize_and_crop(tmp_path):
    _folder(tmp_path / "data", "PNG")
    bundle = load_image_folder(tmp_path / "data", image_size=24, val_fraction=0.5)
    picture = _picture(0)
    expected = torch.from_numpy(resize_crop(picture, 24)).permute(2, 0, 1)
    assert bundle.train.images[bundle.train.labels == 0][0].equal(expected)
    assert np.array_equal(np.asarray(model_view(picture, Preprocess(image_size=24))), resize_crop(picture, 24))


def test_model_view_resizes_then_crops_the_centre_as_imagenet_does():
    photo = _picture(3, (640, 480))
    pre = Preprocess(image_size=224, resize=256)
    view = model_view(photo, pre)
    assert view.size == (224, 224) and view.mode == "RGB"
    # Shorter side to 256 (341 x 256), then the centre 224 x 224: (58, 16) to (282, 240).
    # Only the region under the crop is resampled (bounded cost); the pixels match resizing the whole
    # image and cropping it, up to one grey level of rounding on a few pixels.
    resized = photo.resize((341, 256), Image.Resampling.BILINEAR, reducing_gap=3.0)
    reference = np.asarray(resized.crop((58, 16, 282, 240))).astype(int)
    difference = np.abs(np.asarray(view).astype(int) - reference)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
    assert np.array_equal(np.asarray(view), resize_crop(photo, 224, resize=256))
    # A recorded resize smaller than the crop is taken as the crop: never a black border.
    assert np.array_equal(resize_crop(photo, 64, resize=32), resize_crop(photo, 64))


def test_resize_crop_converts_other_modes_to_rgb_first():
    grey = _picture(4, (90, 60)).convert("L")
    out = resize_crop(grey, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_one_normalisation_formula_for_trainer_batches_and_single_images():
    rng = np.random.default_rng(5)
    batch = torch.from_numpy(rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8))
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    expected = (batch.double() / 255 - torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)) \
        / torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    trainer = Normalizer(mean, std, torch.device("cpu"), torch.channels_last)(batch)
    assert trainer.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(trainer.double(), expected, atol=1e-6)
    assert torch.equal(normalize(batch, mean, std), trainer.contiguous())
    pre = Preprocess(image_size=8, mean=mean, std=std)
    single = to_tensor(Image.fromarray(batch[1].permute(1, 2, 0).numpy()), pre)
    assert torch.equal(single, trainer[1].contiguous())


def test_jpeg_bytes_decode_to_the_same_pixels_through_both_decoders(tmp_path):
    buffer = io.BytesIO()
    _picture(6).save(buffer, "JPEG", quality=85)
    data = buffer.getvalue()
    assert np.array_equal(np.asarray(decode_image(data, "x.jpg").image), np.asarray(load_image(data, "x.jpg")))
