"""Planning a call: the checked arguments, the cost model, and the plan it picks.

The cost of a path is the number of ufunc passes over the band times ``_OP_NS`` (ns per
element, by accumulator itemsize), plus the final emit; the FFT's cost comes from
`fft._fft_cost`. 'auto' takes the cheapest path that applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from .._validation import check_choice, check_finite, check_image, check_kernel
from ..errors import KernelError, ParameterError
from ..types import BORDERS, METHODS, Array
from .bands import _correlate_plane
from .compiler import _absorb_sign, _compile_line, _compile_taps, _compile_window, _taps
from .exact import FFT_EXACT_BOUND, _exact_dtype, _factor_rank1, _kernel_info, _max_abs_value
from .fft import _fft_cost
from .program import Program
from .workspace import _band_rows, _Workspace

# Cost model, in nanoseconds per element: one ufunc pass by accumulator itemsize.
_OP_NS = {1: 0.04, 2: 0.05, 4: 0.09, 8: 0.17}
_EMIT_OPS = 1  # the final convert-and-scale pass, in ufunc passes


@dataclass(frozen=True)
class _Job:
    """One checked `correlate` call: everything but the output rows to compute."""

    img: Array
    plan: _Plan | None  # None: 'keep' with a kernel larger than the image (a plain copy)
    border: str
    fill: float
    scale: float
    alpha: bool
    out_rows: int

    @classmethod
    def prepare(
        cls,
        image: npt.ArrayLike,
        kernel: npt.ArrayLike,
        weight: float,
        border: str,
        cval: float,
        flip: bool,
        normalize: bool,
        alpha: bool,
        max_kernel_side: int,
        method: str,
    ) -> _Job:
        """Check the arguments and plan the call (see `correlate`)."""
        img = check_image(image, alpha=alpha)
        kern = check_kernel(kernel, max_side=max_kernel_side)
        check_choice(border, BORDERS, "border")
        check_choice(method, METHODS, "method")
        scale = check_finite(weight, "weight")
        fill = check_finite(cval, "cval")
        for name, flag in (("flip", flip), ("normalize", normalize)):
            if not isinstance(flag, bool | np.bool_):
                raise ParameterError(name, f"`{name}` must be true or false, got {flag!r}")

        rows, cols = img.shape[:2]
        kr, kc = kern.shape
        if border == "valid" and (kr > rows or kc > cols):
            raise KernelError(
                "kernel",
                f"`kernel` is {kr} x {kc}, larger than the {rows} x {cols} image: "
                "border 'valid' leaves no output pixel",
            )
        info = _kernel_info(
            np.ascontiguousarray(kern).tobytes(), (kr, kc), bool(flip), bool(normalize)
        )
        scale *= info.scale

        # The computed region: the whole image when padded, the windows that fit otherwise.
        if border in ("keep", "valid"):
            region = (rows - kr + 1, cols - kc + 1)
            if region[0] <= 0 or region[1] <= 0:  # only 'keep' gets here: nothing to compute
                return cls(img, None, border, fill, scale, bool(alpha), rows)
        else:
            region = (rows, cols)
        exact = info.integral and img.dtype.kind in "biu"
        exact = exact and (border != "constant" or fill.is_integer())
        fft_exact = True
        if exact:
            bound = _max_abs_value(img, fill if border == "constant" else 0.0) * int(info.abs_sum)
            work = _exact_dtype(bound)
            fft_exact = bound <= FFT_EXACT_BOUND
        else:
            work = np.dtype(np.float64 if img.dtype == np.float64 else np.float32)
        plan = _plan(info.kernel, (kr, kc), info.anchor, exact, work.str, region, method, fft_exact)
        out_rows = region[0] if border == "valid" else rows
        return cls(img, plan, border, fill, plan.scale * scale, bool(alpha), out_rows)

    def rows(self, r0: int, r1: int) -> npt.NDArray[np.float32]:
        """Output rows ``r0 .. r1 - 1`` (float32), as the whole call computes them."""
        img, plan, border = self.img, self.plan, self.border
        if plan is None:
            return img[r0:r1].astype(np.float32)
        kc = plan.kernel.shape[1]
        a, b = plan.anchor
        cols = img.shape[1] - kc + 1 if border == "valid" else img.shape[1]
        out = np.empty((r1 - r0, cols, *img.shape[2:]), np.float32)
        channels = 1 if img.ndim == 2 else img.shape[2]
        filtered = channels - 1 if self.alpha else channels
        with _Workspace() as ws:
            for ch in range(filtered):
                plane = img if img.ndim == 2 else img[:, :, ch]
                target = out if img.ndim == 2 else out[:, :, ch]
                _correlate_plane(plane, target, plan, border, self.fill, self.scale, ws, r0, r1)
        if self.alpha:
            if border == "valid":
                out[:, :, -1] = img[a + r0 : a + r1, b : b + cols, -1]
            else:
                out[:, :, -1] = img[r0:r1, :, -1]
        return out


@dataclass(frozen=True)
class _Plan:
    """How to filter every channel of one call (cached, immutable)."""

    kernel: npt.NDArray[np.float64]  # oriented for correlation (already flipped)
    anchor: tuple[int, int]
    width: int  # row width of the padded flat buffer
    work: np.dtype[Any]  # accumulator dtype of the direct/separable/box paths
    rint: bool  # the exact sum is an integer: round the FFT result to it
    method: str
    scale: float  # folded into the final multiply: program sign, box value
    first: Program = ()  # the direct program, or the horizontal pass
    second: Program = ()  # the vertical pass (separable, box)
    fft_shape: tuple[int, int] = (0, 0)  # the overlap-save tile


@lru_cache(maxsize=64)
def _plan(
    kernel_bytes: bytes,
    shape: tuple[int, int],
    anchor: tuple[int, int],
    exact: bool,
    work_str: str,
    region: tuple[int, int],
    method: str,
    fft_exact: bool = True,
) -> _Plan:
    """Pick the path (the cheapest by the cost model unless forced) and compile its programs.

    ``region`` is the computed output (rows, cols); the padded source has
    ``region + kernel - 1`` rows and columns. ``fft_exact`` False (an exact sum that may
    exceed `FFT_EXACT_BOUND`) keeps 'auto' off the FFT path.
    """
    kern = np.frombuffer(kernel_bytes, dtype=np.float64).reshape(shape)
    kern.flags.writeable = False
    work = np.dtype(work_str)
    kr, kc = shape
    out_rows, out_cols = region
    padded_rows, width = out_rows + kr - 1, out_cols + kc - 1
    nonzero = np.count_nonzero(kern)
    if nonzero == 0:  # "direct" with an empty program fills zeros
        return _Plan(kern, anchor, width, work, exact, "direct", 1.0)

    op_ns = _OP_NS[work.itemsize]
    costs: dict[str, float] = {}
    options: dict[str, tuple[Program, Program, float]] = {}
    direct, sign = _compile_taps(_taps(kern, width), work)
    costs["direct"] = (len(direct) + _EMIT_OPS) * out_rows * width * op_ns
    options["direct"] = (direct, (), float(sign))
    fft_ns, l1, l2 = _fft_cost(out_rows, out_cols, kr, kc)
    if fft_exact:
        costs["fft"] = fft_ns
    options["fft"] = ((), (), 1.0)
    factors = _factor_rank1(kern, exact)
    if factors is not None:
        u, v = factors
        first, factor_h = _compile_line(v, 1, work)
        second, factor_v = _compile_line(u, width, work)
        passes = len(first) * padded_rows + (len(second) + _EMIT_OPS) * out_rows
        costs["separable"] = passes * width * op_ns
        options["separable"] = (first, second, factor_h * factor_v)
    if nonzero == kern.size and np.all(kern == kern.flat[0]):
        first, second = _compile_window(kc, 1), _compile_window(kr, width)
        band = _band_rows(width, work.itemsize, kr)  # the vertical doubling redoes kr rows
        redo = 1.0 + kr / band
        row_passes = len(first) * padded_rows + (len(second) * redo + _EMIT_OPS) * out_rows
        costs["box"] = row_passes * width * op_ns
        options["box"] = (first, second, float(kern.flat[0]))

    if method == "auto":
        method = min(costs, key=lambda name: costs[name])
    elif method not in options:
        needs = {"separable": "a rank-1 kernel", "box": "a kernel with all entries equal"}
        raise KernelError("kernel", f"method {method!r} needs {needs[method]}")
    first, second, factor = options[method]
    if second:  # either pass may take the sign: the result is linear in each
        second, factor = _absorb_sign(second, factor)
        if method == "separable":
            first, factor = _absorb_sign(first, factor)
    else:
        first, factor = _absorb_sign(first, factor)
    return _Plan(kern, anchor, width, work, exact, method, factor, first, second, (l1, l2))
