"""Benchmarks: ``bench.core`` (the NumPy core) and ``bench.load`` (the service under load)."""
