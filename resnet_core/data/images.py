"""Safe decoding of uploaded images into RGB PIL images."""

from __future__ import annotations

import io
import math
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

# Pillow's own bomb guard warns above 89 MP and refuses above 179 MP. We refuse earlier and
# with our own message: 64 MP (8000x8000) covers every phone and most DSLR photos, and a
# decoded 64 MP RGB image is 192 MB, which a classroom laptop can still hold.
MAX_PIXELS = 64_000_000
# Longest side over shortest side. Phone panoramas stay under 10:1; past 50:1 the centre crop a network
# sees is a sliver of the picture (and a 1 x 20000 strip is a classic resize attack), so it is refused.
MAX_ASPECT = 50
# Past this many pixels a decoded image is reduced by a whole factor right after decoding (JPEGs are
# decoded at that scale directly): no network input needs more (the largest is 1024 px), and the
# conversions after it (orientation, alpha, colour) then cost a quarter of a 64 MP photo's memory.
MAX_WORKING_PIXELS = 16_000_000
_REDUCIBLE_MODES = ("L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr", "I", "F")

# Decoders Pillow may use (fewer decoders, less attack surface). Multi-picture JPEGs (MPO, from
# some cameras) come through the JPEG decoder; MPO is not a separate opener in Pillow.
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")
SUPPORTED_TEXT = "JPEG, PNG, WebP, BMP, GIF or TIFF"

# Extensions people use for each format (MPO is the multi-picture JPEG some cameras write).
IMAGE_EXTENSIONS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG",
    ".webp": "WEBP", ".bmp": "BMP", ".dib": "BMP", ".gif": "GIF", ".tif": "TIFF", ".tiff": "TIFF",
}
_SAME_FAMILY = {"MPO": "JPEG"}

_WARNINGS_LOCK = threading.Lock()



class ImageError(ValueError):
    """An uploaded file is not an image this app can use; the message says why and what to do."""


@dataclass(frozen=True)
class DecodedImage:
    """One decoded upload: the RGB image plus what was found on the way.

    Attributes:
        name: the file name given (for messages).
        image: 8-bit RGB image, EXIF orientation applied.
        format: the format found in the content ("JPEG", "PNG", ...), not the extension's.
        original_mode: Pillow's mode before conversion ("RGBA", "I;16", "CMYK", ...).
        notes: things a person may want to know (extension mismatch, first frame used, ...).
    """

    name: str
    image: Image.Image
    format: str
    original_mode: str
    notes: tuple[str, ...] = ()


def decode_image(data: bytes, name: str = "") -> DecodedImage:
    """Decode `data` into an RGB image or raise ImageError naming the problem."""
    label = name or "the image"
    if not data:
        raise ImageError(f"{label}: the file is empty (0 bytes); choose the file again or re-export it")
    sniffed = sniff_format(data)
    image = _open(data, label, sniffed)
    fmt = image.format or sniffed or "image"
    _check_size(image, label)
    # Counting frames seeks through the file, so do it before decoding frame 0.
    notes = _extension_notes(name, fmt) + _frame_notes(image, fmt)
    _draft(image, fmt)
    _load_pixels(image, label, fmt)
    original_mode = image.mode
    image = _bounded(image)
    image, orientation_notes = _apply_orientation(image)
    rgb = _bounded(_to_rgb(image, label))  # palette and 16-bit images reduce once they are RGB
    return DecodedImage(name=name, image=rgb, format=fmt, original_mode=original_mode,
                        notes=notes + orientation_notes)


def load_image(data: bytes, name: str = "") -> Image.Image:
    """The RGB image in `data` (see module docstring); raises ImageError for a bad file."""
    return decode_image(data, name).image


def decode_images(files: list[tuple[str, bytes]]) -> tuple[list[DecodedImage], list[tuple[str, str]]]:
    """Decode every file; bad ones give one (name, message) each instead of stopping the rest."""
    good: list[DecodedImage] = []
    bad: list[tuple[str, str]] = []
    for name, data in files:
        try:
            good.append(decode_image(data, name))
        except ImageError as exc:
            bad.append((name, str(exc)))
    return good, bad


