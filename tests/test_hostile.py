"""Hostile and broken input over HTTP: each gets a clear answer, and the app keeps answering.

Complements ``tests/api/test_errors.py`` (spec errors, byte/pixel limits, garbage uploads) and
``tests/test_imaging.py`` (decoder unit tests): here the attacker's files and bodies travel
through the whole ASGI app, in both encodings, and after each one ``/healthz`` and a real
operation must still succeed. A 500 would surface as an exception from the ``TestClient``.
"""

from __future__ import annotations

import base64
import io
import json
import resource
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import service
from testkit.images import bomb_png, encode, png_chunk
from tests.conftest import png_bytes

RNG = np.random.default_rng(66)
ENDPOINTS = ["/convolve", "/pool", "/pipeline"]
VALID = {
    "/convolve": {"preset": "sobel-x"},
    "/pool": {"size": 2},
    "/pipeline": {"steps": [{"op": "pool", "size": 2}]},
}
# pool size 1 / max is the identity: the JSON answer shows the pixels exactly as decoded
IDENTITY = {"method": "max", "size": 1, "format": "json"}
JSON_HEADERS = {"content-type": "application/json"}
SERVICE_DIR = str(Path(service.__file__).resolve().parent)


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _restore_pillow_bomb_guard() -> Iterator[None]:
    """``create_app`` sets Pillow's process-wide guard; an app with a tiny ``max_pixels``
    (``make_client``) must not leak its guard into the module's ``client``."""
    saved = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = saved


