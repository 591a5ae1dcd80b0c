"""service.processing: pixel limits, per-step error locations, codelab alpha, PNG settings.

The PNG checks read the encoded file itself (row filter bytes, stored vs compressed size), so
each setting is shown to reach libpng, against what zlib and the PNG spec say it must do.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service import processing
from service.errors import ImageTooLargeError
from service.imaging import Decoded
from service.schemas import ConvolveParams, PixelImage
from testkit.images import png_row_filters
from tests.conftest import decode_png, make_settings

RNG = np.random.default_rng(2024)
# max_pixels=100 needs kernel and pool limits whose squares fit under it
SMALL = {"max_pixels": 100, "max_kernel_side": 9, "max_pool_size": 8}


def test_resolve_pixels_exactly_at_pixel_limit_is_accepted() -> None:
    settings = make_settings(**SMALL)
    decoded = processing.resolve_image(PixelImage(pixels=[[3] * 10] * 10), None, settings)
    assert decoded.pixels.shape == (10, 10)
    with pytest.raises(ImageTooLargeError, match="101 pixels"):
        processing.resolve_image(PixelImage(pixels=[[3] * 101]), None, settings)


@pytest.mark.filterwarnings("error")  # the overflow is answered, not warned about
def test_pipeline_raw_overflow_points_at_the_step(client: TestClient) -> None:
    """Each step multiplies by 1e12: 255 -> 2.55e14 -> 2.55e26 -> 2.55e38 -> inf in float32
    (max 3.4e38), so the fourth step (index 3) overflows and is named in ``loc``."""
    step = {"op": "convolve", "kernel": [[1e6]], "weight": 1e6, "scale": "raw"}
    spec = {"image": {"pixels": [[255, 1]]}, "steps": [step] * 4, "format": "json"}
    response = client.post("/pipeline", json=spec)
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"] == ["body", "steps", 3, "scale"]
    assert "overflow" in issue["msg"]
    three = client.post("/pipeline", json={**spec, "steps": [step] * 3})
    assert three.status_code == 200
    assert three.json()["max"] == pytest.approx(2.55e38, rel=1e-6)
    # an 8-bit last step does not hide the overflow behind a clamp to 255
    clamped = client.post(
        "/pipeline", json={**spec, "steps": [step] * 3 + [{**step, "scale": "clamp"}]}
    )
    assert clamped.status_code == 422
    assert clamped.json()["detail"][0]["loc"] == ["body", "steps", 3, "scale"]


def test_codelab_rgba_keeps_alpha_and_margin() -> None:
    """Codelab with the centre-only kernel 2: interior colour doubles, the 1-pixel margin and
    the whole alpha channel keep their input values."""
    rgba = RNG.integers(0, 100, (5, 6, 4), dtype=np.uint8)
    params = ConvolveParams(kernel=[[0, 0, 0], [0, 2, 0], [0, 0, 0]], mode="codelab")
    result = processing.convolve(Decoded(rgba, alpha=True), params, make_settings())
    assert result.alpha
    expected = rgba.copy()
    expected[1:-1, 1:-1, :3] *= 2
    np.testing.assert_array_equal(result.pixels, expected)


def _render(pixels: np.ndarray, **settings: object) -> bytes:
    body, media_type = processing.render(Decoded(pixels), "png", make_settings(**settings))
    assert media_type == "image/png"
    np.testing.assert_array_equal(decode_png(body), pixels)
    return body


@pytest.mark.parametrize(
    ("row_filter", "code"), [("none", 0), ("sub", 1), ("up", 2), ("avg", 3), ("paeth", 4)]
)
@pytest.mark.parametrize("encoder", ["isal", "libdeflate", "libpng"])
def test_render_png_uses_the_row_filter_setting(row_filter: str, code: int, encoder: str) -> None:
    pixels = RNG.integers(1, 256, (12, 10), dtype=np.uint8)  # no zeros: auto would pick Paeth
    rows = png_row_filters(_render(pixels, png_filter=row_filter, png_encoder=encoder))
    assert set(rows[1:]) == {code}  # libpng may pick another filter for the first row


@pytest.mark.parametrize(("encoder", "code"), [("isal", 2), ("libdeflate", 2), ("libpng", 4)])
def test_render_png_auto_filter_follows_the_encoder(encoder: str, code: int) -> None:
    pixels = RNG.integers(1, 256, (12, 10), dtype=np.uint8)  # no zeros: not an edge map
    rows = png_row_filters(_render(pixels, png_encoder=encoder))
    assert set(rows[1:]) == {code}


def test_render_png_uses_the_zlib_strategy_setting() -> None:
    """Huffman-only coding has no string matches: every one of the 256 x 257 filtered bytes
    costs at least one bit. The default strategy matches the repeated rows to a few hundred
    bytes."""
    flat = np.full((256, 256), 7, np.uint8)
    assert len(_render(flat, png_strategy="huffman", png_encoder="libpng")) >= 256 * 257 // 8
    assert len(_render(flat, png_strategy="default", png_encoder="libpng")) < 1024


@pytest.mark.parametrize("encoder", ["isal", "libdeflate", "libpng"])
def test_render_png_uses_the_compress_level_setting(encoder: str) -> None:
    """Level 0 stores the 256 x 257 filtered bytes uncompressed; level 9 shrinks them."""
    flat = np.full((256, 256), 7, np.uint8)
    common = {"png_strategy": "default", "png_encoder": encoder, "png_filter": "none"}
    assert len(_render(flat, png_compress_level=0, **common)) > 256 * 257
    assert len(_render(flat, png_compress_level=9, **common)) < 1024


# --- stripes (issue 15) --------------------------------------------------------------------------


@pytest.mark.parametrize("border", ["reflect", "wrap", "constant", "keep", "valid"])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("scale", ["clamp", "abs"])
def test_convolve_in_stripes_matches_scipy_and_the_whole_image_path(
    border: str, channels: int, scale: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shape = (157, 61) if channels == 1 else (157, 61, channels)
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    kernel = [[1, -2, 3], [0, 5, -1], [2, 2, -4], [1, 0, 1]]  # 4 x 3: uneven halos
    params = ConvolveParams(kernel=kernel, weight=0.25, border=border, cval=7, scale=scale)
    alpha = channels == 4
    monkeypatch.setattr(processing, "STRIPE_BYTES", 61 * channels * 4 * 10)  # 10-row stripes
    spied: list[int] = []
    original = processing.correlate_stripes

    def spy(*args, **kwargs):
        spied.append(kwargs["stripe_rows"])
        return original(*args, **kwargs)

    monkeypatch.setattr(processing, "correlate_stripes", spy)
    striped = processing.convolve(Decoded(pixels, alpha=alpha), params, make_settings())
    assert spied == [10]
    monkeypatch.setattr(processing, "STRIPED_SCALES", ())
    whole = processing.convolve(Decoded(pixels, alpha=alpha), params, make_settings())
    np.testing.assert_array_equal(striped.pixels, whole.pixels)
    assert striped.alpha == alpha

    # scipy.ndimage as the reference, channel by channel, then the lesson's clamp
    from scipy import ndimage

    k = np.asarray(kernel, np.float64)
    planes = pixels.reshape(*pixels.shape[:2], -1)
    expected = []
    for ch in range(planes.shape[2]):
        if alpha and ch == 3:
            expected.append(planes[..., ch].astype(np.float64))
            continue
        mode = "nearest" if border in ("keep", "valid") else border
        values = ndimage.correlate(planes[..., ch].astype(np.float64), k, mode=mode, cval=7)
        values = np.float32(values * 0.25).astype(np.float64)
        if scale == "abs":
            values = np.abs(values)
        expected.append(values)
    ref = np.clip(np.stack(expected, axis=-1), 0, 255).astype(np.uint8)
    if border == "valid":
        ref = ref[2 : 2 + 157 - 3, 1 : 1 + 61 - 2]  # anchor (2, 1) of the 4 x 3 kernel
    elif border == "keep":
        ref[:2], ref[-1:], ref[:, :1], ref[:, -1:] = (
            planes[:2],
            planes[-1:],
            planes[:, :1],
            planes[:, -1:],
        )
    np.testing.assert_array_equal(striped.pixels.reshape(ref.shape), ref)


@pytest.mark.parametrize(
    ("pixels", "workers", "concurrency", "cpus", "expected"),
    [
        (4_000_000, 1, 1, 2, 2),
        (4_000_000, 2, 1, 2, 1),
        (4_000_000, 1, 2, 2, 1),
        (4_000_000, 1, 1, 8, 8),
        (1_000_000, 1, 1, 2, 1),  # small: no thread pool
    ],
)
def test_stripe_threads_uses_the_cpus_no_other_worker_is_meant_to_use(
    pixels: int,
    workers: int,
    concurrency: int,
    cpus: int,
    expected: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processing, "available_cpus", lambda: cpus)
    settings = make_settings(workers=workers, max_concurrency=concurrency)
    assert processing.stripe_threads(pixels, settings) == expected
