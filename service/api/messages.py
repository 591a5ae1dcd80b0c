"""422 messages a person reads: Pydantic's errors without Pydantic's internals.

``humanize(errors, prefix)`` turns ``ValidationError.errors()`` (with ``ctx``) into the API's
``{"type", "loc", "msg"}`` issues. Rules, all driven by the error ``type``/``ctx`` and the spec
models' field names, so they hold when the schemas change:

* **Locations** keep field names and list indexes only. A union adds a branch label to the
  location (``constrained-int``, ``tuple[...]``, ``literal['ascent']``, a class name, a tag such
  as ``convolve``); a string segment that is no field name of any spec model is such a label and
  is dropped (except the unknown key of ``extra_forbidden``).
* **Unions** report one branch. A branch whose errors lie deeper than its root, or are not a
  plain type mismatch there, is the one the client meant; of several, the one with the fewest
  errors wins. When no branch fits, one issue names every accepted shape ("must be an integer
  or a list of 2 integers").
* **Messages** are written per error type from ``ctx`` (bounds, expected literals, lengths);
  ``value_error`` keeps the validator's own words without the "Value error, " prefix.
* An element of a matrix (a field followed by two indexes) is named 1-based too:
  "(row 1, column 2)".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel

Loc = tuple[str | int, ...]

# Errors that only say "this branch is the wrong kind of value" (at the branch's root).
_MISMATCH = re.compile(r"_(type|parsing)$|^(literal_error|int_from_float|none_required)$")


@cache
def _field_names() -> frozenset[str]:
    """Every field name and alias of the spec models and the models they contain."""
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()
    from ..ops import spec_models  # the registry imports the domain, which imports this

    todo: list[Any] = list(spec_models())
    while todo:
        kind = todo.pop()
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if kind in seen:
                continue
            seen.add(kind)
            for name, field in kind.model_fields.items():
                aliases = (name, field.alias, field.validation_alias)
                names.update(n for n in aliases if isinstance(n, str))
                todo.append(field.annotation)
        else:
            todo.extend(getattr(kind, "__args__", ()))
            todo.extend(getattr(kind, "__metadata__", ()))
    return frozenset(names)


def _is_label(segment: str | int, names: frozenset[str]) -> bool:
    return isinstance(segment, str) and segment not in names


def _plural(noun: str) -> str:
    return {"an integer": "integers", "a number": "numbers", "a string": "strings"}.get(
        noun, "items"
    )


def _split_args(text: str) -> list[str]:
    """``"int, tuple[int, int]"`` -> ``["int", "tuple[int, int]"]`` (top-level commas only)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def describe(label: str) -> str:
    """What a union branch label accepts: ``tuple[int, int]`` -> "a list of 2 integers"."""
    match = re.fullmatch(r"([a-z-]+)\[(.*)\]", label)
    if match and match[1] == "literal":
        return " or ".join(_split_args(match[2]))
    if match and match[1] in ("tuple", "list", "set", "frozenset"):
        items = [describe(arg) for arg in _split_args(match[2])]
        if match[1] == "tuple" and "..." not in items and len(set(items)) == 1:
            return f"a list of {len(items)} {_plural(items[0])}"
        if match[1] == "tuple" and "..." not in items:
            return f"a list of {len(items)} items"
        return f"a list of {_plural(items[0])}" if items else "a list"
    if match:  # function-after[...], nullable[...], lax-or-strict[...]: the inner type counts
        return describe(_split_args(match[2])[-1])
    words = set(re.split(r"[-_ ]", label.lower()))
    for word, noun in (
        ("int", "an integer"),
        ("float", "a number"),
        ("decimal", "a number"),
        ("str", "a string"),
        ("bool", "true or false"),
        ("none", "null"),
        ("dict", "an object"),
    ):
        if word in words:
            return noun
    return "an object" if label[:1].isupper() else f"`{label}`"


def _join(words: Sequence[str]) -> str:
    unique = list(dict.fromkeys(words))
    return unique[0] if len(unique) == 1 else ", ".join(unique[:-1]) + " or " + unique[-1]


