"""The NumPy core: convolution (standard and codelab), pooling, 8-bit conversion, presets.

Pure NumPy -- no web framework, Pillow or SciPy imports -- so the HTTP layer stays thin and
the core can be tested and benchmarked on its own. Every invalid argument raises a
:class:`CoreError` (a ``ValueError``) whose ``param`` names the offending parameter.
"""

from __future__ import annotations

from . import errors
from .codelab import codelab_correlate
from .convolution import correlate, correlate_stripes
from .errors import CoreError, ImageError, KernelError, ParameterError
from .kernels import PRESETS, Preset, get_preset
from .pooling import pool
from .scaling import apply_scale
from .types import (
    BORDERS,
    EDGES,
    METHODS,
    MODES,
    POOL_METHODS,
    SCALES,
    Border,
    Edge,
    Method,
    Mode,
    PoolMethod,
    Scale,
)

__all__ = [
    "BORDERS",
    "EDGES",
    "METHODS",
    "MODES",
    "POOL_METHODS",
    "PRESETS",
    "SCALES",
    "Border",
    "CoreError",
    "Edge",
    "ImageError",
    "KernelError",
    "Method",
    "Mode",
    "ParameterError",
    "PoolMethod",
    "Preset",
    "Scale",
    "apply_scale",
    "codelab_correlate",
    "correlate",
    "correlate_stripes",
    "errors",
    "get_preset",
    "pool",
]
