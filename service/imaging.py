"""Image bytes <-> NumPy arrays: the only module that imports Pillow, imagecodecs and isal.

Convention (one for the whole service): a decoded image is an ``np.uint8`` array of shape
``(M, N)`` (grayscale) or ``(M, N, C)`` with ``C`` in 2..4 (LA, RGB, RGBA), values 0..255 as
stored; alpha, when present, is the last channel and ``Decoded.alpha`` says so. The core works
on these values unscaled (0..255, never mapped to 0..1). Encoding takes ``np.uint8`` arrays
only; the float -> 8-bit rule (clip to 0..255, then truncate toward zero) lives in
``service.core.scaling.apply_scale`` and is applied before anything reaches this module.

Decoding rules (limits first):

- the pixel limit is checked from the header (``Image.open`` reads no pixel data) before
  any decode, so a small file that declares 50000 x 50000 pixels is refused without a large
  allocation; Pillow's own bomb guard is set to the same limit;
- multi-frame files (GIF, TIFF, animated PNG/WebP): the first frame only;
- the EXIF orientation tag is applied (the image is rotated as a viewer shows it);
- modes: ``1`` -> L; ``P``/``PA`` -> RGB or RGBA (RGBA when the palette has transparency);
  ``CMYK``/``YCbCr``/``LAB``/``HSV`` -> RGB; 16-bit (``I;16*``, ``I``) -> 8-bit by
  ``round(v / 257)`` after clipping to 0..65535; 32-bit float ``F`` -> clipped to 0..255 and
  truncated.

A plain PNG (8-bit gray, gray + alpha, RGB or RGBA, not interlaced, no transparency, EXIF,
animation or ICC chunk: see `_is_plain_png`) is decoded by libpng through imagecodecs, to
the same pixels as Pillow (docs/decisions/0004-imagecodecs.md). A plain JPEG (L or
RGB, not turned by EXIF, ending with EOI: see `_is_plain_jpeg`) is decoded by libjpeg-turbo
through imagecodecs at full size (never draft mode), to the pixels Pillow's libjpeg-turbo
gives, straight into the array: Pillow needs about 3 copies of the image on the way
(its own buffer, 4 bytes per RGB pixel, and the bytes ``numpy.asarray`` goes through). Every
other file goes through Pillow, after the same header checks.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Final

import imagecodecs
import numpy as np
import numpy.typing as npt
from isal import isal_zlib
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import (
    ImageTooLargeError,
    InvalidSpecError,
    UndecodableImageError,
    UnsupportedImageFormatError,
)

ACCEPTED_FORMATS: Final = frozenset({"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "MPO"})
# zlib strategies (Z_DEFAULT_STRATEGY, Z_FILTERED, Z_HUFFMAN_ONLY, Z_RLE).
PNG_STRATEGIES: Final = {"default": 0, "filtered": 1, "huffman": 2, "rle": 3}
# PNG row filters libpng may apply before deflate; "adaptive" tries all five on every row and
# keeps the smallest (libpng's and Pillow's default heuristic, the slowest choice).
_FILTER = imagecodecs.PNG.FILTER
PNG_FILTERS: Final = {
    "none": _FILTER.NONE,
    "sub": _FILTER.SUB,
    "up": _FILTER.UP,
    "avg": _FILTER.AVG,
    "paeth": _FILTER.PAETH,
    "adaptive": _FILTER.ALL,
}


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded image: ``pixels`` of shape (M, N) or (M, N, C); ``alpha`` if C's last is alpha."""

    pixels: npt.NDArray[Any]
    alpha: bool = False

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[2])


# --- the ascent picture ----------------------------------------------------------------


@lru_cache(maxsize=1)
def ascent_png() -> bytes:
    """The PNG file of the 512 x 512 grayscale ascent picture shipped in ``service/data``."""
    return resources.files("service").joinpath("data/ascent.png").read_bytes()


@lru_cache(maxsize=1)
def ascent() -> Decoded:
    """The ascent pixels, decoded once per process; the array is read-only.

    libpng through imagecodecs, not Pillow: the built-in picture is not an upload, and
    Pillow's bomb guard (``configure_pillow``) would refuse it under a small ``max_pixels``.
    """
    pixels = np.asarray(imagecodecs.png_decode(ascent_png()), dtype=np.uint8)
    pixels.setflags(write=False)
    return Decoded(pixels)


