"""Every preset, and its negation, through every path: exact float32, whatever the plan.

Kept apart from ``test_convolve.py`` (whose helpers it uses) so that the fast tier's workers
(``make check``, pytest-xdist by file) can run the two at the same time.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from service.core import correlate
from service.core.kernels import PRESETS
from tests.core.test_convolve import SCIPY_MODES, applicable_methods, exact_sums, random_u8

__all__ = ["random_u8"]  # the module-scoped fixture, shared with test_convolve.py

PRESET_KERNELS = {
    f"{sign}{p.name}": np.array(p.kernel) * (1 if sign == "+" else -1)
    for p in PRESETS.values()
    for sign in "+-"
}


SUMS: dict[tuple[str, str, bytes], np.ndarray] = {}


def preset_sums(name: str, image: np.ndarray, mode: str) -> np.ndarray:
    """The exact integer sums of a preset: computed once per image and mode, for every weight."""
    key = (name, mode, hashlib.sha256(image.tobytes() + str(image.shape).encode()).digest())
    if key not in SUMS:
        SUMS[key] = exact_sums(image, PRESET_KERNELS[name], mode)
    return SUMS[key]


@pytest.mark.parametrize("name", list(PRESET_KERNELS))
@pytest.mark.parametrize(
    # 0.1 (not a binary fraction, negated kernels included) in the fast tier; all four in make test
    "weight",
    [
        pytest.param(1.0, marks=pytest.mark.slow),
        pytest.param(0.5, marks=pytest.mark.slow),
        0.1,
        pytest.param(-3.0, marks=pytest.mark.slow),
    ],
)
@pytest.mark.parametrize(
    # the random image through every border in the fast tier, ascent (4x its pixels) through
    # the default border; ascent through the other four in make test
    ("image_name", "modes"),
    [
        ("random", SCIPY_MODES),
        ("ascent", ("reflect",)),
        pytest.param("ascent", SCIPY_MODES[1:], marks=pytest.mark.slow, id="ascent-other-borders"),
    ],
)
def test_correlate_presets_and_their_negations_are_exact_float32_through_every_path(
    name, weight, image_name, modes, ascent, random_u8
):
    # The contract for integer data: the exact integer sum times ``weight`` in float64, rounded
    # once to float32 -- whatever path, sign folding or float32 shortcut the plan takes.
    kernel = PRESET_KERNELS[name]
    image = ascent if image_name == "ascent" else random_u8
    for mode in modes:
        expected = (preset_sums(name, image, mode) * weight).astype(np.float32)
        for method in applicable_methods(kernel):
            out = correlate(image, kernel, weight=weight, border=mode, method=method)
            np.testing.assert_array_equal(out, expected, err_msg=f"{method} {mode}")
