"""The lesson's loop, vectorised bit for bit (codelab mode). STUB."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def codelab_correlate(
    image: npt.ArrayLike, kernel: npt.ArrayLike, weight: float = 1.0, *, alpha: bool = False
) -> npt.NDArray[np.float64]:
    """The lesson's ``output_pixel`` values (float64), margins holding the input values."""
    raise NotImplementedError