# --- decoding ----------------------------------------------------------------------------


def configure_pillow(max_pixels: int) -> None:
    """Make Pillow's decompression-bomb guard agree with ``max_pixels``.

    Pillow warns above ``MAX_IMAGE_PIXELS`` and raises above twice that. ``decode`` checks the
    limit itself from the header (``ImageTooLargeError``), so the warning (which would only
    repeat that check) is silenced; the error stays as a second line of defence for any other
    Pillow use.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def decode_base64(data: str) -> bytes:
    """Decode base64 text (standard alphabet, padded; line breaks and spaces are ignored).

    Anything else outside the alphabet is an ``InvalidSpecError``, not silently dropped.
    """
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSpecError(("image", "data"), f"`data` is not valid base64: {exc}") from exc


def decode(data: bytes, *, max_pixels: int) -> Decoded:
    """Decode image file bytes into a ``Decoded`` array, enforcing ``max_pixels`` before decoding.

    Raises ``UndecodableImageError`` for bytes that are not a decodable image, with the
    reason; ``UnsupportedImageFormatError`` for a recognised format the service does not
    accept; ``ImageTooLargeError`` when width x height exceeds ``max_pixels``.
    """
    if not data:
        raise UndecodableImageError("the image is empty (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"the image exceeds the limit of {max_pixels} pixels ({_reason(exc)})"
        ) from exc
    except UnidentifiedImageError as exc:
        raise UndecodableImageError(
            "the bytes are not an image in a supported format "
            f"({', '.join(sorted(ACCEPTED_FORMATS - {'MPO'}))})"
        ) from exc
    except Exception as exc:  # Pillow's plugins raise many types on hostile headers
        raise UndecodableImageError(f"the image header cannot be read: {_reason(exc)}") from exc
    with img:
        return _decode_opened(img, max_pixels, data)


def _decode_opened(img: Image.Image, max_pixels: int, data: bytes) -> Decoded:
    """Check format and size from the header, then decode the first frame."""
    if img.format not in ACCEPTED_FORMATS:
        raise UnsupportedImageFormatError(f"image format {img.format} is not accepted")
    width, height = img.size
    if width <= 0 or height <= 0:
        raise UndecodableImageError(f"the image declares an empty size {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} = {width * height} pixels; "
            f"the limit is {max_pixels} pixels"
        )
    if img.format == "PNG" and _is_plain_png(data):
        try:
            return _decoded(imagecodecs.png_decode(data))
        except Exception as exc:  # truncated or corrupt data, as below
            raise UndecodableImageError(
                f"the image data cannot be decoded: {_reason(exc)}"
            ) from exc
    if _is_plain_jpeg(img, data):
        try:
            return _decoded(imagecodecs.jpeg8_decode(data))
        except Exception as exc:  # corrupt data, as below
            raise UndecodableImageError(
                f"the image data cannot be decoded: {_reason(exc)}"
            ) from exc
    try:
        img.seek(0)
        img.load()
        oriented: Image.Image = ImageOps.exif_transpose(img) or img
        return _to_array(oriented)
    except Exception as exc:  # truncated or corrupt data: any decoder error
        raise UndecodableImageError(f"the image data cannot be decoded: {_reason(exc)}") from exc


_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PLAIN_PNG_COLOR_TYPES: Final = frozenset({0, 2, 4, 6})  # gray, RGB, gray + alpha, RGBA
# Chunks whose presence leaves Pillow's pixels equal to the stored samples and libpng silent:
# the critical ones and ancillary colour/metadata chunks neither decoder applies. Anything else
# (tRNS transparency, an eXIf orientation, APNG's acTL, an iCCP profile libpng may warn about,
# private chunks) sends the file through Pillow.
_PLAIN_PNG_CHUNKS: Final = frozenset(
    {b"IHDR", b"IDAT", b"IEND", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD", b"pHYs", b"tIME"}
    | {b"tEXt"}  # not zTXt/iTXt: compressed text is left to Pillow's inflate limit
)


def _is_plain_png(data: bytes) -> bool:
    """True for an 8-bit, non-interlaced gray/LA/RGB/RGBA PNG made of `_PLAIN_PNG_CHUNKS`.

    Walks the chunk headers (length, type) up to IEND without reading chunk data; a file
    that does not reach IEND is not plain (Pillow then reports what is wrong with it).
    """
    if len(data) < 33 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return False
    depth, color_type, interlace = data[24], data[25], data[28]
    if depth != 8 or color_type not in _PLAIN_PNG_COLOR_TYPES or interlace != 0:
        return False
    pos = len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        if kind not in _PLAIN_PNG_CHUNKS:
            return False
        if kind == b"IEND":
            return True
        pos += 12 + length
    return False


_JPEG_EOI: Final = b"\xff\xd9"


def _is_plain_jpeg(img: Image.Image, data: bytes) -> bool:
    """True for a JPEG (not MPO) that libjpeg-turbo may decode straight into an array.

    Its mode is L or RGB (no CMYK/YCCK), no EXIF orientation turns it, and the file ends
    with the EOI marker: libjpeg only warns about a truncated stream (and fills the missing
    rows), where Pillow refuses it, so a file that does not end cleanly goes through Pillow
    and gets Pillow's error.
    """
    if img.format != "JPEG" or img.mode not in ("L", "RGB") or not data.endswith(_JPEG_EOI):
        return False
    return bool(img.getexif().get(_EXIF_ORIENTATION, 1) == 1)


_EXIF_ORIENTATION: Final = 0x0112


def _decoded(pixels: npt.NDArray[np.uint8]) -> Decoded:
    """Wrap a decoded (M, N) or (M, N, C) uint8 array; C = 2 or 4 carries alpha last."""
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return Decoded(pixels, alpha=pixels.ndim == 3 and pixels.shape[2] in (2, 4))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:200]


def _to_array(img: Image.Image) -> Decoded:
    """Convert a loaded Pillow image to the service's uint8 convention (see module docstring)."""
    mode = img.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        pass
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
    elif mode.startswith("I;16") or mode == "I":
        wide = np.asarray(img, dtype=np.float64)
        narrow = np.rint(np.clip(wide, 0, 65535) / 257.0).astype(np.uint8)
        return Decoded(narrow)
    elif mode == "F":
        values = np.asarray(img, dtype=np.float64)
        return Decoded(np.clip(np.nan_to_num(values), 0, 255).astype(np.uint8))
    elif mode == "La":
        img = img.convert("LA")
    elif mode == "RGBa":
        img = img.convert("RGBA")
    else:  # CMYK, YCbCr, LAB, HSV, RGBX, ...
        img = img.convert("RGB")
    pixels = np.asarray(img)
    return Decoded(pixels, alpha=img.mode in ("LA", "RGBA"))


