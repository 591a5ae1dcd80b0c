"""The layers, read from the source: the runtime never imports the domain; the core imports
only itself, NumPy and the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"
DOMAIN = ("service.schemas", "service.core", "service.imaging", "service.processing", "service.api")


def module_name(path: Path) -> str:
    """``service/runtime/limiter.py`` -> ``service.runtime.limiter`` (packages: their name)."""
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    """Every module a file imports, relative imports made absolute.

    ``from X import y`` counts both ``X`` and ``X.y`` (``y`` may be a submodule: ``from ..
    import schemas``). Imports under ``if TYPE_CHECKING:`` count too.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(f"{prefix}.") for prefix in prefixes)


def test_imported_resolves_relative_imports() -> None:
    """The walker itself: a domain import written relatively is seen (so the tests can fail)."""
    path = SERVICE / "runtime" / "limiter.py"
    names = imported(path)
    assert "service.config" in names
    assert "service.runtime.observability" in names
    assert "service.errors.OverloadedError" in names
    assert within("service.api.body", DOMAIN)
    assert not within("service.config", DOMAIN)


RUNTIME = sorted((SERVICE / "runtime").glob("*.py"))


@pytest.mark.parametrize("path", RUNTIME, ids=lambda path: path.name)
def test_runtime_never_imports_the_domain(path: Path) -> None:
    assert RUNTIME, "no runtime modules found"
    domain = sorted(name for name in imported(path) if within(name, DOMAIN))
    assert domain == [], f"{module_name(path)} imports the domain: {domain}"


def test_the_limiter_knows_neither_the_board_nor_the_trimmer() -> None:
    """The limiter offers hooks; the lifespan (lifecycle) wires the board and the trimmer."""
    names = imported(SERVICE / "runtime" / "limiter.py")
    layers = ("service.runtime.balancing", "service.runtime.memory")
    assert not [name for name in names if within(name, layers)]


CORE = sorted((SERVICE / "core").rglob("*.py"))
ALLOWED_IN_CORE = ("service.core", "numpy", "__future__")


@pytest.mark.parametrize("path", CORE, ids=lambda path: str(path.relative_to(SERVICE)))
def test_core_imports_only_itself_numpy_and_the_standard_library(path: Path) -> None:
    outside = sorted(
        name
        for name in imported(path)
        if not within(name, ALLOWED_IN_CORE) and name.split(".")[0] not in sys.stdlib_module_names
    )
    assert outside == [], f"{module_name(path)} imports {outside}"
