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


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks of a PNG file, in order."""
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def png_with_chunk(data: bytes, chunk: bytes, *, after: bytes) -> bytes:
    """``data`` with ``chunk`` (see `png_chunk`) inserted after the last chunk of type ``after``."""
    kinds = [kind for kind, _ in png_chunks(data)]
    last = len(kinds) - 1 - kinds[::-1].index(after)
    parts = [png_chunk(kind, body) for kind, body in png_chunks(data)]
    return data[:8] + b"".join(parts[: last + 1]) + chunk + b"".join(parts[last + 1 :])


def raw_png(
    width: int, height: int, idat: bytes | list[bytes], *, color_type: int = 0, interlace: int = 0
) -> bytes:
    """An 8-bit PNG from its parts: IHDR fields, IDAT chunk data (one or several), IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, interlace)
    idats = [idat] if isinstance(idat, bytes) else idat
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + b"".join(png_chunk(b"IDAT", body) for body in idats)
        + png_chunk(b"IEND", b"")
    )


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A ~70-byte PNG whose IHDR declares ``width`` x ``height`` 8-bit gray pixels."""
    return raw_png(width, height, zlib.compress(b"\0" * 64))


def png_row_filters(data: bytes) -> list[int]:
    """The filter-type byte (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth) of every row of an
    8-bit, non-interlaced PNG, read from its IHDR and inflated IDAT stream."""
    width, height, depth, color_type = struct.unpack(">IIBB", data[16:26])
    assert depth == 8
    row_bytes = width * {0: 1, 2: 3, 4: 2, 6: 4}[color_type] + 1
    idat = b"".join(body for kind, body in png_chunks(data) if kind == b"IDAT")
    raw = zlib.decompress(idat)
    assert len(raw) == height * row_bytes
    return list(raw[::row_bytes])