def _bomb_gif(width: int = 65_535, height: int = 65_535) -> bytes:
    """A small GIF whose logical screen and frame declare ``width`` x ``height``."""
    data = bytearray(encode(Image.new("L", (4, 4), 7), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # logical screen descriptor
    frame = data.index(b"\x2c")  # image descriptor: ',' x y w h
    data[frame + 5 : frame + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _bomb_jpeg(width: int = 65_000, height: int = 65_000) -> bytes:
    """A small JPEG whose SOF0 marker declares ``width`` x ``height``."""
    data = bytearray(encode(Image.new("L", (8, 8), 7), "JPEG"))
    sof = data.index(b"\xff\xc0")  # FFC0 length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _tiff(samples: np.ndarray) -> bytes:
    """An uncompressed little-endian TIFF of 16-bit ``samples`` (M, N) or (M, N, 3), by hand.

    Pillow cannot write 16-bit RGB, so the file is assembled here: header, one IFD of ten
    entries, the BitsPerSample array, then one strip of pixel data.
    """
    height, width = samples.shape[:2]
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    data = samples.astype("<u2").tobytes()
    bits_at = 8 + 2 + 10 * 12 + 4
    bits = struct.pack(f"<{channels}H", *([16] * channels)) if channels > 1 else b""
    data_at = bits_at + len(bits)
    bits_value = bits_at if channels > 1 else 16
    entries = [
        (256, 3, 1, width),
        (257, 3, 1, height),
        (258, 3, channels, bits_value),
        (259, 3, 1, 1),  # no compression
        (262, 3, 1, 2 if channels == 3 else 1),  # RGB or BlackIsZero
        (273, 4, 1, data_at),
        (277, 3, 1, channels),
        (278, 3, 1, height),
        (279, 4, 1, len(data)),
        (284, 3, 1, 1),  # chunky
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packed = (
            struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
        )
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + bits + data


BOMBS = {"png": bomb_png, "gif": _bomb_gif, "jpeg": _bomb_jpeg}


def _upload(client: TestClient, path: str, data: bytes, spec: dict[str, Any] | None = None) -> Any:
    files = {"image": ("upload.bin", data, "application/octet-stream")}
    return client.post(path, files=files, data={"spec": json.dumps(spec or VALID[path])})


def _as_base64(
    client: TestClient, path: str, data: bytes, spec: dict[str, Any] | None = None
) -> Any:
    body = {**(spec or VALID[path]), "image": {"data": base64.b64encode(data).decode()}}
    return client.post(path, json=body)


SENDERS = {"multipart": _upload, "base64": _as_base64}


def assert_error(response: Any, status: int) -> Any:
    """``status`` with a JSON ``detail`` that says something (and the security headers, and no
    traceback or path); returns the detail."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    detail = response.json()["detail"]
    if isinstance(detail, list):
        assert detail
        assert all(issue["msg"] and issue["loc"][0] == "body" for issue in detail)
    else:
        assert isinstance(detail, str)
        assert detail
    text = response.text
    assert "Traceback" not in text
    assert 'File "' not in text
    assert SERVICE_DIR not in text  # no source path, wherever the service runs from
    return detail


def assert_alive(client: TestClient) -> None:
    """The app still answers: liveness and a real (small) operation."""
    assert client.get("/healthz").status_code == 200
    response = client.post("/pool", json={"image": {"pixels": [[1, 2], [3, 4]]}, **IDENTITY})
    assert response.status_code == 200
    assert response.json()["pixels"] == [[1, 2], [3, 4]]


def _identity_pixels(client: TestClient, data: bytes) -> np.ndarray:
    response = _upload(client, "/pool", data, IDENTITY)
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    pixels = np.asarray(body["pixels"])
    assert body["channels"] == (1 if pixels.ndim == 2 else pixels.shape[2])
    return pixels


# --- broken and hostile image files -----------------------------------------------------------


@pytest.mark.parametrize("sender", sorted(SENDERS))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "TIFF"])
def test_truncated_image_is_400(client: TestClient, fmt: str, sender: str) -> None:
    pixels = RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), fmt)
    response = SENDERS[sender](client, "/pool", data[: len(data) // 2])
    detail = assert_error(response, 400)
    assert "decoded" in detail or "header" in detail
    assert_alive(client)


@pytest.mark.parametrize("sender", sorted(SENDERS))
def test_png_with_corrupt_crc_is_400(client: TestClient, sender: str) -> None:
    data = bytearray(png_bytes(RNG.integers(0, 256, (16, 16), dtype=np.uint8)))
    idat = data.index(b"IDAT")
    data[idat + 4] ^= 0xFF  # first compressed byte: the CRC no longer matches
    response = SENDERS[sender](client, "/convolve", bytes(data))
    assert_error(response, 400)
    assert_alive(client)


@pytest.mark.parametrize("sender", sorted(SENDERS))
@pytest.mark.parametrize("fmt", sorted(BOMBS))
def test_decompression_bomb_is_413_from_header(client: TestClient, fmt: str, sender: str) -> None:
    data = BOMBS[fmt]()
    assert len(data) < 1024
    before_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        response = SENDERS[sender](client, "/convolve", data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    detail = assert_error(response, 413)
    assert "limit" in detail
    assert "40000000 pixels" in detail
    # Decoding 50000 x 50000 (or 65k x 65k) would need >= 2.5 GB; a refusal from the header
    # needs next to nothing (NumPy and Python allocations are traced; Pillow's show in RSS).
    assert peak < 8 * 1024 * 1024
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_rss_kib) / 1024
    assert grown_mib < 200
    assert_alive(client)


@pytest.mark.parametrize("where", ["before", "after"])
def test_png_with_huge_text_chunk_is_400(client: TestClient, where: str) -> None:
    """A zTXt chunk inflating to 64 MiB of text, before or after the image data: Pillow's
    text limit stops it (at open, or when it reads the chunks after IDAT)."""
    base = png_bytes(np.full((4, 4), 9, np.uint8))
    ztxt = png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"A" * (64 * 1024 * 1024), 9))
    at = 33 if where == "before" else len(base) - 12  # after IHDR, or just before IEND
    data = base[:at] + ztxt + base[at:]
    assert len(data) < 128 * 1024
    response = _upload(client, "/pool", data, IDENTITY)
    detail = assert_error(response, 400)
    assert "too large" in detail
    assert_alive(client)


def test_image_declaring_zero_width_is_400(client: TestClient) -> None:
    response = _upload(client, "/pool", bomb_png(width=0, height=10))
    assert_error(response, 400)
    assert_alive(client)


@pytest.mark.parametrize("fmt", ["PPM", "ICO", "PCX", "TGA"])
def test_unaccepted_image_format_is_415(client: TestClient, fmt: str) -> None:
    data = encode(Image.new("RGB", (16, 16), (1, 2, 3)), fmt)
    response = _upload(client, "/pool", data)
    detail = assert_error(response, 415)
    assert fmt in detail
    assert_alive(client)


def test_eps_is_415_and_never_rendered(client: TestClient) -> None:
    """Pillow would hand EPS to Ghostscript on load; the format is refused from the header."""
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\nshowpage\n"
    response = _upload(client, "/pool", eps)
    assert_error(response, 415)
    assert_alive(client)


def test_svg_text_is_400(client: TestClient) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><image href="http://169.254.169.254/"/></svg>'
    response = _upload(client, "/pool", svg)
    assert_error(response, 400)
    assert_alive(client)


# --- frames, modes and orientation: converted as documented -----------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "PNG", "WEBP"])
def test_multiframe_upload_uses_first_frame(client: TestClient, fmt: str) -> None:
    frames = [Image.new("L", (5, 3), value) for value in (10, 200, 90)]
    options: dict[str, Any] = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)
    with Image.open(io.BytesIO(data)) as img:
        assert getattr(img, "n_frames", 1) == 3
    pixels = _identity_pixels(client, data)
    assert pixels.shape[:2] == (3, 5)
    assert np.all(pixels.reshape(15, -1)[:, :3] == 10)


def test_16bit_png_is_scaled_to_8bit(client: TestClient) -> None:
    wide = np.array([[0, 257, 65535], [32896, 1000, 128]], dtype=np.uint16)
    pixels = _identity_pixels(client, encode(Image.fromarray(wide), "PNG"))
    expected = [[round(int(v) / 257) for v in row] for row in wide]
    assert pixels.tolist() == expected


def test_16bit_gray_tiff_is_scaled_to_8bit(client: TestClient) -> None:
    wide = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    pixels = _identity_pixels(client, _tiff(wide))
    assert pixels.tolist() == [[0, 1, 255, 128]]


def test_48bit_rgb_tiff_keeps_the_high_byte(client: TestClient) -> None:
    """Pillow reads 16-bit-per-channel RGB as 8-bit RGB, keeping each sample's high byte."""
    wide = np.zeros((2, 2, 3), dtype=np.uint16)
    wide[0, 0] = (65535, 0, 32768)
    wide[1, 0] = (256, 511, 255)
    pixels = _identity_pixels(client, _tiff(wide))
    assert pixels.shape == (2, 2, 3)
    assert pixels[0, 0].tolist() == [255, 0, 128]
    assert pixels[1, 0].tolist() == [1, 1, 0]


def test_palette_png_becomes_rgb(client: TestClient) -> None:
    img = Image.new("P", (3, 2))
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255]
    img.putpalette(palette + [0] * (768 - len(palette)))
    for col in range(3):
        img.putpixel((col, 1), col)
    pixels = _identity_pixels(client, encode(img, "PNG"))
    assert pixels.shape == (2, 3, 3)
    assert pixels[1].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    assert pixels[0].tolist() == [[255, 0, 0]] * 3


def test_palette_png_with_transparency_becomes_rgba(client: TestClient) -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([9, 9, 9, 0, 255, 0] + [0] * 762)
    img.putpixel((1, 0), 1)
    pixels = _identity_pixels(client, encode(img, "PNG", transparency=0))
    assert pixels.tolist() == [[[9, 9, 9, 0], [0, 255, 0, 255]]]


def test_cmyk_jpeg_becomes_rgb(client: TestClient) -> None:
    img = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # pure red in CMYK
    pixels = _identity_pixels(client, encode(img, "JPEG", quality=95))
    assert pixels.shape == (8, 8, 3)
    red, green, blue = (pixels[..., c].mean() for c in range(3))
    assert red > 230
    assert green < 25
    assert blue < 25


def test_la_png_keeps_alpha(client: TestClient) -> None:
    la = RNG.integers(0, 256, (3, 4, 2), dtype=np.uint8)
    pixels = _identity_pixels(client, encode(Image.fromarray(la, mode="LA"), "PNG"))
    assert pixels.tolist() == la.tolist()


def test_bilevel_bmp_becomes_gray_0_255(client: TestClient) -> None:
    bits = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1")
    pixels = _identity_pixels(client, encode(bits, "BMP"))
    assert pixels.tolist() == [[0, 255], [255, 0]]


def test_float_tiff_is_clipped_and_truncated(client: TestClient) -> None:
    values = np.array([[-5.0, 0.5, 254.9, 1000.0]], dtype=np.float32)
    pixels = _identity_pixels(client, encode(Image.fromarray(values, mode="F"), "TIFF"))
    assert pixels.tolist() == [[0, 0, 254, 255]]


def test_exif_rotated_jpeg_is_shown_upright(client: TestClient) -> None:
    stored = np.zeros((16, 32), np.uint8)
    stored[:, :16] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer rotates 90 degrees clockwise: the left half goes on top
    data = encode(Image.fromarray(stored), "JPEG", exif=exif, quality=95)
    pixels = _identity_pixels(client, data)
    assert pixels.shape == (32, 16)
    assert pixels[:16].mean() > 240
    assert pixels[16:].mean() < 15


def test_exif_rotated_rgb_upload_matches_pillow_transpose(client: TestClient) -> None:
    """Orientation 8 (the viewer turns it 90 degrees counter-clockwise) on an RGB PNG."""
    stored = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 8
    data = encode(Image.fromarray(stored), "PNG", exif=exif)
    pixels = _identity_pixels(client, data)
    np.testing.assert_array_equal(pixels, np.rot90(stored, k=1))


# --- pixels arrays ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_pixels", "message"),
    [
        ("[[true, false]]", "numbers"),
        ("[[1, null]]", "numbers"),
        ('[[{"r": 1}]]', "numbers"),
        ("[[1, [2]]]", "rectangular"),
        ("[[[[1]]]]", "4-D"),
        ("[[], []]", "non-empty"),
        ("[[1e400, 1]]", "finite"),
        ("[[1, Infinity]]", "finite"),
        ("[[1, 100000000000000000000000000000000]]", "numbers"),
        ("[[-1e-9, 1]]", "0..255"),
        ('[["0x10", 1]]', "numbers"),
        ('"[[1, 2]]"', "list"),
    ],
)
def test_hostile_pixel_literals_are_422(client: TestClient, raw_pixels: str, message: str) -> None:
    body = '{"image": {"pixels": ' + raw_pixels + "}}"
    response = client.post("/pool", content=body, headers=JSON_HEADERS)
    detail = assert_error(response, 422)
    assert detail[0]["loc"][:2] == ["body", "image"]
    assert message in json.dumps(detail)
    assert_alive(client)


def test_pixels_over_pixel_limit_are_refused(make_client) -> None:
    client = make_client(max_pixels=100, max_kernel_side=9, max_pool_size=8)
    response = client.post("/pool", json={"image": {"pixels": [[0] * 11] * 10}})
    detail = assert_error(response, 413)
    assert "110 pixels; the limit is 100 pixels" in detail
    assert_alive(client)


# --- kernels, pooling windows, pipelines ----------------------------------------------------


@pytest.mark.parametrize(
    "raw_kernel",
    [
        '[["one", "2"]]',
        "[[[1]]]",
        "[[1e308]]",
        "[[1e309]]",
        "[[1, 2], 3]",
        "[[null]]",
        "7",
        '"sobel-x"',
        "[[" + ", ".join(["1"] * 10_000) + "]]",
    ],
    ids=["strings", "3-deep", "huge", "overflow", "mixed", "null", "scalar", "name", "1x10000"],
)
def test_bad_kernel_values_are_422(client: TestClient, raw_kernel: str) -> None:
    response = client.post("/convolve", content=f'{{"kernel": {raw_kernel}}}', headers=JSON_HEADERS)
    detail = assert_error(response, 422)
    assert detail[0]["loc"][:2] == ["body", "kernel"]
    assert_alive(client)


@pytest.mark.parametrize(
    "kernel", [[[1, 2], [3, 4]], [[1] * 4] * 4, [[1, 2, 3]], [[1]] * 3, [[1] * 5] * 3]
)
def test_codelab_even_or_non_square_kernel_is_422_in_multipart(client: TestClient, kernel) -> None:
    spec = {"kernel": kernel, "mode": "codelab"}
    response = _upload(client, "/convolve", png_bytes(np.zeros((8, 8), np.uint8)), spec)
    detail = assert_error(response, 422)
    assert detail[0]["loc"][:2] == ["body", "spec"]
    assert "odd square" in detail[0]["msg"]
    assert_alive(client)


def test_codelab_kernel_larger_than_image_keeps_every_pixel(client: TestClient) -> None:
    """The lesson's loop leaves a margin of half the kernel untouched: here, everything."""
    spec = {"kernel": [[1] * 9] * 9, "mode": "codelab", "image": {"pixels": [[1, 2], [3, 4]]}}
    response = client.post("/convolve", json={**spec, "format": "json"})
    assert response.status_code == 200
    assert response.json()["pixels"] == [[1, 2], [3, 4]]
    assert_alive(client)


def _outside_index(i: int, n: int, mode: str) -> int | None:
    """Where index ``i`` of an axis of length ``n`` reads from (None: the constant 0)."""
    if 0 <= i < n:
        return i
    if mode == "constant":
        return None
    if mode == "nearest":
        return min(max(i, 0), n - 1)
    if mode == "wrap":
        return i % n
    if mode == "reflect":  # d c b a | a b c d | d c b a, period 2n
        j = i % (2 * n)
        return j if j < n else 2 * n - 1 - j
    if n == 1:  # mirror: d c b | a b c d | c b a, period 2n - 2
        return 0
    j = i % (2 * n - 2)
    return j if j < n else 2 * n - 2 - j


def _correlate_by_definition(image: np.ndarray, kernel: np.ndarray, mode: str) -> np.ndarray:
    rows, cols = image.shape
    kr, kc = kernel.shape
    out = np.zeros(image.shape)
    for r in range(rows):
        for c in range(cols):
            total = 0.0
            for m in range(kr):
                for n in range(kc):
                    rr = _outside_index(r + m - kr // 2, rows, mode)
                    cc = _outside_index(c + n - kc // 2, cols, mode)
                    if rr is not None and cc is not None:
                        total += kernel[m, n] * image[rr, cc]
            out[r, c] = total
    return out


@pytest.mark.parametrize(
    "border", ["reflect", "mirror", "nearest", "wrap", "constant", "keep", "valid"]
)
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (2, 3)])
def test_kernel_larger_than_image(client: TestClient, border: str, shape) -> None:
    """A 63 x 31 kernel on a tiny image: scipy.ndimage's result for its modes, the input for
    `keep` (every pixel is a border pixel), and a 422 for `valid` (no output pixel)."""
    image = RNG.integers(0, 256, shape)
    kernel = RNG.normal(size=(63, 31)).round(3)
    spec = {
        "image": {"pixels": image.tolist()},
        "kernel": kernel.tolist(),
        "border": border,
        "format": "json",
    }
    response = client.post("/convolve", json=spec)
    if border == "valid":
        detail = assert_error(response, 422)
        assert detail[0]["loc"] == ["body", "kernel"]
    else:
        assert response.status_code == 200, response.text[:300]
        out = np.asarray(response.json()["pixels"]).reshape(shape)
        if border == "keep":
            expected = image
        else:
            # scipy.ndimage.correlate reads uninitialised memory in 'reflect' when the kernel is
            # many times the image (scipy 1.17: garbage such as 6.9e-310 in the output), so
            # the oracle here is the border modes' definitions, index by index.
            values = _correlate_by_definition(image.astype(np.float64), kernel, border)
            expected = np.clip(values, 0, 255).astype(np.uint8)
        # float32 in the service, float64 here: truncation may differ by one at a boundary
        assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert_alive(client)


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({"size": [1, 3]}, 422),
        ({"size": [3, 1]}, 422),
        ({"size": 3, "edge": "partial"}, 200),
        ({"size": 1, "stride": 1000}, 200),
        ({"size": 1, "stride": [1, 10**30]}, 200),
        ({"size": 10**30}, 422),
        ({"size": 2.5}, 422),
        ({"size": [2, 2, 2]}, 422),
        ({"size": "2"}, 422),  # a JSON number, as the schema says (issue 12)
        ({"size": True}, 422),
        ({"stride": 0}, 422),
    ],
    ids=str,
)
def test_pool_window_edge_cases(client: TestClient, spec: dict, status: int) -> None:
    body = {"image": {"pixels": [[1, 2], [3, 4]]}, "format": "json", **spec}
    response = client.post("/pool", json=body)
    if status == 200:
        assert response.status_code == 200, response.text[:300]
        assert response.json()["pixels"] in ([[4]], [[1]], [[1], [3]])
    else:
        assert_error(response, 422)
    assert_alive(client)


