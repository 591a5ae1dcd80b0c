"""The lesson's loops transcribed literally: the slow test oracle (and the bench's yardstick).

Source: ``../shared/reference/lesson.txt`` (TensorFlow's "convolutions" codelab). Nothing here
is vectorised or clever on purpose: these functions are what the service's codelab mode must
reproduce pixel for pixel, and what its speed is compared with. A 512 x 512 run of the 3x3
loop takes about 1.5 s; keep the number of calls in tests small.

Two deliberate departures from the printed code, both from the original notebook:

* **The clamp.** The printed convolution loop lost the notebook's
  ``if(output_pixel<0): output_pixel=0`` / ``if(output_pixel>255): output_pixel=255``
  before the assignment; it is restored here. The assignment into the integer
  ``i_transformed`` then truncates toward zero.
* **Max pooling.** The printed pooling loop stores ``pixels[0]`` -- the top-left pixel --
  having lost the notebook's ``pixels.sort(reverse=True)``; it is restored, so the loop takes
  the maximum, as the lesson's text says.

NumPy 2 note. The lesson indexed ``i = misc.ascent()`` -- an int64 array -- and in the NumPy 1
days it ran with, ``i[x, y] * filter[r][c]`` was an exact integer product. Under NumPy 2
(NEP 50) a ``np.uint8`` pixel times a negative Python int raises (``-1`` does not fit uint8)
and a positive product can wrap around (``np.uint8(200) * 2 == 144``). The loops therefore
read the pixels from a copy converted with ``.astype(np.int64)``, which is what the lesson
read, while ``i_transformed`` stays a copy of the caller's image (uint8 for ascent).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Filter = Sequence[Sequence[float]]


def _lesson_pixels(image: np.ndarray) -> np.ndarray:
    """The array the loop reads: int64 for integer images (as the lesson's ascent was)."""
    return image.astype(np.float64 if image.dtype.kind == "f" else np.int64)


def lesson_convolve_3x3(image: np.ndarray, filter: Filter, weight: float) -> np.ndarray:
    """The lesson's 3x3 convolution loop exactly as printed, plus the notebook's clamp.

    ``image`` is a 2-D (grayscale) array; returns ``i_transformed``, a copy of it whose
    interior holds the clamped, truncated results and whose 1-pixel margin is unchanged.
    """
    i_transformed = np.copy(image)
    i = _lesson_pixels(image)
    size_x = i_transformed.shape[0]
    size_y = i_transformed.shape[1]
    # fmt: off
    for x in range(1,size_x-1):
      for y in range(1,size_y-1):
          output_pixel = 0.0
          output_pixel = output_pixel + (i[x - 1, y-1] * filter[0][0])
          output_pixel = output_pixel + (i[x, y-1] * filter[0][1])
          output_pixel = output_pixel + (i[x + 1, y-1] * filter[0][2])
          output_pixel = output_pixel + (i[x-1, y] * filter[1][0])
          output_pixel = output_pixel + (i[x, y] * filter[1][1])
          output_pixel = output_pixel + (i[x+1, y] * filter[1][2])
          output_pixel = output_pixel + (i[x-1, y+1] * filter[2][0])
          output_pixel = output_pixel + (i[x, y+1] * filter[2][1])
          output_pixel = output_pixel + (i[x+1, y+1] * filter[2][2])
          output_pixel = output_pixel * weight
          if(output_pixel<0):
            output_pixel=0
          if(output_pixel>255):
            output_pixel=255
          i_transformed[x, y] = output_pixel
    # fmt: on
    return i_transformed


def lesson_convolve(image: np.ndarray, filter: Filter, weight: float) -> np.ndarray:
    """The same loop for any odd k x k ``filter``, written as the same plain Python loop.

    ``filter[r][c]`` multiplies ``i[x + c - m, y + r - m]`` with ``m = k // 2`` -- for k = 3
    exactly the nine printed lines, in their order. The ``m``-pixel margin is unchanged.
    """
    i_transformed = np.copy(image)
    i = _lesson_pixels(image)
    size_x = i_transformed.shape[0]
    size_y = i_transformed.shape[1]
    k = len(filter)
    m = k // 2
    # fmt: off
    for x in range(m,size_x-m):
      for y in range(m,size_y-m):
          output_pixel = 0.0
          for r in range(k):
            for c in range(k):
              output_pixel = output_pixel + (i[x + c - m, y + r - m] * filter[r][c])
          output_pixel = output_pixel * weight
          if(output_pixel<0):
            output_pixel=0
          if(output_pixel>255):
            output_pixel=255
          i_transformed[x, y] = output_pixel
    # fmt: on
    return i_transformed


def lesson_output_pixels(image: np.ndarray, filter: Filter, weight: float) -> np.ndarray:
    """The generic loop's ``output_pixel`` values before the clamp, as a float64 array.

    The same loop as `lesson_convolve` with the clamp left out and ``i_transformed`` a float64
    copy, so each stored value is the loop's float64 ``output_pixel`` itself.
    """
    i_transformed = np.copy(image).astype(np.float64)
    i = _lesson_pixels(image)
    size_x = i_transformed.shape[0]
    size_y = i_transformed.shape[1]
    k = len(filter)
    m = k // 2
    # fmt: off
    for x in range(m,size_x-m):
      for y in range(m,size_y-m):
          output_pixel = 0.0
          for r in range(k):
            for c in range(k):
              output_pixel = output_pixel + (i[x + c - m, y + r - m] * filter[r][c])
          output_pixel = output_pixel * weight
          i_transformed[x, y] = output_pixel
    # fmt: on
    return i_transformed


def lesson_max_pool(i_transformed: np.ndarray) -> np.ndarray:
    """The lesson's 2x2, stride-2 pooling loop, with the notebook's sort (so: max pooling).

    ``i_transformed`` is 2-D with even sides (the loop indexes ``x + 1`` and ``y + 1``, out of
    bounds on odd sides, as the lesson's would). Returns float64, as ``np.zeros`` makes it.
    """
    size_x = i_transformed.shape[0]
    size_y = i_transformed.shape[1]
    # fmt: off
    new_x = int(size_x/2)
    new_y = int(size_y/2)
    newImage = np.zeros((new_x, new_y))
    for x in range(0, size_x, 2):
      for y in range(0, size_y, 2):
        pixels = []
        pixels.append(i_transformed[x, y])
        pixels.append(i_transformed[x+1, y])
        pixels.append(i_transformed[x, y+1])
        pixels.append(i_transformed[x+1, y+1])
        pixels.sort(reverse=True)
        newImage[int(x/2),int(y/2)] = pixels[0]
    # fmt: on
    return newImage
