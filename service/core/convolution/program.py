"""Band programs: the instructions, their interpreter, and the final emit."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..types import Array

# One instruction of a band program: (kind, destination, operand A, operand B, extra length).
# Operands are (buffer, offset) pairs; buffer "src" is the padded image, the others scratch.
# For "mul" operand B is the constant. The instruction covers ``band length + extra`` items.
Operand = tuple[str, int]
Op = tuple[str, str, Operand, Operand | Any, int]


def _run(ops: tuple[Op, ...], src: Array, base: int, length: int, bufs: dict[str, Array]) -> None:
    """Execute a band program over ``length`` items starting at flat ``base`` of ``src``."""
    for kind, dst, (name, off), second, extra in ops:
        n = length + extra
        out = bufs[dst][:n]
        first = src[base + off : base + off + n] if name == "src" else bufs[name][off : off + n]
        if kind == "mul":
            np.multiply(first, second, out=out)
        elif kind == "copy":
            np.copyto(out, first)
        else:
            name, off = second
            at = base + off if name == "src" else off
            other = (src if name == "src" else bufs[name])[at : at + n]
            (np.add if kind == "add" else np.subtract)(first, other, out=out)


def _emit(acc: Array, out: Array, scale: float, rint: bool = False) -> None:
    """``out = float32(rint?(acc) * scale)``; the product is in float64 for integer ``acc``.

    An int16 ``acc`` and a ``scale`` that float32 holds exactly are converted first and
    multiplied in float32 (three times faster): both factors have at most 24 significant
    bits, so the float64 product is exact and either way is rounded once to float32.
    """
    if rint and acc.dtype.kind == "f":
        np.rint(acc, out=acc)
    if scale == 1.0:
        np.copyto(out, acc, casting="unsafe")
    elif acc.dtype == np.int16 and abs(scale) < 2.0**127 and float(np.float32(scale)) == scale:
        np.copyto(out, acc, casting="unsafe")
        np.multiply(out, np.float32(scale), out=out)
    else:
        np.multiply(acc, scale, out=out, casting="unsafe")
