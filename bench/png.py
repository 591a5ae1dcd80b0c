"""PNG encode trade-off: time and size per level, zlib strategy and row filter.

``python -m bench.png`` prints a Markdown table for three service outputs: the 512 x 512 Sobel
result on ascent (mostly black edges), ascent itself (a photo, gray) and a 1024 x 1024 RGB
photo (the load benchmark's upload after the 7x7 Gaussian). It compares the service's encoder
(``service.imaging.encode_png``: the service's own PNG framing around ISA-L's deflate, the
default, or libdeflate's, and libpng through imagecodecs) with Pillow's, which
always chooses each row's filter adaptively. Times are the median of ``--repeat`` runs on one
thread.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

from bench.load import GAUSS_7, GAUSS_WEIGHT, SOBEL_Y, upload_image
from service import imaging
from service.core.convolution import correlate
from service.core.scaling import apply_scale

Encoder = Callable[[npt.NDArray[np.uint8]], bytes]

# (level, strategy, row filter) for the service's encoder; the default is L1 huffman auto
SERVICE_SETTINGS: tuple[tuple[int, str, str], ...] = (
    (0, "default", "none"),
    (1, "huffman", "none"),
    (1, "huffman", "up"),
    (1, "huffman", "paeth"),
    (1, "huffman", "auto"),
    (1, "huffman", "adaptive"),
    (1, "rle", "paeth"),
    (1, "default", "paeth"),
    (6, "default", "paeth"),
    (6, "default", "adaptive"),
    (9, "default", "adaptive"),
)
# (level, row filter) for the isal encoder (IMGFILTER_PNG_ENCODER=isal, the default; levels 0..3)
ISAL_SETTINGS: tuple[tuple[int, str], ...] = (
    (1, "auto"),
    (1, "none"),
    (1, "up"),
    (2, "up"),
    (3, "up"),
)
# (level, row filter) for the libdeflate encoder (IMGFILTER_PNG_ENCODER=libdeflate)
LIBDEFLATE_SETTINGS: tuple[tuple[int, str], ...] = (
    (0, "none"),
    (1, "auto"),
    (1, "none"),
    (1, "sub"),
    (1, "up"),
    (6, "up"),
    (9, "up"),
)
PILLOW_SETTINGS: tuple[tuple[int, str], ...] = (
    (0, "default"),
    (1, "huffman"),
    (1, "default"),
    (6, "default"),
    (9, "default"),
)


def images() -> dict[str, npt.NDArray[np.uint8]]:
    """The three test images (uint8)."""
    ascent = imaging.ascent().pixels
    sobel = apply_scale(correlate(ascent, np.asarray(SOBEL_Y, dtype=np.float64)), "clamp")
    with Image.open(io.BytesIO(upload_image())) as img:
        rgb = np.asarray(img)
    gauss = apply_scale(
        correlate(rgb, np.asarray(GAUSS_7, dtype=np.float64), weight=GAUSS_WEIGHT), "clamp"
    )
    return {
        "Sobel on ascent 512x512 L": np.asarray(sobel, dtype=np.uint8),
        "ascent 512x512 L": np.asarray(ascent, dtype=np.uint8),
        "Gaussian photo 1024x1024 RGB": np.asarray(gauss, dtype=np.uint8),
    }


def pillow(level: int, strategy: str) -> Encoder:
    def encode(pixels: npt.NDArray[np.uint8]) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(
            buffer,
            format="PNG",
            compress_level=level,
            compress_type=imaging.PNG_STRATEGIES[strategy],
        )
        return buffer.getvalue()

    return encode


def service(level: int, strategy: str, row_filter: str, encoder: str = "libpng") -> Encoder:
    def encode(pixels: npt.NDArray[np.uint8]) -> bytes:
        return imaging.encode_png(
            pixels,
            compress_level=level,
            strategy=strategy,
            row_filter=row_filter,
            encoder=encoder,
        )

    return encode


def measure(encode: Encoder, pixels: npt.NDArray[np.uint8], repeat: int) -> tuple[float, int]:
    """(median ms, bytes)."""
    size = len(encode(pixels))
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        encode(pixels)
        times.append(time.perf_counter() - begin)
    return statistics.median(times) * 1e3, size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.png", description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    pictures = images()
    rows: list[tuple[str, Encoder]] = [
        (f"imagecodecs (libpng) L{lv} {st} {flt}", service(lv, st, flt))
        for lv, st, flt in SERVICE_SETTINGS
    ]
    rows += [
        (f"isal L{lv} {flt}", service(lv, "default", flt, "isal")) for lv, flt in ISAL_SETTINGS
    ]
    rows += [
        (f"libdeflate L{lv} {flt}", service(lv, "default", flt, "libdeflate"))
        for lv, flt in LIBDEFLATE_SETTINGS
    ]
    rows += [(f"Pillow L{lv} {st} (adaptive)", pillow(lv, st)) for lv, st in PILLOW_SETTINGS]
    print("| encoder, level, strategy, filter | " + " | ".join(pictures) + " |")
    print("|---|" + "--:|" * len(pictures))
    for label, encode in rows:
        cells = []
        for pixels in pictures.values():
            ms, size = measure(encode, pixels, args.repeat)
            cells.append(f"{ms:.2f} ms, {size / 1024:,.0f} KiB")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
