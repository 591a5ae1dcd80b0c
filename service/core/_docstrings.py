"""Docstring fragments shared by the core functions, and the decorator that fills them in.

Modelled on ``scipy/ndimage/_ni_docstrings.py``: a fragment lives here once and is pulled into a
docstring with a ``%(name)s`` placeholder standing alone on its line. The decorator indents every
line of the fragment to the placeholder's indentation, so fragments are written flush left.
Share a fragment only where the meaning is identical in every function that uses it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.MULTILINE)

_BORDER_DOC = """\
border : {'reflect', 'mirror', 'nearest', 'wrap', 'constant', 'keep', 'valid'}, optional
    How the window is completed where it leaves the image. The first five are exactly the
    modes of `scipy.ndimage.correlate` (the padding it builds per axis is the one `numpy.pad`
    builds with the mode in brackets); the pictures show one row ``a b c d`` and its padding:

    'reflect' (``numpy.pad`` 'symmetric', half-sample symmetric) -- the default
        ``d c b a | a b c d | d c b a``: the edge pixel is repeated.
    'mirror' (``numpy.pad`` 'reflect', whole-sample symmetric)
        ``d c b | a b c d | c b a``: reflected about the edge pixel, which is not repeated.
    'nearest' (``numpy.pad`` 'edge')
        ``a a a a | a b c d | d d d d``: the edge pixel is repeated.
    'wrap' (``numpy.pad`` 'wrap', periodic)
        ``a b c d | a b c d | a b c d``: the image repeats.
    'constant' (``numpy.pad`` 'constant')
        ``k k k k | a b c d | k k k k``: padded with ``k = cval``.
    'keep'
        no padding; output pixels whose window does not fit inside the image keep their
        input value (the lesson's margin). The output has the input's shape.
    'valid'
        no padding; only windows that fit are computed, so the output shrinks to
        ``(M - kr + 1, N - kc + 1)``. A kernel larger than the image is an error.

    Padding wider than the image continues the pattern periodically (period ``2 M`` for
    'reflect', ``2 M - 2`` for 'mirror', ``M`` for 'wrap'), as `scipy.ndimage` does; on an axis
    of length 1, 'mirror' repeats the single pixel."""

_CVAL_DOC = """\
cval : float, optional
    The value outside the image when ``border='constant'``. Must be finite. Default 0."""

_WEIGHT_DOC = """\
weight : float, optional
    Multiplies the finished sum (not each kernel element), as in the lesson, so an integer
    kernel with a power-of-two weight gives exact results. Must be finite. Default 1."""

_IMAGE_DOC = """\
image : ndarray of shape (M, N) or (M, N, C), C in 1..4
    Any real dtype (``np.uint8`` typical; float from raw pipelines); booleans count as 0/1.
    Each of the ``C`` channels is filtered on its own."""

_ALPHA_DOC = """\
alpha : bool, optional
    If True the last channel is alpha: it is not filtered but copied through (cropped like the
    other channels where the output shrinks). Needs ``C >= 2``. Default False."""

_CORRELATE_FORMULA_DOC = """\
With ``k`` of shape ``(kr, kc)`` and anchor ``(a, b) = (kr // 2, kc // 2)``

.. math::

    out[r, c] = w \\sum_{m=0}^{kr-1} \\sum_{n=0}^{kc-1} k[m, n] \\, img[r + m - a, c + n - b]

(a cross-correlation: the kernel is *not* flipped; this is `scipy.ndimage.correlate` and
OpenCV ``filter2D``). Pixels outside the image come from the ``border`` rule."""

docdict: dict[str, str] = {
    "border": _BORDER_DOC,
    "cval": _CVAL_DOC,
    "weight": _WEIGHT_DOC,
    "image": _IMAGE_DOC,
    "alpha": _ALPHA_DOC,
    "correlate_formula": _CORRELATE_FORMULA_DOC,
}


def _fill(doc: str, fragments: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        indent, name = match.group(1), match.group(2)
        if name not in fragments:
            raise KeyError(f"no docstring fragment named {name!r}")
        return "\n".join(indent + line if line else line for line in fragments[name].split("\n"))

    return _PLACEHOLDER.sub(replace, doc)


def docfiller(func: F) -> F:
    """Replace each ``%(name)s`` line of ``func.__doc__`` with the indented fragment ``name``.

    Examples
    --------
    >>> @docfiller
    ... def f() -> None:
    ...     '''Summary.
    ...
    ...     Parameters
    ...     ----------
    ...     %(cval)s
    ...     '''
    >>> print(f.__doc__.splitlines()[4])
        cval : float, optional
    """
    if func.__doc__:
        func.__doc__ = _fill(func.__doc__, docdict)
    return func