def from_pixels(pixels: list[Any]) -> Decoded:
    """Build a ``Decoded`` image from a JSON ``pixels`` array of numbers in 0..255.

    Accepts ``[M][N]`` (grayscale) or ``[M][N][C]`` with ``C`` in 1..4 (``C`` = 2 or 4 means the
    last channel is alpha). Non-integer values are truncated toward zero. Raises
    ``InvalidSpecError`` (at ``("image", "pixels")``) for ragged, empty, non-numeric,
    non-finite or out-of-range input.
    """
    path = ("image", "pixels")
    try:
        raw = np.asarray(pixels)
    except ValueError as exc:  # inhomogeneous (ragged) nesting
        raise InvalidSpecError(
            path, "`pixels` must be a rectangular array (rows of equal length)"
        ) from exc
    if raw.dtype.kind not in "iuf":
        raise InvalidSpecError(path, "`pixels` must hold only numbers (0..255)")
    if raw.ndim not in (2, 3) or raw.size == 0:
        raise InvalidSpecError(
            path, f"`pixels` must be a non-empty [H][W] or [H][W][C] array, got {raw.ndim}-D"
        )
    if raw.ndim == 3 and not 1 <= raw.shape[2] <= 4:
        raise InvalidSpecError(path, f"`pixels` may have 1 to 4 channels, got {raw.shape[2]}")
    if not np.isfinite(raw).all():
        raise InvalidSpecError(path, "`pixels` must be finite numbers (no NaN or Infinity)")
    if raw.min() < 0 or raw.max() > 255:
        raise InvalidSpecError(path, "`pixels` values must lie in 0..255")
    # values checked in range; floats truncate toward zero
    return _decoded(np.ascontiguousarray(raw.astype(np.uint8)))