def test_pool_larger_than_image_after_earlier_step_points_at_step(client: TestClient) -> None:
    spec = {
        "image": {"pixels": RNG.integers(0, 256, (6, 6)).tolist()},
        "steps": [
            {"op": "convolve", "preset": "box-5", "border": "valid"},
            {"op": "pool", "size": 3},
        ],
    }
    response = client.post("/pipeline", json=spec)
    detail = assert_error(response, 422)
    assert detail[0]["loc"][:3] == ["body", "steps", 1]
    assert_alive(client)


def test_pipeline_of_10000_steps_in_a_multipart_spec_is_422(client: TestClient) -> None:
    """The JSON body is tests/api/test_errors.py's; the multipart spec part is parsed apart."""
    spec = {"steps": [{"op": "convolve", "kernel": [[1, 2, 1]] * 3, "weight": 0.1}] * 10_000}
    response = client.post("/pipeline", files={"spec": (None, json.dumps(spec))})
    detail = assert_error(response, 422)
    assert "at most 16 steps, got 10000" in detail[0]["msg"]
    assert_alive(client)


@pytest.mark.parametrize("steps", ['"pool"', "{}", '[{"op": null}]', "[[]]", '[{"op": "pool"}, 1]'])
def test_pipeline_malformed_steps_are_422(client: TestClient, steps: str) -> None:
    response = client.post("/pipeline", content=f'{{"steps": {steps}}}', headers=JSON_HEADERS)
    detail = assert_error(response, 422)
    assert detail[0]["loc"][:2] == ["body", "steps"]
    assert_alive(client)


