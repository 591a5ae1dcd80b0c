"""Run validated specs on decoded images: the glue between ``schemas`` and ``core``.

No HTTP here (routers call these functions in a worker thread) and no pixel maths (that is
``service.core``): this module decodes the input, resolves presets and colour, runs each
operation's core function (the registry, ``service.ops``, names them), encodes the result and
records per-stage timings.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from . import imaging
from .config import Settings, available_cpus
from .core.codelab import codelab_correlate
from .core.convolution import correlate, correlate_stripes
from .core.pooling import pool
from .core.scaling import apply_scale
from .errors import ImageTooLargeError, InvalidSpecError, ResultTooLargeError
from .imaging import Decoded
from .runtime.observability import count_rejection, observe_stage
from .schemas import ConvolveParams, ImageRef, OutputFormat, PixelImage, PoolParams


def resolve_image(ref: ImageRef, upload: bytes | None, settings: Settings) -> Decoded:
    """The input image: an uploaded file, base64 ``data``, JSON ``pixels`` or ascent."""
    with observe_stage("decode"):
        try:
            if upload is not None:
                return imaging.decode(upload, max_pixels=settings.max_pixels)
            if ref == "ascent":
                return imaging.ascent()
            if isinstance(ref, PixelImage):
                decoded = imaging.from_pixels(ref.pixels)
                if decoded.height * decoded.width > settings.max_pixels:
                    raise ImageTooLargeError(
                        f"`pixels` hold {decoded.height * decoded.width} pixels; "
                        f"the limit is {settings.max_pixels} pixels"
                    )
                return decoded
            data = imaging.decode_base64(ref.data)
            return imaging.decode(data, max_pixels=settings.max_pixels)
        except ImageTooLargeError:
            count_rejection("too_many_pixels")
            raise


def prepare(image: Decoded, color: str) -> Decoded:
    """The step's input: 8-bit luma for ``color: gray``, else the image as decoded."""
    return imaging.to_gray(image) if color == "gray" else image


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a core step as stage ``name`` (metrics) with NumPy's overflow warnings silenced.

    `finish` refuses a non-finite result, so the warnings would only be noise.
    """
    with observe_stage(name), np.errstate(over="ignore", invalid="ignore"):
        yield


Stripes = Callable[[int, int], Iterator[tuple[int, npt.NDArray[np.float32]]]]
"""``stripes(stripe_rows, threads)``: a core step's float32 output, ``(first row, rows)``."""


def striped(image: Decoded, scale: str) -> bool:
    """Whether a step may run stripe by stripe: 8-bit input and a per-pixel ``scale``.

    A float input (after a ``raw`` step) keeps the whole-image path and its overflow check.
    """
    return scale in STRIPED_SCALES and image.pixels.dtype == np.uint8


