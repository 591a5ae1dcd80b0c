"""Image files built for tests and load runs: encoded with PIL, or hand-made hostile headers."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from PIL import Image


def encode(img: Image.Image, fmt: str, **options: Any) -> bytes:
    """``img`` saved as ``fmt`` (PIL format name) with ``options``."""
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A ~70-byte PNG whose IHDR declares ``width`` x ``height`` 8-bit gray pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + png_chunk(b"IEND", b"")
    )
