"""service.imaging: decoding (limits first, modes), pixels arrays, gray, PNG encoding."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import struct
import subprocess
import zlib
from collections.abc import Callable

import imagecodecs
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from service import imaging
from service.errors import (
    ImageTooLargeError,
    InvalidSpecError,
    UndecodableImageError,
    UnsupportedImageFormatError,
)
from testkit.images import (
    bomb_png,
    encode,
    png_chunk,
    png_chunks,
    png_row_filters,
    png_with_chunk,
    raw_png,
)
from tests.conftest import decode_png, png_bytes

ASCENT_SHA256 = "c7777d46c3f4e3119ddbec92ad28c09193202a7a4aab08622bc7e4b4a3ba88e6"
RNG = np.random.default_rng(7)


def test_ascent_pixels_match_published_digest() -> None:
    pixels = imaging.ascent().pixels
    assert pixels.shape == (512, 512)
    assert pixels.dtype == np.uint8
    assert hashlib.sha256(pixels.tobytes()).hexdigest() == ASCENT_SHA256


def test_ascent_is_read_only() -> None:
    with pytest.raises(ValueError, match="read-only"):
        imaging.ascent().pixels[0, 0] = 1


def test_decode_gray_png_roundtrip() -> None:
    pixels = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    decoded = imaging.decode(png_bytes(pixels), max_pixels=100)
    np.testing.assert_array_equal(decoded.pixels, pixels)
    assert not decoded.alpha


def test_decode_rgba_keeps_alpha() -> None:
    pixels = RNG.integers(0, 256, (4, 3, 4), dtype=np.uint8)
    decoded = imaging.decode(png_bytes(pixels), max_pixels=100)
    np.testing.assert_array_equal(decoded.pixels, pixels)
    assert decoded.alpha
    assert decoded.channels == 4


def test_decode_la_keeps_alpha() -> None:
    img = Image.fromarray(RNG.integers(0, 256, (3, 3, 2), dtype=np.uint8), mode="LA")
    decoded = imaging.decode(encode(img, "PNG"), max_pixels=100)
    assert decoded.alpha
    assert decoded.pixels.shape == (3, 3, 2)


def test_decode_16bit_scales_to_8bit() -> None:
    wide = np.array([[0, 257, 65535], [32896, 1000, 128]], dtype=np.uint16)
    img = Image.fromarray(wide)
    decoded = imaging.decode(encode(img, "PNG"), max_pixels=100)
    np.testing.assert_array_equal(decoded.pixels, [[0, 1, 255], [128, 4, 0]])


def test_decode_palette_with_transparency_gives_rgba() -> None:
    img = Image.new("P", (2, 2))
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    img.info["transparency"] = 0
    decoded = imaging.decode(encode(img, "PNG", transparency=0), max_pixels=100)
    assert decoded.alpha
    np.testing.assert_array_equal(decoded.pixels[1, 1], [0, 255, 0, 255])
    assert decoded.pixels[0, 0, 3] == 0


def test_decode_palette_alpha_tiff_gives_rgba() -> None:
    """A ``PA`` TIFF (palette index + alpha sample, no ``transparency`` entry) keeps its alpha."""
    img = Image.new("PA", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    img.putdata([(0, 255), (1, 128), (2, 0)])
    data = encode(img, "TIFF")
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.mode == "PA"  # the file really holds the PA mode under test
    decoded = imaging.decode(data, max_pixels=100)
    assert decoded.alpha
    np.testing.assert_array_equal(
        decoded.pixels, [[[255, 0, 0, 255], [0, 255, 0, 128], [0, 0, 255, 0]]]
    )


def test_decode_mpo_takes_the_first_picture() -> None:
    """A multi-picture JPEG (camera MPO, opened by Pillow as format ``MPO``) is accepted."""
    first, second = Image.new("RGB", (8, 8), (250, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 250))
    data = encode(first, "MPO", save_all=True, append_images=[second])
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.format == "MPO"
    decoded = imaging.decode(data, max_pixels=100)
    assert decoded.pixels.shape == (8, 8, 3)
    assert decoded.pixels[..., 0].min() > 200  # red: the first picture, not the blue second
    assert decoded.pixels[..., 2].max() < 50


def test_decode_cmyk_jpeg_gives_rgb() -> None:
    img = Image.new("CMYK", (4, 4), (0, 255, 255, 0))
    decoded = imaging.decode(encode(img, "JPEG"), max_pixels=100)
    assert decoded.pixels.shape == (4, 4, 3)
    assert decoded.pixels[..., 0].mean() > 200  # red stays red


def test_decode_applies_exif_rotation() -> None:
    pixels = np.zeros((2, 4), dtype=np.uint8)
    pixels[0, 0] = 255
    img = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    decoded = imaging.decode(encode(img, "PNG", exif=exif), max_pixels=100)
    assert decoded.pixels.shape == (4, 2)
    assert decoded.pixels[0, 1] == 255


def _adam7_png(pixels: np.ndarray) -> bytes:
    """An interlaced (Adam7) 8-bit PNG of ``pixels``, rows unfiltered (Pillow cannot write one)."""
    height, width = pixels.shape[:2]
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[1 if pixels.ndim == 2 else pixels.shape[2]]
    passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2)]
    raw = b""
    for y0, x0, dy, dx in [*passes, (1, 0, 2, 1)]:
        for row in pixels[y0::dy, x0::dx]:
            raw += b"\0" + row.tobytes() if row.size else b""
    return raw_png(width, height, zlib.compress(raw), color_type=color_type, interlace=1)


PLAIN_EXTRAS = {
    "none": None,
    "gAMA": png_chunk(b"gAMA", struct.pack(">I", 45455)),
    "sRGB": png_chunk(b"sRGB", b"\0"),
    "sBIT": png_chunk(b"sBIT", b"\5"),
    "tEXt": png_chunk(b"tEXt", b"Comment\0made by a test"),
}


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("extra", list(PLAIN_EXTRAS))
def test_decode_plain_png_equals_pillow_quietly(
    channels: int, extra: str, capfd: pytest.CaptureFixture[str]
) -> None:
    # the libpng fast path: same pixels and alpha flag as Pillow reads them, nothing on stderr
    shape = (37, 23) if channels == 1 else (37, 23, channels)
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    data = encode(Image.fromarray(pixels), "PNG")
    if PLAIN_EXTRAS[extra] is not None:
        data = png_with_chunk(data, PLAIN_EXTRAS[extra], after=b"IHDR")
    assert imaging._is_plain_png(data)
    decoded = imaging.decode(data, max_pixels=10_000)
    with Image.open(io.BytesIO(data)) as img:
        np.testing.assert_array_equal(decoded.pixels, np.asarray(img))
    np.testing.assert_array_equal(decoded.pixels, pixels)
    assert decoded.alpha == (channels in (2, 4))
    assert capfd.readouterr().err == ""


def test_decode_plain_png_split_over_many_idat_chunks() -> None:
    pixels = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    stream = zlib.compress(b"".join(b"\0" + row.tobytes() for row in pixels))
    idats = [stream[i : i + 100] for i in range(0, len(stream), 100)]
    data = raw_png(64, 64, idats, color_type=2)
    assert imaging._is_plain_png(data)
    np.testing.assert_array_equal(imaging.decode(data, max_pixels=10_000).pixels, pixels)


def _not_plain_cases() -> dict[str, bytes]:
    gray = encode(Image.fromarray(RNG.integers(0, 256, (8, 8), dtype=np.uint8)), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "tRNS": png_with_chunk(gray, png_chunk(b"tRNS", b"\0\7"), after=b"IHDR"),
        "eXIf": encode(Image.fromarray(np.zeros((2, 4), np.uint8)), "PNG", exif=exif),
        "acTL": png_with_chunk(gray, png_chunk(b"acTL", b"\0\0\0\1\0\0\0\0"), after=b"IHDR"),
        "iCCP": png_with_chunk(
            gray, png_chunk(b"iCCP", b"p\0\0" + zlib.compress(b"x")), after=b"IHDR"
        ),
        "zTXt": png_with_chunk(
            gray, png_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"v")), after=b"IDAT"
        ),
        "PLTE": encode(Image.new("P", (4, 4)), "PNG"),
        "16-bit": encode(Image.new("I;16", (4, 4)), "PNG"),
        "interlaced": _adam7_png(np.zeros((4, 4), np.uint8)),
        "truncated": gray[: len(gray) - 12],
        "not a PNG": encode(Image.new("L", (4, 4)), "BMP"),
    }


@pytest.mark.parametrize("case", list(_not_plain_cases()))
def test_is_plain_png_sends_everything_else_to_pillow(case: str) -> None:
    assert not imaging._is_plain_png(_not_plain_cases()[case])


def test_decode_png_exif_orientation_after_idat_is_applied() -> None:
    # eXIf may follow the image data; Pillow finds it there and the fast path must step aside
    pixels = np.zeros((2, 4), dtype=np.uint8)
    pixels[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    plain = encode(Image.fromarray(pixels), "PNG")
    data = png_with_chunk(plain, png_chunk(b"eXIf", exif.tobytes()), after=b"IDAT")
    decoded = imaging.decode(data, max_pixels=100)
    np.testing.assert_array_equal(decoded.pixels, np.rot90(pixels, -1))


@pytest.mark.parametrize("channels", [1, 3])
def test_decode_interlaced_png_gives_the_pixels(channels: int) -> None:
    shape = (13, 11) if channels == 1 else (13, 11, channels)
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(
        imaging.decode(_adam7_png(pixels), max_pixels=1000).pixels, pixels
    )


def test_decode_plain_png_with_corrupt_image_data_is_a_bad_image() -> None:
    data = raw_png(4, 4, b"this is not a zlib stream")
    assert imaging._is_plain_png(data)
    with pytest.raises(UndecodableImageError, match="cannot be decoded"):
        imaging.decode(data, max_pixels=100)


def test_decode_multiframe_gif_takes_first_frame() -> None:
    frames = [Image.new("L", (3, 3), value) for value in (10, 200)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    decoded = imaging.decode(data, max_pixels=100)
    assert decoded.pixels.reshape(-1, decoded.channels)[:, 0].tolist() == [10] * 9


def test_decode_bomb_rejected_from_header() -> None:
    with pytest.raises(ImageTooLargeError, match="2500000000 pixels"):
        imaging.decode(bomb_png(50_000, 50_000), max_pixels=40_000_000)


def test_decode_exactly_at_pixel_limit_is_accepted() -> None:
    pixels = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    decoded = imaging.decode(png_bytes(pixels), max_pixels=20)  # 4 x 5 = 20: at the limit
    np.testing.assert_array_equal(decoded.pixels, pixels)


def test_decode_over_pixel_limit_is_413() -> None:
    with pytest.raises(ImageTooLargeError, match="limit is 20 pixels"):
        imaging.decode(png_bytes(np.zeros((5, 5), np.uint8)), max_pixels=20)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, I am text", bytes(RNG.integers(0, 256, 300, dtype=np.uint8))],
    ids=["empty", "text", "random"],
)
def test_decode_garbage_is_bad_image(data: bytes) -> None:
    with pytest.raises(UndecodableImageError):
        imaging.decode(data, max_pixels=100)


def test_decode_error_reason_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder's message (which may echo the file's bytes) is cut before it reaches a client."""

    def chatty_open(*_: object, **__: object) -> None:
        raise OSError("A" * 5000)

    monkeypatch.setattr(imaging.Image, "open", chatty_open)
    with pytest.raises(UndecodableImageError, match="cannot be read") as caught:
        imaging.decode(b"not empty", max_pixels=100)
    assert "AAAA" in caught.value.message
    assert len(caught.value.message) < 300


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_decode_truncated_is_bad_image(fmt: str) -> None:
    data = encode(Image.fromarray(RNG.integers(0, 256, (64, 64), dtype=np.uint8)), fmt)
    with pytest.raises(UndecodableImageError, match="cannot be decoded"):
        imaging.decode(data[: len(data) // 2], max_pixels=10_000)


def test_decode_unaccepted_format_is_415() -> None:
    data = encode(Image.new("RGB", (2, 2)), "PPM")
    with pytest.raises(UnsupportedImageFormatError, match="PPM"):
        imaging.decode(data, max_pixels=100)


def test_from_pixels_gray_and_truncation() -> None:
    decoded = imaging.from_pixels([[0, 1.9], [254.5, 255]])
    np.testing.assert_array_equal(decoded.pixels, [[0, 1], [254, 255]])
    assert decoded.pixels.dtype == np.uint8


def test_from_pixels_single_channel_squeezed() -> None:
    assert imaging.from_pixels([[[1], [2]]]).pixels.shape == (1, 2)


@pytest.mark.parametrize(("channels", "alpha"), [(1, False), (2, True), (3, False), (4, True)])
def test_from_pixels_alpha_is_the_last_of_two_or_four_channels(channels: int, alpha: bool) -> None:
    decoded = imaging.from_pixels([[[7] * channels] * 2])
    assert decoded.alpha is alpha
    assert decoded.channels == channels


def test_decode_base64_ignores_line_breaks_and_spaces() -> None:
    data = png_bytes(np.arange(64, dtype=np.uint8).reshape(8, 8))
    text = base64.b64encode(data).decode()
    wrapped = "\n".join(text[i : i + 20] for i in range(0, len(text), 20)) + " \r\n"
    assert imaging.decode_base64(wrapped) == data


@pytest.mark.parametrize("junk", ["!", "-", "_", "*"])
def test_decode_base64_rejects_characters_outside_the_alphabet(junk: str) -> None:
    text = base64.b64encode(png_bytes(np.zeros((4, 4), np.uint8))).decode()
    with pytest.raises(InvalidSpecError, match="not valid base64"):
        imaging.decode_base64(text[:8] + junk + text[8:])


def test_configure_pillow_sets_the_bomb_guard() -> None:
    saved = Image.MAX_IMAGE_PIXELS
    try:
        imaging.configure_pillow(1234)
        assert Image.MAX_IMAGE_PIXELS == 1234
    finally:
        Image.MAX_IMAGE_PIXELS = saved


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        ([[1, 2], [3]], "rectangular"),
        ([], "non-empty"),
        ([[]], "non-empty"),
        ([[[0] * 7]], "1 to 4 channels"),
        ([[[0] * 5]], "1 to 4 channels"),
        ([["a", 1]], "only numbers"),
        ([[None, 1]], "only numbers"),
        ([[float("nan"), 1]], "finite"),
        ([[256, 1]], "0..255"),
        ([[255.5, 1]], "0..255"),
        ([[-1, 1]], "0..255"),
        ([1, 2, 3], "1-D"),
    ],
)
def test_from_pixels_rejects_bad_arrays(pixels: list[object], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        imaging.from_pixels(pixels)


def test_to_gray_matches_pillow() -> None:
    rgb = RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(imaging.to_gray(imaging.Decoded(rgb)).pixels, expected)


@pytest.mark.parametrize("fixed", [0, 1, 2])
def test_to_gray_matches_pillow_on_every_pair_of_channels(fixed: int) -> None:
    """Every (a, b) pair of the two other channels, with channel ``fixed`` at 255: rounding
    cases a random sample misses (a coefficient off by one in 65536 shows here)."""
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    channels = [a, b]
    channels.insert(fixed, np.full_like(a, 255))
    rgb = np.dstack(channels).astype(np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L"))
    np.testing.assert_array_equal(imaging.to_gray(imaging.Decoded(rgb)).pixels, expected)


def test_to_gray_float_uses_itu_601_weights() -> None:
    rgb = np.array([[[100, 0, 0], [0, 100, 0], [0, 0, 100], [-10, 20, 300]]], np.float32)
    gray = imaging.to_gray(imaging.Decoded(rgb)).pixels
    assert gray.dtype == np.float32
    np.testing.assert_allclose(
        gray, [[29.9, 58.7, 11.4, -2.99 + 11.74 + 34.2]], rtol=1e-6, atol=1e-4
    )


def test_to_gray_keeps_alpha() -> None:
    rgba = RNG.integers(0, 256, (4, 4, 4), dtype=np.uint8)
    gray = imaging.to_gray(imaging.Decoded(rgba, alpha=True))
    assert gray.alpha
    assert gray.pixels.shape == (4, 4, 2)
    np.testing.assert_array_equal(gray.pixels[..., 1], rgba[..., 3])


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("strategy", sorted(imaging.PNG_STRATEGIES))
def test_encode_png_roundtrip(channels: int, strategy: str) -> None:
    shape = (9, 5) if channels == 1 else (9, 5, channels)
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    data = imaging.encode_png(pixels, compress_level=1, strategy=strategy)
    np.testing.assert_array_equal(decode_png(data), pixels)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("row_filter", sorted(imaging.PNG_FILTERS))
@pytest.mark.parametrize("level", [0, 6])
@pytest.mark.parametrize("encoder", imaging.PNG_ENCODERS)
def test_encode_png_roundtrip_every_row_filter(
    channels: int, row_filter: str, level: int, encoder: str
) -> None:
    shape = (7, 6) if channels == 1 else (7, 6, channels)
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    data = imaging.encode_png(
        pixels[:, ::-1],  # a non-contiguous view must be accepted too
        compress_level=level,
        strategy="default",
        row_filter=row_filter,
        encoder=encoder,
    )
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode == {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    np.testing.assert_array_equal(decode_png(data), pixels[:, ::-1])


@pytest.mark.parametrize(
    ("zero_fraction", "expected"),
    [(0.0, {4}), (0.2, {4}), (0.25, {0}), (0.6, {0})],  # 0 = None, 4 = Paeth (PNG spec)
)
@pytest.mark.parametrize("encoder", ["libpng", "libdeflate", "isal"])
def test_encode_png_auto_filter_none_for_sparse_images(
    zero_fraction: float, expected: set[int], encoder: str
) -> None:
    pixels = RNG.integers(1, 256, (40, 25), dtype=np.uint8)
    pixels.flat[: int(zero_fraction * pixels.size)] = 0
    if encoder != "libpng":
        expected = {2 if code == 4 else code for code in expected}  # Up where libpng has Paeth
    data = imaging.encode_png(
        pixels, compress_level=1, strategy="huffman", row_filter="auto", encoder=encoder
    )
    assert set(png_row_filters(data)[1:]) == expected  # the first row has no row above
    np.testing.assert_array_equal(decode_png(data), pixels)


def test_encode_png_refuses_float() -> None:
    with pytest.raises(TypeError):
        imaging.encode_png(np.zeros((2, 2), np.float32), compress_level=1, strategy="default")  # type: ignore[arg-type]


# --- the service's PNG framing (isal, libdeflate): checked by pngcheck, Pillow and libpng ------

PNGCHECK = shutil.which("pngcheck")


def _check_png(data: bytes, pixels: np.ndarray) -> None:
    """pngcheck accepts the file (CRCs, chunk order, zlib stream, filter bytes); Pillow and
    libpng (imagecodecs) both decode it to ``pixels``."""
    assert PNGCHECK is not None, "pngcheck is missing: make test installs it (Debian package)"
    result = subprocess.run([PNGCHECK, "-q", "-"], input=data, capture_output=True, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    squeezed = pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    with Image.open(io.BytesIO(data)) as img:
        np.testing.assert_array_equal(np.asarray(img), squeezed)
    decoded = imagecodecs.png_decode(data)
    np.testing.assert_array_equal(decoded.reshape(squeezed.shape), squeezed)


_SIDES = st.integers(1, 40)


@settings(max_examples=150, deadline=None)
@given(
    shape=st.one_of(
        st.tuples(_SIDES, _SIDES),
        st.tuples(_SIDES, _SIDES, st.integers(1, 4)),
        st.tuples(st.just(1), st.integers(1, 300), st.integers(1, 4)),
        st.tuples(st.integers(1, 300), st.just(1), st.integers(1, 4)),
    ),
    row_filter=st.sampled_from(["auto", "none", "sub", "up"]),
    level=st.sampled_from([0, 1, 2, 3, 6, 9]),
    encoder=st.sampled_from(["isal", "libdeflate"]),
    sparse=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_encode_png_own_framing_fuzz(shape, row_filter, level, encoder, sparse, seed) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    if sparse:
        pixels[rng.random(shape) < 0.7] = 0
    data = imaging.encode_png(
        pixels,
        compress_level=level,
        strategy="huffman",
        row_filter=row_filter,
        encoder=encoder,
    )
    _check_png(data, pixels)


@pytest.mark.parametrize("encoder", ["isal", "libdeflate"])
@pytest.mark.parametrize("row_filter", ["none", "sub", "up"])
def test_encode_png_own_framing_large_image_crosses_filter_stripes(
    row_filter: str, encoder: str
) -> None:
    # 700 rows of 3 * 900 bytes: several filter stripes; "up" must reach across each seam
    y, x = np.mgrid[0:700, 0:900]
    pixels = np.dstack([(x + y) % 256, (x * y) % 251, (3 * x - y) % 256]).astype(np.uint8)
    data = imaging.encode_png(
        pixels, compress_level=1, strategy="huffman", row_filter=row_filter, encoder=encoder
    )
    assert set(png_row_filters(data)) == {imaging._OWN_FILTERS[row_filter]}
    _check_png(data, pixels)


def test_encode_png_isal_levels_stop_at_3_and_0_stores() -> None:
    y, x = np.mgrid[0:64, 0:64]
    pixels = ((x * y) % 13 * 19).astype(np.uint8)

    def encode_at(level: int) -> bytes:
        return imaging.encode_png(
            pixels, compress_level=level, strategy="default", row_filter="none", encoder="isal"
        )

    assert encode_at(9) == encode_at(3) != encode_at(1)
    stream = b"".join(body for kind, body in png_chunks(encode_at(0)) if kind == b"IDAT")
    assert stream[2] & 0b110 == 0  # the first deflate block's BTYPE: 00, stored
    scanlines = np.hstack([np.zeros((64, 1), np.uint8), pixels])  # filter byte 0 (none)
    assert zlib.decompress(stream) == scanlines.tobytes()
    for level in (0, 1, 2, 3):
        _check_png(encode_at(level), pixels)


def test_pngcheck_rejects_a_corrupt_crc() -> None:
    # the check above can fail: pngcheck does verify the CRCs this encoder writes
    pixels = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    data = bytearray(imaging.encode_png(pixels, compress_level=1, strategy="huffman"))
    data[29] ^= 0xFF  # the last byte of IHDR's CRC (8 + 4 + 4 + 13 data bytes)
    assert PNGCHECK is not None
    result = subprocess.run([PNGCHECK, "-q", "-"], input=bytes(data), capture_output=True)
    assert result.returncode != 0


# --- JPEG straight into the array (libjpeg-turbo through imagecodecs) ---------------------------

_JPEG_OPTIONS = [
    {"quality": 90},
    {"quality": 75, "subsampling": 0},
    {"quality": 95, "subsampling": 1},
    {"quality": 60, "progressive": True},
    {"quality": 85, "optimize": True},
    {"quality": 80, "restart_marker_rows": 3},
]


def _smooth(shape: tuple[int, ...]) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = (128 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0)).astype(np.uint8)
    noise = RNG.integers(0, 40, shape[:2], dtype=np.uint8)
    if len(shape) == 2:
        return base + noise
    return np.dstack([base + noise, 255 - base, noise])


@pytest.mark.parametrize("options", _JPEG_OPTIONS)
@pytest.mark.parametrize("shape", [(97, 131), (97, 131, 3), (1, 17, 3), (23, 1)])
def test_decode_jpeg_fast_path_gives_pillows_pixels(
    options: dict, shape: tuple[int, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.BytesIO()
    Image.fromarray(_smooth(shape)).save(buffer, format="JPEG", **options)
    data = buffer.getvalue()
    calls = []
    original = imagecodecs.jpeg8_decode
    monkeypatch.setattr(imagecodecs, "jpeg8_decode", lambda d: calls.append(1) or original(d))
    decoded = imaging.decode(data, max_pixels=10**6)
    assert calls, "the plain JPEG did not take the libjpeg-turbo path"
    with Image.open(io.BytesIO(data)) as img:
        np.testing.assert_array_equal(decoded.pixels, np.asarray(img))


def test_decode_jpeg_without_eoi_goes_through_pillow_and_is_refused() -> None:
    # libjpeg-turbo alone would fill the missing rows and succeed
    buffer = io.BytesIO()
    Image.fromarray(_smooth((64, 64, 3))).save(buffer, format="JPEG")
    imagecodecs.jpeg8_decode(buffer.getvalue()[:-2])  # the hazard: no error here
    with pytest.raises(UndecodableImageError):
        imaging.decode(buffer.getvalue()[:-2], max_pixels=10**6)


def test_decode_jpeg_with_exif_orientation_is_turned() -> None:
    pixels = _smooth((40, 60, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(Image.fromarray(pixels), "JPEG", exif=exif, quality=95)
    decoded = imaging.decode(data, max_pixels=10**6)
    assert decoded.pixels.shape == (60, 40, 3)
    with Image.open(io.BytesIO(data)) as img:
        np.testing.assert_array_equal(decoded.pixels, np.asarray(ImageOps.exif_transpose(img)))


def test_to_gray_in_stripes_matches_pillow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imaging, "_GRAY_STRIPE_PIXELS", 7 * 33)  # 7-row stripes, a short last
    rgba = RNG.integers(0, 256, (45, 33, 4), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgba[..., :3]).convert("L"))
    gray = imaging.to_gray(imaging.Decoded(rgba, alpha=True))
    np.testing.assert_array_equal(gray.pixels[..., 0], expected)
    np.testing.assert_array_equal(gray.pixels[..., 1], rgba[..., 3])


def test_ascent_is_served_under_a_pixel_limit_below_its_size(
    make_client: Callable[..., TestClient], ascent: np.ndarray
) -> None:
    """Pillow's bomb guard follows max_pixels; the built-in picture does not go through it."""
    imaging.ascent.cache_clear()
    client = make_client(max_pixels=100_000)
    answer = client.post("/pool", json={"size": 1})
    assert answer.status_code == 200, answer.text
    np.testing.assert_array_equal(imagecodecs.png_decode(answer.content), ascent)
