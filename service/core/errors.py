"""Errors raised by the NumPy core.

    ValueError
    └── CoreError              any invalid argument to a core function
        ├── ImageError         the image array: ndim, channels, emptiness, dtype
        ├── KernelError        the kernel: shape, finiteness, size, codelab restrictions
        └── ParameterError     any other parameter: border, scale, pool size/stride, ...

Each carries ``param``, the name of the offending parameter, so the HTTP layer can point at
the field (``{"loc": ["body", param], ...}``) without parsing messages.
"""

from __future__ import annotations


class CoreError(ValueError):
    """An argument to a core function is invalid; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(param={self.param!r}, message={self.message!r})"


class ImageError(CoreError):
    """Raised when the image array has the wrong shape, is empty or has an unusable dtype."""


class KernelError(CoreError):
    """Raised when a kernel is empty, ragged, non-finite, too large, or not allowed in a mode."""


class ParameterError(CoreError):
    """Raised for any other invalid parameter (border, scale, pool size or stride, ...)."""
