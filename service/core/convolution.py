"""2-D cross-correlation (standard mode). STUB: signature is the contract; helper fills it in."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Border = Literal["reflect", "mirror", "nearest", "wrap", "constant", "keep", "valid"]
BORDERS: tuple[Border, ...] = ("reflect", "mirror", "nearest", "wrap", "constant", "keep", "valid")


def correlate(
    image: npt.ArrayLike,
    kernel: npt.ArrayLike,
    *,
    weight: float = 1.0,
    border: Border = "reflect",
    cval: float = 0.0,
    flip: bool = False,
    normalize: bool = False,
    alpha: bool = False,
    max_kernel_side: int = 63,
) -> npt.NDArray[np.float32]:
    """out[r, c] = weight * sum_{m,n} k[m, n] * img[r + m - a, c + n - b], (a, b) = (rows//2, cols//2)."""
    raise NotImplementedError
