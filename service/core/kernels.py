"""Named kernel presets: integer kernels with a weight, so that results stay exact.

Each preset is applied in standard mode (`service.core.convolution.correlate`): the kernel is
*not* flipped, ``out[r, c] = weight * sum_{m,n} k[m, n] * img[r + m - 1, c + n - 1]`` for a
3x3 kernel, and ``weight`` multiplies the finished integer sum. Integer kernels with a
power-of-two weight (1, 1/16, 1/256) therefore give exact results; the box blurs' 1/9 and 1/25
are the only inexact weights. The ``-x`` kernels differentiate along the columns (left to
right), so they respond to *vertical* lines and edges; the ``-y`` kernels differentiate along
the rows (top to bottom) and show *horizontal* ones. Edge kernels sum to 0 (flat areas become
0, and a signed result needs ``abs`` or ``normalize`` scaling to show both edge polarities);
blurs times their weight sum to 1 (flat areas keep their value).

Sources
-------
- Sobel: I. Sobel and G. Feldman, "A 3x3 isotropic gradient operator for image processing",
  talk at the Stanford Artificial Intelligence Project, 1968; the kernels as printed in the
  lesson (``../shared/reference/lesson.txt``) and in OpenCV's ``Sobel`` (ksize=3).
- Prewitt: J. M. S. Prewitt, "Object enhancement and extraction", in *Picture Processing and
  Psychopictorics*, B. Lipkin and A. Rosenfeld (eds.), Academic Press, 1970, pp. 75-149.
- Scharr: H. Scharr, *Optimale Operatoren in der Digitalen Bildverarbeitung*, dissertation,
  Universitaet Heidelberg, 2000; B. Jaehne, H. Scharr and S. Koerkel, "Principles of filter
  design", in *Handbook of Computer Vision and Applications*, vol. 2, Academic Press, 1999,
  pp. 125-151. The integer form ``[3, 10, 3]`` is OpenCV's ``Scharr``.
- Gaussian blurs: the binomial kernels ``[1, 2, 1]/4`` and ``[1, 4, 6, 4, 1]/16`` (rows of
  Pascal's triangle), outer products with themselves.
- Laplacian, sharpen, outline, emboss: the textbook 3x3 forms (the lesson's first filter is
  this Laplacian; "outline" is the 8-neighbour Laplacian, negated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from .errors import KernelError

Kernel = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class Preset:
    """A named kernel with the weight applied to its finished sum.

    Attributes
    ----------
    name : str
        Key in `PRESETS`.
    kernel : tuple of tuples of int
        Rows of the kernel, immutable.
    weight : float
        Multiplies the finished sum (as in the lesson), not each element.
    description : str
        One line: what the preset shows in standard mode.
    """

    name: str
    kernel: Kernel
    weight: float
    description: str

    @property
    def array(self) -> npt.NDArray[np.float64]:
        """The kernel as a new ``np.float64`` array of shape (rows, cols)."""
        return np.array(self.kernel, dtype=np.float64)


def _outer(v: tuple[int, ...]) -> Kernel:
    return tuple(tuple(a * b for b in v) for a in v)


def _transpose(k: Kernel) -> Kernel:
    return tuple(zip(*k, strict=True))


_SOBEL_X: Kernel = ((-1, 0, 1), (-2, 0, 2), (-1, 0, 1))
_PREWITT_X: Kernel = ((-1, 0, 1), (-1, 0, 1), (-1, 0, 1))
_SCHARR_X: Kernel = ((-3, 0, 3), (-10, 0, 10), (-3, 0, 3))

_ALL: tuple[Preset, ...] = (
    Preset(
        "identity",
        ((0, 0, 0), (0, 1, 0), (0, 0, 0)),
        1.0,
        "Leaves the image unchanged (a check of the pipeline).",
    ),
    Preset(
        "laplacian",
        ((0, 1, 0), (1, -4, 1), (0, 1, 0)),
        1.0,
        "Second derivative, 4 neighbours: edges and fine lines in every direction.",
    ),
    Preset(
        "sobel-x",
        _SOBEL_X,
        1.0,
        "Sobel gradient left to right: shows vertical lines and edges.",
    ),
    Preset(
        "sobel-y",
        _transpose(_SOBEL_X),
        1.0,
        "Sobel gradient top to bottom: shows horizontal lines and edges.",
    ),
    Preset("box-3", _outer((1, 1, 1)), 1 / 9, "3x3 mean blur."),
    Preset("box-5", _outer((1, 1, 1, 1, 1)), 1 / 25, "5x5 mean blur."),
    Preset(
        "gaussian-3",
        _outer((1, 2, 1)),
        1 / 16,
        "3x3 binomial (Gaussian-like) blur, exact: weight 1/16.",
    ),
    Preset(
        "gaussian-5",
        _outer((1, 4, 6, 4, 1)),
        1 / 256,
        "5x5 binomial (Gaussian-like) blur, exact: weight 1/256.",
    ),
    Preset(
        "sharpen",
        ((0, -1, 0), (-1, 5, -1), (0, -1, 0)),
        1.0,
        "Sharpens: the image minus its 4-neighbour Laplacian.",
    ),
    Preset(
        "emboss",
        ((-2, -1, 0), (-1, 1, 1), (0, 1, 2)),
        1.0,
        "Relief look: bright where intensity rises toward the bottom right, dark where it falls.",
    ),
    Preset(
        "outline",
        ((-1, -1, -1), (-1, 8, -1), (-1, -1, -1)),
        1.0,
        "8-neighbour Laplacian: outlines of shapes in every direction, flat areas black.",
    ),
    Preset(
        "prewitt-x",
        _PREWITT_X,
        1.0,
        "Prewitt gradient left to right: shows vertical lines and edges.",
    ),
    Preset(
        "prewitt-y",
        _transpose(_PREWITT_X),
        1.0,
        "Prewitt gradient top to bottom: shows horizontal lines and edges.",
    ),
    Preset(
        "scharr-x",
        _SCHARR_X,
        1.0,
        "Scharr gradient left to right (better rotation invariance): vertical edges.",
    ),
    Preset(
        "scharr-y",
        _transpose(_SCHARR_X),
        1.0,
        "Scharr gradient top to bottom (better rotation invariance): horizontal edges.",
    ),
)

#: Every preset by name, in a fixed order (identity, the lesson's three, blurs, the rest).
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _ALL})


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``.

    Parameters
    ----------
    name : str
        A key of `PRESETS`, e.g. ``"sobel-x"``.

    Returns
    -------
    Preset
        The named kernel, its weight and its description.

    Raises
    ------
    KernelError
        With ``param="preset"`` if ``name`` is not a preset; the message lists the valid names.

    Examples
    --------
    >>> p = get_preset("sobel-y")
    >>> p.kernel, p.weight
    (((-1, -2, -1), (0, 0, 0), (1, 2, 1)), 1.0)
    >>> get_preset("gaussian-3").array * get_preset("gaussian-3").weight
    array([[0.0625, 0.125 , 0.0625],
           [0.125 , 0.25  , 0.125 ],
           [0.0625, 0.125 , 0.0625]])
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        names = ", ".join(PRESETS)
        raise KernelError("preset", f"`preset` must be one of: {names}; got {name!r}") from None
