"""2-D cross-correlation (standard mode): one exact definition, several fast paths.

`correlate` computes ``out[r, c] = weight * sum_{m,n} k[m, n] * img[r + m - a, c + n - b]``
with ``(a, b) = (kr // 2, kc // 2)``, exactly `scipy.ndimage.correlate` (``flip=True``:
`scipy.ndimage.convolve`), for every border mode scipy has plus ``keep`` and ``valid``;
`correlate_stripes` yields the same result a stripe of output rows at a time. NumPy only.

A call goes through three stages:

1. **Plan** (`plan`, `exact`, `fft`). The arguments are checked; the kernel is oriented
   (``flip``), normalized and, when it is exactly ``step * integers``, replaced by those
   integers with ``step`` moved into the final scale. An operation-count cost model (in ns
   per element pass) then picks the path, unless ``method`` forces one:

   - ``direct``: one program over all the kernel's taps;
   - ``separable``: rank-1 kernels ``k = u v^T`` (an exact integer factorisation for integer
     kernels): a horizontal then a vertical 1-D pass, through a rolling buffer of rows;
   - ``box``: all-equal kernels; running window sums by doubling (about ``2 log2 k`` adds per
     axis whatever the size);
   - ``fft``: `numpy.fft.rfft2` overlap-save on tiles, in float64, the tile shape chosen by
     the same cost model.

   Plans are cached by kernel, dtype and region shape, so repeated calls skip this stage.

2. **Compile** (`compiler`, `program`). The direct, separable and box paths become band
   programs: tuples of typed instructions (add, subtract, multiply by a constant, copy) over
   flat buffers. Padded rows are laid out flat with row width ``W = N + kc - 1`` (plus one
   zero row of slack), so a kernel tap ``(m, n)`` is the constant flat offset ``m * W + n``:
   every tap is one contiguous 1-D slice and every instruction one ufunc call with ``out=``
   (the ``kc - 1`` columns per row that straddle two image rows are computed and discarded).
   Zero taps are skipped, taps of equal magnitude are summed before one multiply, +1/-1 taps
   are plain adds and subtracts (a global sign is folded into the final scale), and 1-D
   passes peel ``(1 +/- x)`` factors: ``[1, 2, 1]`` is two adds, ``[1, 4, 6, 4, 1]`` four.

3. **Run** (`bands`, `padding`, `workspace`). Each channel is computed in bands of rows sized
   to stay in the CPU cache: a band's padded source rows are built on the fly (no padded copy
   of the whole image), the program runs over them, and the accumulator is emitted as
   ``float32(sum * scale)``. Scratch buffers are reused from band to band and, through a
   small process-wide pool, from call to call.

Exactness: when the image is integer-valued (integer or bool dtype), the kernel is
integer-valued and so is ``cval`` (for ``constant``), the exact sum is an integer. The
direct, separable and box paths then accumulate in an integer dtype (int16 when
``max|pixel| * sum|k|`` fits, else int32/int64), which is exact; the FFT path computes in
float64 and rounds to the nearest integer, which is the exact sum while the bound
``max|pixel| * sum|k|`` is at most `FFT_EXACT_BOUND` (2**40); 'auto' never takes the FFT
path above it (a forced ``method='fft'`` there rounds float64 sums, exact only to about
2**-50 of the bound). Every path chosen by 'auto' therefore hands the *same* integer to the
final step ``float32(sum * weight)`` (evaluated in float64), and the 8-bit output does not
depend on the path. Bounds above ``2**63 - 1`` sum in float64 on every path.

Modules: `correlation` (the public functions), `plan` (the checked call, the cost model,
the plan), `exact` (kernel analysis and the exact accumulator), `compiler` and `program` (band
programs and their interpreter), `bands` (one channel, band by band), `padding` (the padded
source rows), `fft` (overlap-save), `workspace` (scratch buffers). Names with a leading
underscore are private to the package.
"""

from __future__ import annotations

from ..types import BORDERS, METHODS, Border, Method
from .correlation import correlate, correlate_stripes
from .exact import FFT_EXACT_BOUND
from .padding import NUMPY_PAD_MODE

__all__ = [
    "BORDERS",
    "FFT_EXACT_BOUND",
    "METHODS",
    "NUMPY_PAD_MODE",
    "Border",
    "Method",
    "correlate",
    "correlate_stripes",
]
