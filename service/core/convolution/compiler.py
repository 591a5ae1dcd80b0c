"""Compiling kernels to band programs (`program.Program`): taps, 1-D lines, box windows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .program import Kind, Op, Operand, Program


def _absorb_sign(ops: Program, factor: float) -> tuple[Program, float]:
    """Make a negative final ``factor`` positive by swapping the operands of a final subtract.

    ``acc = a - b`` times ``-f`` is ``acc = b - a`` times ``f``; a factor of exactly 1 then
    saves the emit's multiply (Sobel's ``[-1, 0, 1]`` factor leaves ``-1`` otherwise).
    """
    if factor >= 0 or not ops:
        return ops, factor
    last = ops[-1]
    if last.kind is not Kind.SUB or last.dst != "acc" or last.b is None:
        return ops, factor
    return (*ops[:-1], replace(last, a=last.b, b=last.a)), -factor


def _taps(kern: npt.NDArray[np.float64], width: int) -> list[tuple[int, float]]:
    """The non-zero taps as (flat offset ``m * width + n``, value)."""
    return [(m * width + n, float(kern[m, n])) for m, n in zip(*np.nonzero(kern), strict=True)]


def _compile_taps(
    taps: list[tuple[int, float]],
    work: np.dtype[Any],
    *,
    dst: str = "acc",
    tmp: str = "tmp",
    extra: int = 0,
) -> tuple[Program, int]:
    """Program computing ``sign * sum(value * src[i + offset])`` into ``dst``; returns sign.

    Taps of equal magnitude are summed (adds/subtracts) before one multiply and +/-1 taps
    need no multiply; ``sign`` (+1/-1) is what ``dst`` holds relative to the true sum.
    """
    groups: dict[float, list[tuple[int, int]]] = {}
    for offset, value in taps:
        groups.setdefault(abs(value), []).append((offset, 1 if value > 0 else -1))
    units = groups.pop(1.0, [])
    ops: list[Op] = []
    sign = 0  # 0 while dst is unwritten

    def combine(target: str, members: list[tuple[int, int]]) -> int:
        (o0, s0), (o1, s1) = members[0], members[1]
        if s0 == s1:
            ops.append(Op(Kind.ADD, target, Operand("src", o0), Operand("src", o1), extra=extra))
            group_sign = s0
        else:
            pos, neg = (o0, o1) if s0 > 0 else (o1, o0)
            ops.append(Op(Kind.SUB, target, Operand("src", pos), Operand("src", neg), extra=extra))
            group_sign = 1
        for offset, s in members[2:]:
            kind = Kind.ADD if s == group_sign else Kind.SUB
            ops.append(Op(kind, target, Operand(target), Operand("src", offset), extra=extra))
        return group_sign

    if len(units) >= 2:
        sign = combine(dst, units)
        units = []
    for magnitude, members in groups.items():
        target = dst if sign == 0 else tmp
        relative = 1 if target == dst else sign
        if len(members) == 1:
            offset, s = members[0]
            factor = work.type(magnitude * s * relative)
            ops.append(Op(Kind.MUL, target, Operand("src", offset), factor=factor, extra=extra))
        else:
            group_sign = combine(target, members)
            factor = work.type(magnitude * group_sign * relative)
            ops.append(Op(Kind.MUL, target, Operand(target), factor=factor, extra=extra))
        if target == dst:
            sign = 1
        else:
            ops.append(Op(Kind.ADD, dst, Operand(dst), Operand(tmp), extra=extra))
    for offset, s in units:
        if sign == 0:
            ops.append(Op(Kind.COPY, dst, Operand("src", offset), extra=extra))
            sign = s
        else:
            kind = Kind.ADD if s == sign else Kind.SUB
            ops.append(Op(kind, dst, Operand(dst), Operand("src", offset), extra=extra))
    return tuple(ops), sign or 1


def _peel_binomials(coeffs: list[float]) -> tuple[list[float], list[int]]:
    """Write the polynomial ``sum c[j] x^j`` as ``rest(x) * prod (1 + s x)``, s = +/-1.

    Synthetic division by ``1 + x`` and ``1 - x`` while it is exact; e.g. ``[1, 2, 1]`` is
    ``(1 + x)^2`` and ``[1, 4, 6, 4, 1]`` is ``(1 + x)^4``. Returns ``rest`` and the signs.
    """
    rest, signs = list(coeffs), []
    progress = True
    while progress and len(rest) > 1:
        progress = False
        for s in (1, -1):
            quotient = [rest[0]]
            for value in rest[1:-1]:
                quotient.append(value - s * quotient[-1])
            if s * quotient[-1] == rest[-1]:
                rest, progress = quotient, True
                signs.append(s)
                break
    return rest, signs


def _compile_line(
    coeffs: npt.NDArray[np.float64], step: int, work: np.dtype[Any]
) -> tuple[Program, float]:
    """Program for ``acc[i] = sum_j c[j] src[i + j step] / factor``; returns (ops, factor).

    Either the taps directly (`_compile_taps`) or, when shorter, a chain: the taps of the
    polynomial left after peeling ``(1 +/- x)`` factors (`_peel_binomials`), then one add or
    subtract per factor, ``t'[i] = t[i] +/- t[i + step]``. A constant left over is not applied
    but returned in ``factor`` (the final scale multiplies it in).
    """
    taps = [(j * step, float(c)) for j, c in enumerate(coeffs) if c]
    direct, sign = _compile_taps(taps, work)
    nonzero = [j for j, c in enumerate(coeffs) if c]
    first = nonzero[0]
    rest, signs = _peel_binomials([float(c) for c in coeffs[first : nonzero[-1] + 1]])
    if not signs:
        return direct, float(sign)
    factor = 1.0
    names = ["t0", "t1"]
    chain: list[Op] = []
    extra = len(signs) * step
    if len(rest) == 1:  # a constant: fold it into the scale
        factor, current, base = rest[0], "src", first * step
    else:
        rest_taps = [((first + j) * step, c) for j, c in enumerate(rest) if c]
        ops, rest_sign = _compile_taps(rest_taps, work, dst="t0", tmp="t1", extra=extra)
        chain.extend(ops)
        factor, current, base = float(rest_sign), "t0", 0
        names = ["t1", "t0"]
    for number, s in enumerate(signs):
        extra -= step
        target = "acc" if number == len(signs) - 1 else names[number % 2]
        if target == current:
            target = names[(number + 1) % 2]
        kind = Kind.ADD if s == 1 else Kind.SUB
        chain.append(
            Op(kind, target, Operand(current, base), Operand(current, base + step), extra=extra)
        )
        current, base = target, 0
    if len(chain) < len(direct):
        return tuple(chain), factor
    return direct, float(sign)


def _compile_window(k: int, step: int) -> Program:
    """Program computing ``sum_{j<k} src[i + j * step]`` into ``acc`` by doubling.

    ``P_w`` (the sum of ``w`` consecutive items) gives ``P_2w[i] = P_w[i] + P_w[i + w step]``;
    the binary digits of ``k`` pick which ``P_w`` (at which offset) are added: about
    ``log2(k) + popcount(k)`` adds whatever ``k``. ``P_2w`` is needed on ``(k - 2w) step``
    more items than the band, which the instruction's ``extra`` records.
    """
    if k == 1:
        return (Op(Kind.COPY, "acc", Operand("src")),)
    ops: list[Op] = []
    current, width, offset = "src", 1, 0
    pending: Operand | None = None
    started = False
    while True:
        if k & width:
            term = Operand(current, offset * step)
            if started:
                ops.append(Op(Kind.ADD, "acc", Operand("acc"), term))
            elif pending is None:
                pending = term
            else:
                ops.append(Op(Kind.ADD, "acc", pending, term))
                started, pending = True, None
            offset += width
        if 2 * width > k:
            break
        busy = {current, pending.buffer if pending else ""}
        dst = next(name for name in ("t0", "t1", "t2") if name not in busy)
        extra = (k - 2 * width) * step
        ops.append(Op(Kind.ADD, dst, Operand(current), Operand(current, width * step), extra=extra))
        current, width = dst, 2 * width
    if not started:  # k is a power of two: the last doubling is the answer
        ops[-1] = replace(ops[-1], dst="acc")
    return tuple(ops)
