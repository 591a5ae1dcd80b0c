"""Max / average / min pooling. STUB."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

PoolMethod = Literal["max", "avg", "min"]
Edge = Literal["drop", "partial"]


def pool(
    image: npt.ArrayLike,
    size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    *,
    method: PoolMethod = "max",
    edge: Edge = "drop",
    max_size: int = 64,
) -> npt.NDArray[np.generic]:
    """Pool each channel over (size) windows every (stride) pixels."""
    raise NotImplementedError
