"""Compiling kernels to band programs (`program.Op`): taps, 1-D lines, box windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .program import Op, Operand


def _absorb_sign(ops: tuple[Op, ...], factor: float) -> tuple[tuple[Op, ...], float]:
    """Make a negative final ``factor`` positive by swapping the operands of a final subtract.

    ``acc = a - b`` times ``-f`` is ``acc = b - a`` times ``f``; a factor of exactly 1 then
    saves the emit's multiply (Sobel's ``[-1, 0, 1]`` factor leaves ``-1`` otherwise).
    """
    if factor >= 0 or not ops:
        return ops, factor
    kind, dst, a, b, extra = ops[-1]
    if kind != "sub" or dst != "acc" or not isinstance(b, tuple):
        return ops, factor
    return (*ops[:-1], ("sub", dst, b, a, extra)), -factor


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
) -> tuple[tuple[Op, ...], int]:
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
            ops.append(("add", target, ("src", o0), ("src", o1), extra))
            group_sign = s0
        else:
            pos, neg = (o0, o1) if s0 > 0 else (o1, o0)
            ops.append(("sub", target, ("src", pos), ("src", neg), extra))
            group_sign = 1
        for offset, s in members[2:]:
            kind = "add" if s == group_sign else "sub"
            ops.append((kind, target, (target, 0), ("src", offset), extra))
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
            ops.append(("mul", target, ("src", offset), factor, extra))
        else:
            group_sign = combine(target, members)
            factor = work.type(magnitude * group_sign * relative)
            ops.append(("mul", target, (target, 0), factor, extra))
        if target == dst:
            sign = 1
        else:
            ops.append(("add", dst, (dst, 0), (tmp, 0), extra))
    for offset, s in units:
        if sign == 0:
            ops.append(("copy", dst, ("src", offset), None, extra))
            sign = s
        else:
            kind = "add" if s == sign else "sub"
            ops.append((kind, dst, (dst, 0), ("src", offset), extra))
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
) -> tuple[tuple[Op, ...], float]:
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
        kind = "add" if s == 1 else "sub"
        chain.append((kind, target, (current, base), (current, base + step), extra))
        current, base = target, 0
    if len(chain) < len(direct):
        return tuple(chain), factor
    return direct, float(sign)


def _compile_window(k: int, step: int) -> tuple[Op, ...]:
    """Program computing ``sum_{j<k} src[i + j * step]`` into ``acc`` by doubling.

    ``P_w`` (the sum of ``w`` consecutive items) gives ``P_2w[i] = P_w[i] + P_w[i + w step]``;
    the binary digits of ``k`` pick which ``P_w`` (at which offset) are added: about
    ``log2(k) + popcount(k)`` adds whatever ``k``. ``P_2w`` is needed on ``(k - 2w) step``
    more items than the band, which the instruction's ``extra`` records.
    """
    if k == 1:
        return (("copy", "acc", ("src", 0), None, 0),)
    ops: list[Op] = []
    current, width, offset = "src", 1, 0
    pending: Operand | None = None
    started = False
    while True:
        if k & width:
            term = (current, offset * step)
            if started:
                ops.append(("add", "acc", ("acc", 0), term, 0))
            elif pending is None:
                pending = term
            else:
                ops.append(("add", "acc", pending, term, 0))
                started, pending = True, None
            offset += width
        if 2 * width > k:
            break
        busy = {current, pending[0] if pending else ""}
        dst = next(name for name in ("t0", "t1", "t2") if name not in busy)
        ops.append(("add", dst, (current, 0), (current, width * step), (k - 2 * width) * step))
        current, width = dst, 2 * width
    if not started:  # k is a power of two: the last doubling is the answer
        kind, _, a, b, extra = ops[-1]
        ops[-1] = (kind, "acc", a, b, extra)
    return tuple(ops)