def sniff_format(data: bytes) -> str | None:
    """The format named by the file's leading magic bytes, or None if it is not one we know."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "TIFF"
    return None


def _describe_unknown(data: bytes) -> str:
    """A hint for content that is not a supported image (common look-alikes get named)."""
    head = data[:64]
    if head.startswith(b"%PDF"):
        return "it is a PDF document"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"heif", b"mif1", b"msf1", b"hevc"):
        return "it is a HEIC/HEIF photo (iPhone default), which is not supported; export it as JPEG"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "it is an AVIF image, which is not supported; convert it to JPEG or PNG"
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<svg", b"<?xml")):
        return "it is an SVG/XML drawing, not a photo; export it as PNG"
    if stripped.startswith((b"<!doctype html", b"<html")):
        return "it is a web page (HTML), probably saved instead of the image itself"
    if head.startswith(b"PK\x03\x04"):
        return "it is a zip archive"
    return "its content is not a recognised image format"


def _open(data: bytes, label: str, sniffed: str | None) -> Image.Image:
    try:
        # Pillow's bomb check runs inside open(); its warning becomes our error. Warning filters are
        # process-wide, hence the lock (Streamlit decodes in one thread per session).
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Pillow warns about odd metadata (corrupt EXIF): the pixels may still be fine.
            warnings.simplefilter("ignore", UserWarning)
            image = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(_too_big_message(label, None)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, ValueError) as exc:
        if sniffed:
            detail = "" if isinstance(exc, UnidentifiedImageError) else f" ({_short(exc)})"
            raise ImageError(
                f"{label}: damaged or truncated {sniffed} — the file starts like a {sniffed} image but "
                f"its data is cut short or corrupt{detail}; re-export or re-download it"
            ) from None
        raise ImageError(
            f"{label}: not an image this app can read — {_describe_unknown(data)}. "
            f"Upload a {SUPPORTED_TEXT} file"
        ) from None
    return image


def _too_big_message(label: str, size: tuple[int, int] | None) -> str:
    limit = f"{MAX_PIXELS / 1e6:.0f} megapixels"
    if size is None:
        what = "has far too many pixels to decode safely (a decompression bomb or absurd dimensions)"
    else:
        w, h = size
        what = f"is {w}x{h} pixels ({w * h / 1e6:,.0f} megapixels)"
    return f"{label}: the image {what}; the limit is {limit}. Resize it (e.g. to 2000 px wide) and upload again"


def _check_size(image: Image.Image, label: str) -> None:
    """Refuse absurd dimensions from the header alone, before decoding allocates anything."""
    w, h = image.size
    if w < 1 or h < 1:
        raise ImageError(f"{label}: the image has no pixels ({w}x{h}); re-export it")
    if w * h > MAX_PIXELS:
        raise ImageError(_too_big_message(label, (w, h)))
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise ImageError(
            f"{label}: the image is {w}x{h} pixels, a strip {max(w, h) / min(w, h):,.0f} times longer than it is "
            f"wide; at most {MAX_ASPECT}:1 is accepted, since the network sees only a square from its centre. "
            "Crop it to the part that matters and try again")


def _factor(size: tuple[int, int]) -> int:
    """The whole factor that brings `size` within MAX_WORKING_PIXELS (1: it is within already)."""
    pixels = size[0] * size[1]
    return 1 if pixels <= MAX_WORKING_PIXELS else math.ceil(math.sqrt(pixels / MAX_WORKING_PIXELS))


def _draft(image: Image.Image, fmt: str) -> None:
    """A JPEG over MAX_WORKING_PIXELS is decoded at a reduced scale directly (its DCT allows 1/2 to 1/8)."""
    factor = _factor(image.size)
    if factor > 1 and fmt == "JPEG":
        try:
            image.draft(image.mode, (math.ceil(image.width / factor), math.ceil(image.height / factor)))
        except (OSError, ValueError):
            pass  # decoded at full size: _bounded reduces it after


def _bounded(image: Image.Image) -> Image.Image:
    """The image reduced by a whole factor (block average) when it is over MAX_WORKING_PIXELS."""
    factor = _factor(image.size)
    if factor == 1 or image.mode.startswith("I;16"):
        return image  # 16-bit grey is reduced once it is RGB (it converts in bands of rows)
    if image.mode not in _REDUCIBLE_MODES:  # palette or bilevel: averaging needs the colours themselves
        transparent = image.mode == "PA" or (image.mode == "P" and "transparency" in image.info)
        image = image.convert("RGBA" if transparent else "RGB" if image.mode == "P" else "L")
    return image.reduce(min(factor, image.width, image.height))


def _load_pixels(image: Image.Image, label: str, fmt: str) -> None:
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            image.load()
    except (OSError, SyntaxError, EOFError, ValueError, IndexError, MemoryError) as exc:
        text = str(exc).lower()
        if isinstance(exc, EOFError) or "truncated" in text or "not enough data" in text:
            raise ImageError(
                f"{label}: truncated {fmt} — the file is incomplete; re-export or re-download it"
            ) from None
        raise ImageError(
            f"{label}: the {fmt} data is damaged and cannot be decoded ({_short(exc)}); "
            "re-export or re-download it"
        ) from None


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # Pillow's messages sometimes include the in-memory buffer's repr, which means nothing to a person.
    return text.split(" <_io.")[0][:160]


def _extension_notes(name: str, fmt: str) -> tuple[str, ...]:
    suffix = Path(name).suffix.lower()
    if not suffix:
        return ()
    claimed = IMAGE_EXTENSIONS.get(suffix)
    actual = _SAME_FAMILY.get(fmt, fmt)
    if claimed == actual:
        return ()
    if claimed is None:
        note = (f"{name}: the extension '{suffix}' is not an image extension, but the content is a "
                f"valid {fmt} image, so it was used")
    else:
        note = (f"{name}: the extension says {claimed} but the content is {fmt}; it was decoded as {fmt} "
                "(rename the file to avoid confusing other programs)")
    return (note,)


def _frame_notes(image: Image.Image, fmt: str) -> tuple[str, ...]:
    try:
        frames = int(getattr(image, "n_frames", 1))
        image.seek(0)
    except (OSError, EOFError, ValueError, SyntaxError):
        return ()  # a damaged later frame: decoding the first one will tell
    if frames > 1:
        kind = "page" if fmt == "TIFF" else "frame"
        return (f"{fmt} with {frames} {kind}s: only the first {kind} is used",)
    return ()


def _apply_orientation(image: Image.Image) -> tuple[Image.Image, tuple[str, ...]]:
    """Rotate/flip as the EXIF Orientation tag says, so the network sees what the camera saw."""
    try:
        rotated = ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001 - broken EXIF fails in many ways; it must not cost a usable photo
        return image, (f"the EXIF orientation could not be read ({_short(exc)}); the image is shown unrotated",)
    return (rotated if rotated is not None else image), ()


def _to_rgb(image: Image.Image, label: str) -> Image.Image:
    mode = image.mode
    try:
        if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            return _high_depth_to_rgb(image)
        if mode == "CMYK":
            return _cmyk_to_rgb(image)
        if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
            return _flatten_on_white(image.convert("RGBA"))
        # RGB (a fresh copy, detached from the upload buffer), L, 1, P, YCbCr, ...
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageError(
            f"{label}: its colour mode {mode!r} cannot be converted to RGB ({_short(exc)}); "
            "re-export it as an 8-bit RGB JPEG or PNG"
        ) from None


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: Pillow's plain conversion is still a fair rendering
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit integer or float grey to 8 bits by its range instead of clipping (in bands of
    rows, so a 64 MP 16-bit image never has a float64 copy of itself)."""
    values = np.asarray(image)
    shift, scale = 0.0, 255.0 / 65535.0
    if not image.mode.startswith("I;16"):
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        if image.mode == "F" and lo >= 0.0 and hi <= 1.0:
            scale = 255.0  # float images in [0, 1] are the common convention
        elif lo >= 0.0 and hi <= 255.0:
            scale = 1.0
        elif lo >= 0.0 and hi <= 65535.0:
            pass  # 16-bit data stored in a 32-bit mode
        else:
            shift, scale = lo, (255.0 / (hi - lo) if hi > lo else 0.0)
    grey = np.empty(values.shape, dtype=np.uint8)
    rows = max(1, (1 << 20) // max(1, values.shape[1]))
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, values.shape[0], rows):
            part = (values[start:start + rows].astype(np.float64) - shift) * scale
            grey[start:start + rows] = np.clip(np.rint(np.nan_to_num(part)), 0, 255)
    return Image.fromarray(grey, mode="L").convert("RGB")