# --- numbers that overflow ----------------------------------------------------------------


@pytest.mark.parametrize("field", ["weight", "cval"])
@pytest.mark.parametrize("literal", ["1e309", "-1e309", "1e7", "123456789012345678901234567890"])
def test_out_of_range_numbers_are_422(client: TestClient, field: str, literal: str) -> None:
    body = f'{{"preset": "box-3", "border": "constant", "{field}": {literal}}}'
    response = client.post("/convolve", content=body, headers=JSON_HEADERS)
    detail = assert_error(response, 422)
    assert detail[0]["loc"] == ["body", field]
    assert_alive(client)


def test_extreme_but_valid_values_give_raw_json_or_422(client: TestClient) -> None:
    spec = {
        "image": {"pixels": [[255] * 63] * 63},
        "kernel": [[1e6] * 63] * 63,
        "weight": 1e6,
        "scale": "raw",
        "format": "json",
    }
    response = client.post("/convolve", json=spec)
    if response.status_code == 200:
        assert np.isfinite(response.json()["max"])
    else:
        assert_error(response, 422)
    assert_alive(client)


# --- content types and bodies -------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "image/png",
        "application/xml",
        "application/octet-stream",
        "text/json",
        "multipart/mixed; boundary=x",
        "application/json-seq",
        "*/*",
    ],
)
@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_content_type_is_415(client: TestClient, path: str, content_type: str) -> None:
    body = json.dumps(VALID[path]).encode()
    response = client.post(path, content=body, headers={"content-type": content_type})
    assert_error(response, 415)
    assert_alive(client)


