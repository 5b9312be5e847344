"""Uploaded images: every format, odd colour modes, and a corpus of bad files made here."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from resnet_core.data import (
    MAX_PIXELS,
    ImageError,
    decode_image,
    decode_images,
    load_image,
    sample_images,
    sniff_format,
)


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _halves(size=(40, 20), left=(255, 0, 0), right=(0, 0, 255)) -> Image.Image:
    """Left half one colour, right half another: orientation and colour are easy to check."""
    w, h = size
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = left
    arr[:, w // 2:] = right
    return Image.fromarray(arr)


def _close(pixel, expected, tol=12) -> bool:
    return all(abs(int(a) - int(b)) <= tol for a, b in zip(pixel, expected))


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp"),
                                     ("GIF", "gif"), ("TIFF", "tif")])
def test_every_supported_format_decodes_to_rgb(fmt, ext):
    src = _halves()
    decoded = decode_image(_encode(src, fmt), f"photo.{ext}")
    assert decoded.format == fmt
    assert decoded.image.mode == "RGB" and decoded.image.size == (40, 20)
    assert _close(decoded.image.getpixel((5, 10)), (255, 0, 0), tol=30)
    assert _close(decoded.image.getpixel((35, 10)), (0, 0, 255), tol=30)
    assert decoded.notes == ()


def test_exif_orientation_is_applied():
    src = _halves((40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the left edge ends up on top
    image = load_image(_encode(src, "JPEG", exif=exif, quality=95), "phone.jpg")
    assert image.size == (20, 40)
    assert _close(image.getpixel((10, 5)), (255, 0, 0), tol=30)
    assert _close(image.getpixel((10, 35)), (0, 0, 255), tol=30)


def test_grayscale_becomes_three_equal_channels():
    grey = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (8, 1)), mode="L")
    image = load_image(_encode(grey, "PNG"), "grey.png")
    arr = np.asarray(image)
    assert image.mode == "RGB"
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    assert (arr[0, :, 0] == np.arange(0, 256, 4)).all()


def test_rgba_is_composited_on_white():
    arr = np.zeros((10, 10, 4), np.uint8)
    arr[:, :5] = (255, 0, 0, 255)  # opaque red
    arr[:, 5:] = (0, 0, 0, 0)      # fully transparent (black underneath)
    image = load_image(_encode(Image.fromarray(arr, "RGBA"), "PNG"), "logo.png")
    assert image.getpixel((2, 2)) == (255, 0, 0)
    assert image.getpixel((8, 2)) == (255, 255, 255)


def test_palette_with_transparency_is_composited_on_white():
    pal = Image.new("P", (10, 10), 0)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    for x in range(5):
        for y in range(10):
            pal.putpixel((x, y), 1)
    data = _encode(pal, "PNG", transparency=0)  # palette index 0 (black) is transparent
    image = load_image(data, "icon.png")
    assert image.getpixel((2, 2)) == (0, 255, 0)
    assert image.getpixel((8, 2)) == (255, 255, 255)


def test_palette_gif_without_transparency_keeps_colours():
    image = load_image(_encode(_halves().convert("P"), "GIF"), "x.gif")
    assert _close(image.getpixel((5, 5)), (255, 0, 0), tol=5)


def test_cmyk_jpeg_converts_to_the_right_colours():
    arr = np.zeros((10, 20, 4), np.uint8)
    arr[:, :10] = (255, 0, 0, 0)  # pure cyan ink
    arr[:, 10:] = (0, 0, 0, 255)  # pure black ink
    image = load_image(_encode(Image.fromarray(arr, "CMYK"), "JPEG", quality=95), "print.jpg")
    assert image.mode == "RGB"
    assert _close(image.getpixel((3, 5)), (0, 255, 255), tol=20)
    assert _close(image.getpixel((16, 5)), (0, 0, 0), tol=20)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16bit_grey_is_scaled_not_clipped(fmt):
    values = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    data = _encode(Image.fromarray(values), fmt)
    decoded = decode_image(data, f"scan.{fmt.lower()}")
    assert decoded.original_mode.startswith("I")
    row = np.asarray(decoded.image)[0, :, 0]
    # Clipping would give [0, 255, 255, 255]; scaling by 255/65535 keeps the grey levels.
    assert row.tolist() == [0, 64, 128, 255]


def test_32bit_integer_with_16bit_range_is_scaled():
    values = np.array([[0, 1000, 30000, 65535]], dtype=np.int32).repeat(3, axis=0)
    image = load_image(_encode(Image.fromarray(values, "I"), "TIFF"), "depth.tif")
    row = np.asarray(image)[0, :, 0]
    assert row[0] == 0 and row[-1] == 255 and 100 < row[2] < 130 and row[1] < 10


def test_animated_gif_uses_first_frame_and_says_so():
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    buffer = io.BytesIO()
    red.save(buffer, "GIF", save_all=True, append_images=[blue], duration=100)
    decoded = decode_image(buffer.getvalue(), "anim.gif")
    assert decoded.image.getpixel((4, 4)) == (255, 0, 0)
    assert any("first frame" in n and "2 frames" in n for n in decoded.notes)


def test_empty_file_is_refused_by_name():
    with pytest.raises(ImageError, match=r"^empty\.jpg: the file is empty \(0 bytes\)"):
        load_image(b"", "empty.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "BMP", "TIFF"])
def test_truncated_file_says_truncated_and_what_to_do(fmt):
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (120, 120, 3), dtype=np.uint8))
    data = _encode(noisy, fmt)
    with pytest.raises(ImageError) as info:
        load_image(data[: len(data) // 2], f"cut.{fmt.lower()}")
    message = str(info.value)
    assert message.startswith(f"cut.{fmt.lower()}: truncated {fmt}")
    assert "re-export or re-download" in message


def test_file_cut_inside_the_header_is_named_by_its_magic():
    data = _encode(_halves(), "PNG")[:12]
    with pytest.raises(ImageError, match=r"^tiny\.png: damaged or truncated PNG .*re-export or re-download"):
        load_image(data, "tiny.png")


def test_webp_cut_in_half_is_refused():
    rng = np.random.default_rng(1)
    data = _encode(Image.fromarray(rng.integers(0, 255, (120, 120, 3), dtype=np.uint8)), "WEBP")
    with pytest.raises(ImageError, match=r"^half\.webp: .*(truncated|damaged).*WEBP"):
        load_image(data[: len(data) // 2], "half.webp")


@pytest.mark.parametrize("payload,hint", [
    (b"hello, this is a text file\n" * 10, "not a recognised image format"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
    (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
])
def test_not_an_image_gets_a_helpful_message(payload, hint):
    with pytest.raises(ImageError) as info:
        load_image(payload, "upload.jpg")
    message = str(info.value)
    assert message.startswith("upload.jpg: not an image this app can read")
    assert hint in message and "JPEG, PNG" in message


def test_wrong_extension_is_decoded_by_content_with_a_note():
    decoded = decode_image(_encode(_halves(), "PNG"), "holiday.jpg")
    assert decoded.format == "PNG" and decoded.image.size == (40, 20)
    assert len(decoded.notes) == 1
    assert "extension says JPEG but the content is PNG" in decoded.notes[0]


def test_non_image_extension_with_valid_content_is_used_with_a_note():
    decoded = decode_image(_encode(_halves(), "JPEG"), "download.bin")
    assert decoded.format == "JPEG" and "not an image extension" in decoded.notes[0]


def test_text_with_image_extension_is_refused():
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"definitely not a png", "fake.png")


def _png_claiming_size(width: int, height: int) -> bytes:
    """A real 1x1 PNG whose header (with a valid CRC) claims other dimensions."""
    data = bytearray(_encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = bytearray(data[12:29])  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


def test_absurd_dimensions_are_refused_before_decoding():
    with pytest.raises(ImageError) as info:
        load_image(_png_claiming_size(9000, 9000), "huge.png")  # 81 MP: above our limit, below Pillow's
    message = str(info.value)
    assert message.startswith("huge.png: the image is 9000x9000 pixels")
    assert f"{MAX_PIXELS / 1e6:.0f} megapixels" in message and "Resize" in message


def test_decompression_bomb_is_refused():
    # 400 MP claimed: Pillow's own guard raises inside open(); the message is still ours.
    with pytest.raises(ImageError, match=r"^bomb\.png: the image has far too many pixels.*limit is"):
        load_image(_png_claiming_size(20000, 20000), "bomb.png")


def test_decode_images_keeps_good_files_and_reports_each_bad_one():
    files = [
        ("a.png", _encode(_halves(), "PNG")),
        ("empty.jpg", b""),
        ("b.jpg", _encode(_halves(), "JPEG")),
        ("notes.txt", b"just text"),
    ]
    good, bad = decode_images(files)
    assert [d.name for d in good] == ["a.png", "b.jpg"]
    assert all(d.image.mode == "RGB" for d in good)
    assert [name for name, _ in bad] == ["empty.jpg", "notes.txt"]
    assert bad[0][1].startswith("empty.jpg: the file is empty") and bad[1][1].startswith("notes.txt: not an image")


def test_sniff_format_recognises_magic_bytes():
    assert sniff_format(_encode(_halves(), "WEBP")) == "WEBP"
    assert sniff_format(_encode(_halves(), "TIFF")) == "TIFF"
    assert sniff_format(b"plain text") is None


def test_bundled_samples_are_small_credited_photos():
    samples = sample_images()
    assert {s.path.name for s in samples} == {"astronaut.jpg", "cat_chelsea.jpg", "coffee.jpg"}
    credits = (samples[0].path.parent / "CREDITS.md").read_text()
    for sample in samples:
        assert sample.path.stat().st_size < 200_000
        assert sample.path.name in credits
        image = sample.load()
        assert image.mode == "RGB" and min(image.size) >= 256
    assert "CC0" in credits and "public domain" in credits


def test_prepare_crops_the_centre_square_and_normalises():
    from resnet_core.data import Preprocess, prepare

    wide = _halves((300, 100), left=(255, 0, 0), right=(0, 0, 255))
    pre = Preprocess(image_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    view, x = prepare(wide, pre)
    assert view.size == (32, 32) and x.shape == (3, 32, 32)
    # The centre of a 3:1 image straddles the colour boundary: left half red, right half blue.
    assert _close(view.getpixel((2, 16)), (255, 0, 0), tol=20) and _close(view.getpixel((29, 16)), (0, 0, 255), tol=20)
    assert x[0, 16, 2] == pytest.approx(1.0, abs=0.1) and x[2, 16, 2] == pytest.approx(-1.0, abs=0.1)
    imagenet = Preprocess.from_dict({"image_size": 224, "resize": 256})
    view, x = prepare(_halves((640, 480)), imagenet)
    assert view.size == (224, 224) and imagenet.mean == (0.485, 0.456, 0.406)
    assert Preprocess.from_dict({"mean": [0.1, 0.2, 0.3], "std": [1, 1, 1], "image_size": 32}).resize is None
