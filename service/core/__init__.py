"""The NumPy core: convolution (standard and codelab), pooling, 8-bit conversion, presets.

Pure NumPy -- no web framework, Pillow or SciPy imports -- so the HTTP layer stays thin and
the core can be tested and benchmarked on its own. Every invalid argument raises a
:class:`CoreError` (a ``ValueError``) whose ``param`` names the offending parameter.
"""

from __future__ import annotations

from . import errors
from .codelab import codelab_correlate
from .convolution import BORDERS, METHODS, Border, Method, correlate, correlate_stripes
from .errors import CoreError, ImageError, KernelError, ParameterError
from .kernels import PRESETS, Preset, get_preset
from .pooling import Edge, PoolMethod, pool
from .scaling import SCALES, Scale, apply_scale

__all__ = [
    "BORDERS",
    "METHODS",
    "PRESETS",
    "SCALES",
    "Border",
    "CoreError",
    "Edge",
    "ImageError",
    "KernelError",
    "Method",
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