def test_raw_png_body_is_415_not_decoded(client: TestClient) -> None:
    data = png_bytes(np.zeros((8, 8), np.uint8))
    response = client.post("/pool", content=data, headers={"content-type": "image/png"})
    detail = assert_error(response, 415)
    assert "multipart/form-data" in detail
    assert_alive(client)


def test_structured_json_suffix_is_accepted(client: TestClient) -> None:
    body = json.dumps({"image": {"pixels": [[5]]}, **IDENTITY})
    response = client.post(
        "/pool", content=body, headers={"content-type": "application/vnd.x+json"}
    )
    assert response.status_code == 200
    assert response.json()["pixels"] == [[5]]


@pytest.mark.parametrize("content_type", ["Application/JSON", "APPLICATION/JSON; charset=UTF-8"])
def test_json_content_type_is_case_insensitive(client: TestClient, content_type: str) -> None:
    """Media types are case-insensitive (RFC 9110, section 8.3.1)."""
    body = json.dumps({"image": {"pixels": [[5]]}, **IDENTITY})
    response = client.post("/pool", content=body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["pixels"] == [[5]]


def test_multipart_content_type_is_case_insensitive(client: TestClient) -> None:
    pixels = np.array([[9, 0], [0, 9]], np.uint8)
    request = httpx.Request(
        "POST",
        "http://test/pool",
        files={"image": ("a.png", png_bytes(pixels), "image/png")},
        data={"spec": json.dumps(IDENTITY)},
    )
    content_type = request.headers["content-type"].replace(
        "multipart/form-data", "Multipart/Form-Data"
    )
    response = client.post("/pool", content=request.read(), headers={"content-type": content_type})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["pixels"] == pixels.tolist()


@pytest.mark.parametrize(
    "body", [b"[]", b'[{"size": 2}]', b'"size"', b"2", b"null", b"true", b'""']
)
@pytest.mark.parametrize("path", ENDPOINTS)
def test_json_body_not_an_object_is_422(client: TestClient, path: str, body: bytes) -> None:
    response = client.post(path, content=body, headers=JSON_HEADERS)
    detail = assert_error(response, 422)
    assert detail[0]["type"] in ("model_type", "model_attributes_type", "dict_type")
    assert_alive(client)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe{\x00}\x00",  # UTF-16 with BOM
        b'{"preset": "sobel-x"\x00}',
        b'{"preset": "\xc3\x28"}',  # invalid UTF-8
        b'{"preset": "sobel-x"} trailing',
        b'{"preset": "sobel-x",}',
        b"\xef\xbb\xbf" + b'{"preset": "sobel-x"}',  # UTF-8 BOM
    ],
    ids=["utf16", "nul", "bad-utf8", "trailing", "comma", "bom"],
)
def test_malformed_json_is_422(client: TestClient, body: bytes) -> None:
    response = client.post("/convolve", content=body, headers=JSON_HEADERS)
    assert_error(response, 422)
    assert_alive(client)