def message(error: Mapping[str, Any]) -> str:
    """The text for one Pydantic error (its location is reported apart)."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    msg = str(error.get("msg", ""))
    bounds = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    for key, sign in bounds.items():
        if key in ctx and kind.endswith(("_than", "_than_equal")):
            return f"must be {sign} {ctx[key]}"
    if kind in ("value_error", "assertion_error"):
        return re.sub(r"^(Value error|Assertion failed), ", "", msg)
    texts = {
        "missing": "is required",
        "extra_forbidden": "is not a known field (check the spelling)",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "finite_number": "must be a finite number",
        "string_type": "must be a string",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "list_type": "must be a list",
        "tuple_type": "must be a list",
        "dict_type": "must be an object",
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
        "none_required": "must be null",
    }
    if kind in texts:
        return texts[kind]
    if kind == "literal_error" and "expected" in ctx:
        return f"must be {ctx['expected']}"
    if kind == "enum" and "expected" in ctx:
        return f"must be {ctx['expected']}"
    if kind == "union_tag_invalid" and "discriminator" in ctx:
        return f"`{ctx['discriminator'].strip(chr(39))}` must be one of {ctx['expected_tags']}"
    if kind == "union_tag_not_found" and "discriminator" in ctx:
        return f"needs `{ctx['discriminator'].strip(chr(39))}`"
    if kind in ("too_long", "too_short") and ("max_length" in ctx or "min_length" in ctx):
        many = "at most" if kind == "too_long" else "at least"
        limit = ctx.get("max_length", ctx.get("min_length"))
        return (
            f"must have {many} {limit} item{'s' if limit != 1 else ''}, not {ctx['actual_length']}"
        )
    if kind == "json_invalid":
        return f"is not valid JSON ({ctx.get('error', msg)})"
    if kind in ("string_too_long", "string_too_short"):
        return msg.replace("String should", "must").replace("String", "text")
    return re.sub(r"^Input should", "must", msg)


def _cell(loc: Loc) -> str:
    """ " (row 1, column 2)" when ``loc`` ends in a matrix element, else ""."""
    matrix = len(loc) >= 3 and isinstance(loc[-3], str)
    if matrix and isinstance(loc[-2], int) and isinstance(loc[-1], int):
        return f" (row {loc[-2] + 1}, column {loc[-1] + 1})"
    return ""


def _pick_branch(branches: Mapping[str, list[tuple[Loc, Mapping[str, Any]]]]) -> str | None:
    """The branch the client meant: errors past its root or of another kind than a mismatch."""
    fitting = [
        label
        for label, errors in branches.items()
        if any(rest or not _MISMATCH.search(str(e.get("type", ""))) for rest, e in errors)
    ]
    if not fitting:
        return None
    return min(fitting, key=lambda label: len(branches[label]))


def _resolve(
    errors: Iterable[Mapping[str, Any]], names: frozenset[str]
) -> list[tuple[Loc, str, str]]:
    """(location without labels, type, message) per issue, one union branch chosen per union."""
    plain: list[tuple[Loc, Mapping[str, Any]]] = []
    unions: dict[Loc, dict[str, list[tuple[Loc, Mapping[str, Any]]]]] = {}
    for error in errors:
        loc: Loc = tuple(error.get("loc", ()))
        keep = len(loc) - 1 if error.get("type") == "extra_forbidden" else len(loc)
        index = next((i for i, s in enumerate(loc[:keep]) if _is_label(s, names)), None)
        if index is None:
            plain.append((loc, error))
            continue
        label = str(loc[index])
        unions.setdefault(loc[:index], {}).setdefault(label, []).append((loc[index + 1 :], error))
    out = [(loc, str(error.get("type", "")), message(error)) for loc, error in plain]
    for at, branches in unions.items():
        chosen = _pick_branch(branches) if len(branches) > 1 else next(iter(branches))
        if chosen is None:
            kind = str(next(iter(branches.values()))[0][1].get("type", ""))
            out.append((at, kind, f"must be {_join([describe(label) for label in branches])}"))
            continue
        nested = [{**e, "loc": rest} for rest, e in branches[chosen]]
        shapes = f" ({_join([describe(label) for label in branches])})" if len(branches) > 1 else ""
        out.extend(
            ((*at, *loc), kind, msg + (shapes if not loc else ""))
            for loc, kind, msg in _resolve(nested, names)
        )
    return out


def humanize(errors: Iterable[Mapping[str, Any]], prefix: Loc = ("body",)) -> list[dict[str, Any]]:
    """API issues ``{"type", "loc", "msg"}`` for Pydantic's ``errors()`` (with ``ctx``)."""
    errors = list(errors)
    try:
        resolved = _resolve(errors, _field_names())
    except Exception:  # a message must never turn a 422 into a 500: Pydantic's words, trimmed
        resolved = [(tuple(e.get("loc", ())), str(e.get("type")), message(e)) for e in errors]
    return [
        {"type": kind, "loc": [*prefix, *loc], "msg": msg + _cell(loc)}
        for loc, kind, msg in resolved
    ]
