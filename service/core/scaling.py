"""Float results to 8-bit (clamp / abs / normalize) or raw float32. STUB."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Scale = Literal["clamp", "abs", "normalize", "raw"]
SCALES: tuple[Scale, ...] = ("clamp", "abs", "normalize", "raw")


def apply_scale(
    values: npt.ArrayLike, scale: Scale = "clamp", *, alpha: bool = False
) -> npt.NDArray[np.uint8] | npt.NDArray[np.float32]:
    """uint8 for clamp/abs/normalize, float32 for raw."""
    raise NotImplementedError
