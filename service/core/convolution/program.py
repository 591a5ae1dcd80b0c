"""Band programs: typed instructions over flat buffers, their interpreter, and the emit.

A program is a tuple of `Op`; each computes, for ``i`` in ``0 .. length + extra - 1`` (with
``length`` the band's item count):

========= ==========================================
``ADD``   ``dst[i] = a[i] + b[i]``
``SUB``   ``dst[i] = a[i] - b[i]``
``MUL``   ``dst[i] = a[i] * factor``
``COPY``  ``dst[i] = a[i]``
========= ==========================================

An `Operand` names a buffer and an offset into it: ``"src"`` is the band's padded source
rows (offsets count from the band's base), every other name a scratch buffer (``"acc"`` holds
the result; ``"tmp"``, ``"t0"``, ``"t1"``, ``"t2"`` intermediate sums). A positive ``extra``
computes items past the band that a later instruction reads at an offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from ..types import Array


class Kind(Enum):
    """What an `Op` computes (see the module docstring)."""

    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    COPY = "copy"


@dataclass(frozen=True, slots=True)
class Operand:
    """Items ``offset, offset + 1, ...`` of buffer ``buffer`` (``"src"`` or a scratch name)."""

    buffer: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Op:
    """One instruction: ``kind`` applied to ``a`` (and ``b`` or ``factor``) into ``dst``.

    ``b`` is given for ``ADD`` and ``SUB`` only, ``factor`` (a scalar of the work dtype) for
    ``MUL`` only.
    """

    kind: Kind
    dst: str
    a: Operand
    b: Operand | None = None
    factor: Any = None  # a NumPy scalar of the work dtype
    extra: int = 0

    def __post_init__(self) -> None:
        binary = self.kind in (Kind.ADD, Kind.SUB)
        if binary != (self.b is not None) or (self.kind is Kind.MUL) != (self.factor is not None):
            raise ValueError(f"malformed band instruction {self!r}")


Program = tuple[Op, ...]

# Module-level names for the members `_run` compares with: Python 3.11 resolves ``Kind.X``
# through a descriptor on every access, a global is one dictionary lookup.
_ADD, _MUL, _COPY = Kind.ADD, Kind.MUL, Kind.COPY


def _run(ops: Program, src: Array, base: int, length: int, bufs: dict[str, Array]) -> None:
    """Execute a band program over ``length`` items starting at flat ``base`` of ``src``."""
    for op in ops:
        n = length + op.extra
        out = bufs[op.dst][:n]
        name, off = op.a.buffer, op.a.offset
        first = src[base + off : base + off + n] if name == "src" else bufs[name][off : off + n]
        kind = op.kind
        if kind is _MUL:
            np.multiply(first, op.factor, out=out)
        elif kind is _COPY:
            np.copyto(out, first)
        else:
            assert op.b is not None  # ADD and SUB have b (Op.__post_init__)
            name, off = op.b.buffer, op.b.offset
            at = base + off if name == "src" else off
            other = (src if name == "src" else bufs[name])[at : at + n]
            (np.add if kind is _ADD else np.subtract)(first, other, out=out)


def _emit(acc: Array, out: Array, scale: float, rint: bool = False) -> None:
    """``out = float32(rint?(acc) * scale)``; the product is in float64 for integer ``acc``.

    An int16 ``acc`` and a ``scale`` that float32 holds exactly are converted first and
    multiplied in float32: both factors have at most 24 significant bits, so the float64
    product is exact and either way is rounded once to float32.
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
