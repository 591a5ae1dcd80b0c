"""The padded source: scipy.ndimage's border modes, built a few rows at a time."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ..types import Array

#: The ``numpy.pad`` mode that builds the same padding as each scipy.ndimage mode.
NUMPY_PAD_MODE: dict[str, str] = {
    "reflect": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
    "constant": "constant",
}


def _source_index(positions: npt.NDArray[np.intp], size: int, mode: str) -> npt.NDArray[np.intp]:
    """Map positions outside ``0..size-1`` to the pixel scipy.ndimage reads there."""
    if mode == "nearest" or (mode == "mirror" and size == 1):
        return np.clip(positions, 0, size - 1)
    if mode == "wrap":
        return positions % size
    if mode == "reflect":
        folded = positions % (2 * size)
        return np.where(folded < size, folded, 2 * size - 1 - folded)
    folded = positions % (2 * size - 2)  # mirror
    return np.where(folded < size, folded, 2 * size - 2 - folded)


@lru_cache(maxsize=1024)
def _source_rows(start: int, stop: int, size: int, mode: str) -> slice | npt.NDArray[np.intp]:
    """`_source_index` of ``start .. stop - 1`` as a slice when it is a run (the usual case)."""
    index = _source_index(np.arange(start, stop), size, mode)
    first, last = int(index[0]), int(index[-1])
    if len(index) == 1:
        return slice(first, first + 1)
    steps = np.diff(index)
    if np.all(steps == 1):
        return slice(first, last + 1)
    if np.all(steps == -1):
        return slice(first, last - 1 if last > 0 else None, -1)
    index.flags.writeable = False
    return index


def _fill_axis(grid: Array, lead: int, data: int, trail: int, mode: str) -> None:
    """Pad axis 0 of ``grid`` (whose rows ``lead .. lead + data - 1`` hold data) in place."""
    inside = grid[lead : lead + data]
    reach = max(lead, trail)
    if mode == "nearest":
        grid[:lead] = inside[:1]
        grid[lead + data :] = inside[-1:]
    elif mode == "reflect" and reach <= data:  # b a | a b c d | d c
        grid[:lead] = inside[:lead][::-1]
        grid[lead + data :] = inside[data - trail :][::-1]
    elif mode == "mirror" and reach < data:  # c b | a b c d | c b
        grid[:lead] = inside[1 : lead + 1][::-1]
        grid[lead + data :] = inside[data - 1 - trail : data - 1][::-1]
    elif mode == "wrap" and reach <= data:  # c d | a b c d | a b
        grid[:lead] = inside[data - lead :]
        grid[lead + data :] = inside[:trail]
    else:  # padding wider than the image: the periodic index map
        if lead:
            grid[:lead] = inside[_source_index(np.arange(-lead, 0), data, mode)]
        if trail:
            grid[lead + data :] = inside[_source_index(np.arange(data, data + trail), data, mode)]


class _Source:
    """The padded plane, produced a few rows at a time into flat ``work`` buffers.

    Padded row ``p`` is image row ``p - top`` (mapped by `_source_index` outside the image);
    the row width is ``left + N + right``. The rows of any range equal those of
    ``numpy.pad(plane, ((top, bottom), (left, right)), NUMPY_PAD_MODE[border])``, for any pad
    width (also wider than the image); building them per band keeps the source in cache
    instead of writing and re-reading a padded copy of the whole image.
    """

    def __init__(
        self,
        plane: Array,
        pads: tuple[int, int, int, int],
        border: str,
        fill: float,
        work: np.dtype[Any],
    ) -> None:
        self.plane, self.pads, self.border = plane, pads, border
        self.fill = work.type(fill)
        self.width = plane.shape[1] + pads[2] + pads[3]

    def rows(self, p0: int, p1: int, flat: Array) -> None:
        """Write padded rows ``p0 .. p1 - 1`` to ``flat``, then ``width`` zeros (slack)."""
        top, _, left, right = self.pads
        plane, border, width = self.plane, self.border, self.width
        rows, cols = plane.shape
        count = p1 - p0
        grid = flat[: count * width].reshape(count, width)
        flat[count * width : (count + 1) * width] = 0
        centre = grid[:, left : left + cols]
        i0, i1 = max(p0, top), min(p1, top + rows)
        if i0 < i1:
            np.copyto(centre[i0 - p0 : i1 - p0], plane[i0 - top : i1 - top], casting="unsafe")
        for q0, q1 in ((p0, min(p1, top)), (max(p0, top + rows), p1)):
            if q0 >= q1:
                continue
            if border == "constant":
                grid[q0 - p0 : q1 - p0] = self.fill
            else:
                index = _source_rows(q0 - top, q1 - top, rows, border)
                np.copyto(centre[q0 - p0 : q1 - p0], plane[index], casting="unsafe")
        if not (left or right):
            return
        if border == "constant":
            grid[:, :left] = self.fill
            grid[:, left + cols :] = self.fill
        else:
            _fill_axis(grid.T, left, cols, right, border)
