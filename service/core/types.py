"""The core's vocabulary: each option a core function accepts, defined once.

Every ``Literal`` here is the type of a parameter, and the tuple beside it lists its values in
the same order (the order error messages and the API's enums show). ``service.schemas``
imports these literals rather than repeating them, so the HTTP contract and the core cannot
drift apart.
"""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

import numpy.typing as npt

Array = npt.NDArray[Any]
"""Any NumPy array (the core's internal buffers, of whatever dtype the path works in)."""

Border = Literal["reflect", "mirror", "nearest", "wrap", "constant", "keep", "valid"]
"""How `correlate` completes a window where it leaves the image (scipy.ndimage's names)."""
BORDERS: Final[tuple[Border, ...]] = get_args(Border)

Method = Literal["auto", "direct", "separable", "box", "fft"]
"""The computation path of `correlate`; 'auto' picks the cheapest by the cost model."""
METHODS: Final[tuple[Method, ...]] = get_args(Method)

Mode = Literal["standard", "codelab"]
"""`correlate` (standard) or `codelab_correlate` (the lesson's loop, bit for bit)."""
MODES: Final[tuple[Mode, ...]] = get_args(Mode)

Scale = Literal["clamp", "abs", "normalize", "raw"]
"""How `apply_scale` maps filter output to 8 bits (or keeps float32: 'raw')."""
SCALES: Final[tuple[Scale, ...]] = get_args(Scale)

PoolMethod = Literal["max", "avg", "min"]
"""How `pool` reduces each window."""
POOL_METHODS: Final[tuple[PoolMethod, ...]] = get_args(PoolMethod)

Edge = Literal["drop", "partial"]
"""What `pool` does with windows that run off the bottom/right edge."""
EDGES: Final[tuple[Edge, ...]] = get_args(Edge)
