"""Named kernel presets. STUB."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Preset:
    """A named kernel with the weight applied to its finished sum."""

    name: str
    kernel: tuple[tuple[float, ...], ...]
    weight: float
    description: str

    @property
    def array(self) -> npt.NDArray[np.float64]:
        return np.array(self.kernel, dtype=np.float64)


PRESETS: dict[str, Preset] = {}


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; KernelError(param="preset") if unknown."""
    raise NotImplementedError
