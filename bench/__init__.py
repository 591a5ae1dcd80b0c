"""Benchmarks: ``bench.core`` (the NumPy core) and ``bench.load`` (the service under load)."""

from __future__ import annotations

from pathlib import Path

SHARED_YARDSTICK = Path(__file__).resolve().parents[2] / "shared" / "bench"
VENDORED_YARDSTICK = Path(__file__).resolve().parent / "vendor"  # verbatim copy, see its README


def default_yardstick_dir() -> Path:
    """Where ``naive_app.py`` is: ``<repo>/../shared/bench``, else the copy in ``bench/vendor``."""
    return SHARED_YARDSTICK if SHARED_YARDSTICK.is_dir() else VENDORED_YARDSTICK
