"""Test tiers: which tests start processes, so that ``make check`` can leave them out.

A test is a *process* test when its function, or any fixture it uses, or any function or class
of this test package they refer to (followed transitively, e.g. ``running_server`` in
``tests/servers.py``), refers to ``subprocess``, ``multiprocessing`` or
``asyncio.create_subprocess_*``. The scan reads names from the code objects; it runs nothing.
Browser tests (``tests/e2e``) are process tests by directory. ``conftest.py`` marks them
``process``; ``make check`` deselects ``slow``, ``process`` and ``network``.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator
from typing import Any

PROCESS_MODULES = frozenset({"subprocess", "multiprocessing", "concurrent.futures.process"})
PROCESS_NAMES = frozenset({"create_subprocess_exec", "create_subprocess_shell", "fork", "spawnv"})
LOCAL_PACKAGES = ("tests", "testkit")  # code followed into; anything else is a leaf


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _is_local(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module.split(".")[0] in LOCAL_PACKAGES


def _is_process_api(obj: Any) -> bool:
    if isinstance(obj, types.ModuleType):
        name = obj.__name__
    else:
        name = getattr(obj, "__module__", None) or ""
    return name in PROCESS_MODULES or name.startswith("multiprocessing.")


def starts_processes(func: Any, seen: set[int] | None = None) -> bool:
    """True if ``func`` (a function or class) can start a process, by the rule above."""
    seen = set() if seen is None else seen
    if id(func) in seen:
        return False
    seen.add(id(func))
    if inspect.isclass(func):
        methods = [member for member in vars(func).values() if inspect.isfunction(member)]
        return any(starts_processes(method, seen) for method in methods)
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None:
        return False
    namespace = getattr(func, "__globals__", {})
    for each in _code_objects(code):
        for name in each.co_names:
            if name in PROCESS_NAMES:
                return True
            obj = namespace.get(name)
            if obj is None:
                continue
            if _is_process_api(obj):
                return True
            local = (inspect.isfunction(obj) or inspect.isclass(obj)) and _is_local(obj)
            if local and starts_processes(obj, seen):
                return True
    return False