DEPTH = 100_000


@pytest.mark.parametrize(
    "body",
    [
        "[" * DEPTH + "]" * DEPTH,
        '{"a": ' * DEPTH + "1" + "}" * DEPTH,
        '{"image": {"pixels": ' + "[" * DEPTH + "]" * DEPTH + "}}",
        '{"kernel": ' + "[" * DEPTH + "1" + "]" * DEPTH + "}",
        '{"preset": "box-3", "weight": ' + "[" * DEPTH,  # unterminated as well
    ],
    ids=["arrays", "objects", "pixels", "kernel", "unterminated"],
)
@pytest.mark.parametrize("path", ["/convolve", "/pool"])
def test_deeply_nested_json_is_422(client: TestClient, path: str, body: str) -> None:
    response = client.post(path, content=body.encode(), headers=JSON_HEADERS)
    detail = assert_error(response, 422)
    assert detail[0]["type"] == "json_invalid"
    assert "recursion limit" in detail[0]["msg"]
    assert_alive(client)


def test_deeply_nested_multipart_spec_is_422(client: TestClient) -> None:
    spec = '{"steps": ' + "[" * DEPTH + "]" * DEPTH + "}"
    response = client.post("/pipeline", files={"spec": (None, spec)})
    detail = assert_error(response, 422)
    assert detail[0]["loc"][:2] == ["body", "spec"]
    assert_alive(client)