def run_striped(
    image: Decoded, stripes: Stripes, rows: int, scale: Any, settings: Settings
) -> Decoded:
    """The 8-bit result of a step's ``stripes`` + `apply_scale`, one stripe of rows at a time.

    ``rows``: the output's height. The float32 values exist a stripe at a time (a 32nd of the
    samples, 256 KiB to ``STRIPE_BYTES``, per thread) instead of 4 bytes per sample of the whole
    image; ``threads`` is `stripe_threads`. The caller's stripes must stack to exactly its
    whole-image result (`correlate_stripes` does), so the two paths agree bit for bit.
    """
    pixels = image.pixels
    row_bytes = 4 * pixels.shape[1] * (1 if pixels.ndim == 2 else pixels.shape[2])
    budget = min(STRIPE_BYTES, max(MIN_STRIPE_BYTES, pixels.nbytes // 8))
    stripe_rows = max(8, budget // row_bytes)
    threads = stripe_threads(image.height * image.width, settings)
    out: npt.NDArray[np.uint8] | None = None
    for r0, values in stripes(stripe_rows, threads):
        if out is None:  # the columns and channels come with the first stripe
            out = np.empty((rows, *values.shape[1:]), np.uint8)
        apply_scale(values, scale, alpha=image.alpha, out=out[r0 : r0 + values.shape[0]])
    assert out is not None
    return Decoded(out, alpha=image.alpha)


def convolve(image: Decoded, params: ConvolveParams, settings: Settings) -> Decoded:
    """Apply one convolution step; the result is 8-bit unless ``params.scale == "raw"``."""
    image = prepare(image, params.color)
    kernel = np.asarray(params.kernel_matrix, dtype=np.float64)
    with stage("convolve"):
        if params.mode == "codelab":
            values: npt.NDArray[Any] = codelab_correlate(
                image.pixels, kernel, params.effective_weight, alpha=image.alpha
            )
            return finish(values, image, params.scale)
        options: dict[str, Any] = {
            "weight": params.effective_weight,
            "border": params.effective_border,
            "cval": params.cval,
            "flip": params.flip,
            "normalize": params.normalize,
            "alpha": image.alpha,
            "max_kernel_side": settings.max_kernel_side,
        }
        if striped(image, params.scale):
            rows = image.height - (kernel.shape[0] - 1 if options["border"] == "valid" else 0)

            def stripes(stripe_rows: int, threads: int) -> Iterator[tuple[int, Any]]:
                return correlate_stripes(
                    image.pixels, kernel, stripe_rows=stripe_rows, threads=threads, **options
                )

            return run_striped(image, stripes, rows, params.scale, settings)
        return finish(correlate(image.pixels, kernel, **options), image, params.scale)


# Scales that map each pixel on its own: the result can be converted stripe by stripe.
STRIPED_SCALES = ("clamp", "abs")
# float32 values per stripe: a 32nd of the image's samples, within these bounds
STRIPE_BYTES = 4 << 20
MIN_STRIPE_BYTES = 256 << 10
THREADED_PIXELS = 1 << 21  # from 2 MP up a convolution may use the worker's spare CPUs


def stripe_threads(pixels: int, settings: Settings) -> int:
    """Threads for one convolution: the CPUs no other worker or slot is meant to use.

    ``available_cpus // (workers * max_concurrency)``, at least 1, and 1 below
    ``THREADED_PIXELS`` (a thread pool costs more than it saves on small images). With the
    defaults (one worker per CPU, one slot each) that is 1; one worker on 2 CPUs gets 2.
    ``workers`` is the app's setting (``IMGFILTER_WORKERS``): ``serve --workers 1`` without
    it leaves the default, one per CPU, and so 1 thread.
    """
    if pixels < THREADED_PIXELS:
        return 1
    return max(1, available_cpus() // (settings.workers * settings.max_concurrency))


def pool_image(image: Decoded, params: PoolParams, settings: Settings) -> Decoded:
    """Apply one pooling step; the result is 8-bit unless ``params.scale == "raw"``."""
    image = prepare(image, params.color)
    with stage("pool"):
        values = pool(
            image.pixels,
            params.size,
            params.stride,
            method=params.method,
            edge=params.edge,
            max_size=settings.max_pool_size,
        )
        return finish(values, image, params.scale)


def finish(values: npt.NDArray[Any], source: Decoded, scale: Any) -> Decoded:
    """A step's result: its values scaled; non-finite values are an ``InvalidSpecError``.

    They can only come from a raw (float32) input: 8-bit pixels times kernels, weights and
    ``cval`` within ``VALUE_BOUND`` stay far below float32's 3.4e38, so only then is it checked.
    """
    if source.pixels.dtype.kind == "f" and not np.isfinite(values).all():
        raise InvalidSpecError(
            ("scale",), "the raw result overflowed float32; lower the weight or kernel"
        )
    return Decoded(apply_scale(values, scale, alpha=source.alpha), alpha=source.alpha)


def render(result: Decoded, fmt: OutputFormat, settings: Settings) -> tuple[bytes, str]:
    """Encode a result as PNG, the JSON ``ArrayResult`` or a ``.npy``; returns (body, media type).

    JSON and ``.npy`` carry ``[H][W]`` for one channel, ``[H][W][C]`` otherwise, as uint8 or
    (after ``scale: raw``) float32; ``np.load`` reads the ``.npy``.
    """
    pixels = result.pixels
    with observe_stage("encode"):
        if fmt == "png":
            body = imaging.encode_png(
                pixels,
                compress_level=settings.png_compress_level,
                strategy=settings.png_strategy,
                row_filter=settings.png_filter,
                encoder=settings.png_encoder,
            )
            return body, "image/png"
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
        if fmt == "npy":
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(pixels), allow_pickle=False)
            return buffer.getvalue(), "application/x-npy"
        if pixels.size > settings.max_json_values:
            raise ResultTooLargeError(pixels.size, settings.max_json_values)
        document = {
            "width": int(pixels.shape[1]),
            "height": int(pixels.shape[0]),
            "channels": 1 if pixels.ndim == 2 else int(pixels.shape[2]),
            "dtype": "uint8" if pixels.dtype == np.uint8 else "float32",
            "min": pixels.min().item(),  # an int for uint8, a float for float32
            "max": pixels.max().item(),
            "pixels": np.ascontiguousarray(pixels),
        }
        return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), "application/json"