_GRAY_STRIPE_PIXELS: Final = 1 << 18


def to_gray(image: Decoded) -> Decoded:
    """Convert to 8-bit luma (ITU-R 601-2, as Pillow's ``convert("L")``), keeping alpha.

    ``L = R * 299/1000 + G * 587/1000 + B * 114/1000``, computed in Pillow's fixed point
    (``(R*19595 + G*38470 + B*7471 + 0x8000) >> 16``) for uint8 input and in float32 for float
    input. Grayscale input is returned as is.
    """
    pixels = image.pixels
    if pixels.ndim == 2 or pixels.shape[2] <= 2:
        return image
    rgb = pixels[:, :, :3]
    if pixels.dtype == np.uint8:
        luma = np.empty(pixels.shape[:2], np.uint8)
        step = max(1, _GRAY_STRIPE_PIXELS // pixels.shape[1])  # uint32 temporaries per stripe
        for r0 in range(0, pixels.shape[0], step):
            wide = rgb[r0 : r0 + step].astype(np.uint32)
            total = wide[..., 0] * 19595 + wide[..., 1] * 38470 + wide[..., 2] * 7471 + 0x8000
            luma[r0 : r0 + step] = total >> 16
    else:
        luma = (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114).astype(np.float32)
    if image.alpha:
        return Decoded(np.dstack([luma, pixels[:, :, 3].astype(luma.dtype)]), alpha=True)
    return Decoded(luma)


# --- encoding ----------------------------------------------------------------------------


PNG_ENCODERS: Final = ("isal", "libdeflate", "libpng")
# Row filters the isal and libdeflate encoders apply themselves (one NumPy pass each); the
# others (avg, paeth, adaptive) are libpng's, and choosing one sends the image through libpng.
_OWN_FILTERS: Final = {"none": 0, "sub": 1, "up": 2}
_COLOR_TYPE: Final = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, GA, RGB, RGBA)
_FILTER_STRIPE_BYTES: Final = 1 << 20  # rows are filtered in stripes of about this size
ISAL_MAX_LEVEL: Final = 3  # ISA-L's levels are 0..3; its 0 compresses (it does not store)


def _deflate_isal(data: npt.NDArray[np.uint8], level: int) -> bytes | bytearray:
    """A zlib stream of ``data``: stored at level 0, else ISA-L at ``min(level, 3)``."""
    if level == 0:
        return _deflate_libdeflate(data, 0)
    return isal_zlib.compress(data, min(level, ISAL_MAX_LEVEL))


def _deflate_libdeflate(data: npt.NDArray[np.uint8], level: int) -> bytes | bytearray:
    """A zlib stream of ``data`` from libdeflate at ``level`` (0 stores, 1..12)."""
    # any buffer works (the stubs say bytes); the array is compressed in place, not copied
    return imagecodecs.deflate_encode(data, level=level)  # type: ignore[arg-type]


_DEFLATE: Final = {"isal": _deflate_isal, "libdeflate": _deflate_libdeflate}