def test_declared_content_length_over_limit_is_413(make_client) -> None:
    client = make_client(max_upload_bytes=4096)
    headers = {**JSON_HEADERS, "content-length": str(10**15)}
    response = client.post("/pool", content=b"{}", headers=headers)
    assert_error(response, 413)
    assert_alive(client)


def _raw_asgi_post(app: Any, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """POST through the bare ASGI interface, with header bytes no HTTP client would send."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    incoming = [{"type": "http.request", "body": body, "more_body": False}]
    starts: list[int] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            starts.append(message["status"])

    anyio.run(app, scope, receive, send)
    assert len(starts) == 1
    return starts[0]


@pytest.mark.parametrize("declared", [b"\xb2", b"-1", b"1e3", b" 2", b"0x10", b""])
def test_odd_content_length_header_is_not_a_500(client: TestClient, declared: bytes) -> None:
    """Regression: ``"\xb2"`` (latin-1 "²") passed ``str.isdigit`` and broke ``int()``."""
    headers = [(b"content-type", b"application/json"), (b"content-length", declared)]
    status = _raw_asgi_post(client.app, "/pool", headers, json.dumps(IDENTITY).encode())
    assert status == 200  # an unusable Content-Length is ignored; the streamed bytes count
    assert_alive(client)


def test_upload_over_limit_with_small_declared_length_is_413(make_client) -> None:
    """The body streams past the limit while its declared Content-Length says it would not."""
    client = make_client(max_upload_bytes=4096)
    data = png_bytes(RNG.integers(0, 256, (128, 128), dtype=np.uint8))

    def chunks():
        yield b'{"image": {"data": "'
        yield base64.b64encode(data)
        yield b'"}}'

    headers = {**JSON_HEADERS, "content-length": "100"}
    response = client.post("/pool", content=chunks(), headers=headers)
    assert_error(response, 413)
    assert_alive(client)


# --- multipart bodies ---------------------------------------------------------------------


def test_multipart_spec_as_file_part_is_422(client: TestClient) -> None:
    # An application/json part is JSON text whatever its file name (the contract's encoding;
    # Swagger UI sends it so); any other file part is refused.
    assert client.post("/pool", files={"spec": ("x.json", b"{}", "application/json")}).is_success
    response = client.post(
        "/pool", files={"spec": ("spec.json", b"{}", "application/octet-stream")}
    )
    detail = assert_error(response, 422)
    assert detail[0]["loc"] == ["body", "spec"]
    assert "text part" in detail[0]["msg"]  # says what to send instead
    assert_alive(client)


def test_multipart_image_as_text_part_is_422(client: TestClient) -> None:
    response = client.post("/pool", files={"spec": (None, "{}"), "image": (None, "iVBORw0KGgo=")})
    detail = assert_error(response, 422)
    assert detail[0]["loc"] == ["body", "image"]
    assert_alive(client)


@pytest.mark.parametrize("spec", ["", "null", "[]", '"{}"', "2", "{", "{}}"])
def test_multipart_spec_not_an_object_is_422(client: TestClient, spec: str) -> None:
    response = client.post("/pool", files={"spec": (None, spec)})
    detail = assert_error(response, 422)
    assert detail[0]["loc"][:2] == ["body", "spec"]
    assert_alive(client)


def test_multipart_with_many_parts_is_422(client: TestClient) -> None:
    files = [("spec", (None, "{}"))] + [(f"f{i}", (None, "x")) for i in range(200)]
    response = client.post("/pool", files=files)
    assert_error(response, 422)
    assert_alive(client)


def test_multipart_with_many_files_is_422(client: TestClient) -> None:
    tiny = png_bytes(np.zeros((2, 2), np.uint8))
    files = [("spec", (None, "{}"))] + [("image", ("a.png", tiny, "image/png"))] * 20
    response = client.post("/pool", files=files)
    assert_error(response, 422)
    assert_alive(client)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"--x\r\n\r\n--x--\r\n"),  # no boundary parameter
        ("multipart/form-data; boundary=x", b""),
        ("multipart/form-data; boundary=x", b"garbage without any boundary"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="spec"'),
        (
            "multipart/form-data; boundary=y",
            b'--x\r\nContent-Disposition: form-data; name="spec"\r\n\r\n{}\r\n--x--\r\n',
        ),
        ("multipart/form-data; boundary=" + "b" * 5000, b"--" + b"b" * 5000 + b"--\r\n"),
    ],
    ids=["no-boundary", "empty", "garbage", "unterminated", "wrong-boundary", "long-boundary"],
)
def test_broken_multipart_is_4xx(client: TestClient, content_type: str, body: bytes) -> None:
    response = client.post("/convolve", content=body, headers={"content-type": content_type})
    assert_error(response, 422)
    assert_alive(client)


def test_multipart_filename_is_never_used_as_a_path(client: TestClient, tmp_path) -> None:
    target = tmp_path / "pwned.png"
    name = "../" * 20 + str(target).lstrip("/")
    data = png_bytes(np.full((2, 2), 7, np.uint8))
    response = client.post(
        "/pool",
        files={"image": (name, data, "image/png")},
        data={"spec": json.dumps(IDENTITY)},
    )
    assert response.status_code == 200
    assert response.json()["pixels"] == [[7, 7], [7, 7]]
    assert not target.exists()


def test_multipart_with_base64_image_inside_spec_is_422(client: TestClient) -> None:
    data = base64.b64encode(png_bytes(np.zeros((2, 2), np.uint8))).decode()
    response = client.post("/pool", files={"spec": (None, json.dumps({"image": {"data": data}}))})
    detail = assert_error(response, 422)
    assert detail[0]["loc"][:3] == ["body", "spec", "image"]
    assert_alive(client)


# --- methods and paths --------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_wrong_method_is_405_json(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert_error(response, 405)


@pytest.mark.parametrize(
    "path", ["/kernels/..%2F..%2Fetc%2Fpasswd", "/kernels/%00", "/kernels/" + "a" * 5000]
)
def test_odd_kernel_names_are_404_json(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert_error(response, 404)
    assert len(response.content) < 8000