def encode_png(
    pixels: npt.NDArray[np.uint8],
    *,
    compress_level: int,
    strategy: str,
    row_filter: str = "auto",
    encoder: str = "libpng",
) -> bytes:
    """Encode an ``np.uint8`` array of shape (M, N) or (M, N, C), C in 1..4, as a PNG file.

    The colour type follows the channels (gray, gray + alpha, RGB, RGBA), 8 bits each.
    ``compress_level`` (0..9, 0 stores), the zlib ``strategy`` (``PNG_STRATEGIES``) and the
    row filter (``PNG_FILTERS`` or ``"auto"``) trade size for speed; see docs/operations.md
    (settings) and docs/performance.md (sizes and times).

    ``"auto"`` picks one filter for the whole image: ``"none"`` when at least a quarter of the
    bytes are 0 (edge maps, such as a clamped Sobel or Laplacian result), else ``"paeth"``
    (photos, blurs); the count costs one pass over the bytes.

    ``encoder="isal"`` and ``"libdeflate"`` frame the PNG here (signature, IHDR, one IDAT,
    IEND, CRC-32 each) around one zlib stream, with the row filter applied in NumPy: ``none``,
    ``sub`` or ``up`` (``"auto"``: ``"up"`` where libpng would take Paeth); any other filter
    goes through libpng, and ``strategy`` does not apply. ``"isal"`` deflates with ISA-L
    (Intel's Intelligent Storage Acceleration Library) at ``min(compress_level, 3)``, its
    highest level; ``"libdeflate"`` at ``compress_level``. Level 0 stores, with either.

    ``encoder="libpng"`` is libpng through imagecodecs, not Pillow: Pillow always picks each row's
    filter adaptively (all five tried per row) and offers no way to fix it
    (docs/decisions/0004-imagecodecs.md).
    """
    if pixels.dtype != np.uint8:
        raise TypeError(f"encode_png takes np.uint8 pixels, got {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    own = encoder in _DEFLATE and (row_filter == "auto" or row_filter in _OWN_FILTERS)
    if row_filter == "auto":
        zeros = pixels.size - np.count_nonzero(pixels)
        sparse = 4 * zeros >= pixels.size
        row_filter = "none" if sparse else ("up" if own else "paeth")
    if own:
        filtered = _filtered_rows(pixels, _OWN_FILTERS[row_filter])
        stream = _DEFLATE[encoder](filtered, compress_level)
        del filtered
        return _png_file(pixels, stream)
    encoded = imagecodecs.png_encode(
        np.ascontiguousarray(pixels),
        level=compress_level,
        strategy=PNG_STRATEGIES[strategy],
        filter=PNG_FILTERS[row_filter],
    )
    return bytes(encoded)  # already ``bytes`` without ``out=``: no copy


def _chunk(kind: bytes, data: bytes | bytearray) -> tuple[bytes, bytes | bytearray, bytes]:
    """A PNG chunk as (length + type, data, CRC-32 of type and data), to be joined once."""
    crc = imagecodecs.deflate_crc32(data, imagecodecs.deflate_crc32(kind))
    return struct.pack(">I", len(data)) + kind, data, struct.pack(">I", crc)


def _filtered_rows(pixels: npt.NDArray[np.uint8], row_filter: int) -> npt.NDArray[np.uint8]:
    """The PNG scanlines of ``pixels`` (M, N) or (M, N, C), each filtered by ``row_filter``.

    Row ``r`` is the filter byte (0, 1 or 2), then ``x`` (none), ``x - a`` (sub: ``a`` the
    byte one pixel to the left, 0 before the first) or ``x - b`` (up: ``b`` the byte above, 0
    above row 0), modulo 256 -- PNG's filter types 0, 1 and 2. The rows are written stripe by
    stripe into one buffer of ``M * (N * C + 1)`` bytes.
    """
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    rows = pixels.reshape(height, width * channels)
    stride = width * channels
    filtered = np.empty((height, stride + 1), np.uint8)
    filtered[:, 0] = row_filter
    body = filtered[:, 1:]
    step = max(1, _FILTER_STRIPE_BYTES // max(stride, 1))
    for r0 in range(0, height, step):
        r1 = min(height, r0 + step)
        out, src = body[r0:r1], rows[r0:r1]
        if row_filter == 0:
            out[...] = src
        elif row_filter == 1:
            out[:, :channels] = src[:, :channels]
            np.subtract(src[:, channels:], src[:, :-channels], out=out[:, channels:])
        elif r0 == 0:
            out[0] = src[0]
            np.subtract(src[1:], src[:-1], out=out[1:])
        else:
            np.subtract(src, rows[r0 - 1 : r1 - 1], out=out)
    return filtered


def _png_file(pixels: npt.NDArray[np.uint8], stream: bytes | bytearray) -> bytes:
    """The PNG file of ``pixels`` whose filtered scanlines deflate to the zlib ``stream``."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    parts = (_chunk(b"IHDR", header), _chunk(b"IDAT", stream), _chunk(b"IEND", b""))
    return b"".join((_PNG_SIGNATURE, *(piece for part in parts for piece in part)))
