"""The ``imgfilter`` command line (also ``python -m service``).

Each operation of the registry (``service.ops``) is a subcommand, its options derived from the
operation's spec model: one ``--field`` per field, booleans as flags, lists as JSON, ``@FILE``
or a short form (``2,3``; a matrix as ``1,0;0,1``); ``cmd_operation`` runs it. The others
(``serve``, ``kernels``) are a function pair each: ``_add_<name>(subparsers)`` declares the
arguments and sets ``handler=cmd_<name>``; ``cmd_<name>(args) -> int`` returns the exit code.
The registry is imported when the parser is built (the options come from its models); the
server starts its workers as fresh processes (spawn), which import prometheus-client only after
``serve`` has chosen where metrics are stored.

Exit codes: 0 success, 1 an input could not be read, decoded or processed, 2 usage or
settings error (argparse's convention; also an invalid spec option), 3 the server could not
start (uvicorn's convention).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import ValidationError

from . import __version__
from .config import Settings
from .core.errors import CoreError
from .errors import InvalidSpecError, ServiceError

if TYPE_CHECKING:
    from .imaging import Decoded
    from .ops import Operation
    from .schemas import OutputFormat, OutputSpec

S = TypeVar("S", bound="OutputSpec")

__all__ = ["build_parser", "main"]

Subparsers = Any  # argparse's _SubParsersAction is private


def _add_serve(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the HTTP service (uvicorn, several worker processes)",
        description=(
            "Run the HTTP service. Options override the IMGFILTER_* settings. On a terminal, "
            "prints the playground and API docs URLs once listening."
        ),
    )
    parser.add_argument("--host", help="bind address (IMGFILTER_HOST)")
    parser.add_argument("--port", type=int, help="TCP port (IMGFILTER_PORT)")
    parser.add_argument(
        "--workers", type=int, help="worker processes (IMGFILTER_WORKERS; default: CPU count)"
    )
    parser.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; 2 for bad settings, 3 if the server cannot start."""
    overrides = {
        name: value
        for name in ("host", "port", "workers")
        if (value := getattr(args, name)) is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        print(f"imgfilter serve: invalid settings\n{exc}", file=sys.stderr)
        return 2

    from .runtime.server import serve

    serve(settings)
    return 0


# --- image subcommands: convolve, pool, pipeline, kernels -----------------------------------
# They run the core in-process on local files (or "ascent"), through the same spec models and
# ``service.processing`` functions as the API, so options are validated, and refused, in the
# API's own words. Option values are handed to Pydantic as given (no argparse ``type``/
# ``choices``), so ``--weight abc`` gets the API's message, not argparse's.

_IMAGE_EPILOG = (
    "IMAGE is a file (PNG, JPEG, WebP, BMP, TIFF, GIF) or 'ascent'. With one IMAGE, -o FILE "
    "(default: stdout; the format follows a .json suffix unless --format says); with several, "
    "-o DIR receives <name>.png or <name>.json each, with a progress bar on stderr."
)


class CliError(Exception):
    """A refusal printed as one line, ``imgfilter: error: <message>``, with exit ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(" ".join(message.split()))
        self.code = code


def _value(text: str) -> Any:
    """A JSON value (``2``, ``0.5``, ``true``, ``[2, 3]``) or, if not JSON, the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _list_value(option: str, text: str, *, matrix: bool) -> Any:
    """A list field's value: JSON (``[...]``), ``@FILE`` holding JSON, or a short form.

    The short form of a matrix is rows split by ``;`` with values split by ``,`` or spaces
    (``-1,0,1;-2,0,2;-1,0,1``); of any other list, values split by ``,`` (``2,3``); a text
    without a separator is one value (``--size 2``).
    """
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CliError(f"{option} {text}: {exc.strerror or exc}", code=2) from exc
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CliError(f"{option} is not valid JSON: {exc}", code=2) from exc
    if matrix:
        return [[_value(v) for v in row.replace(",", " ").split()] for row in text.split(";")]
    if "," in text:
        return [_value(part) for part in text.split(",")]
    return _value(text)


def _add_image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or 'ascent'")
    parser.add_argument("-o", "--output", help="output file (one IMAGE) or directory (several)")
    parser.add_argument("--format", help="png (default) or json (the API's ArrayResult)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


@dataclass(frozen=True, slots=True)
class _Option:
    """A spec field as a command-line option: ``--name`` (``_`` as ``-``) and how to read it."""

    field: str
    flag: bool  # a boolean field: the option takes no value and sets true
    listed: bool  # a list field (or int-or-list): JSON, @FILE or the short form
    matrix: bool  # a list of lists of numbers: the short form is rows split by ';'

    @property
    def option(self) -> str:
        return "--" + self.field.replace("_", "-")

    def read(self, text: Any) -> Any:
        if text is None or self.flag or not self.listed:
            return text if self.flag or text is None else _value(text)
        return _list_value(self.option, text, matrix=self.matrix)


def _options(schema: dict[str, Any]) -> list[_Option]:
    """One ``_Option`` per property of a model's JSON schema (``format`` is the CLI's own)."""
    options = []
    for name, prop in schema.get("properties", {}).items():
        if name == "format":
            continue
        kinds = [prop, *prop.get("anyOf", ())]
        types = {kind.get("type") for kind in kinds}
        items = [kind.get("items", {}) for kind in kinds if kind.get("type") == "array"]
        options.append(
            _Option(
                field=name,
                flag=types == {"boolean"},
                listed="array" in types,
                matrix=any(item.get("type") == "array" for item in items),
            )
        )
    return options


def _help(prop: dict[str, Any]) -> str:
    """The option's help: the field's description (``%`` escaped for argparse)."""
    return str(prop.get("description", "")).replace("%", "%%")


def _add_operation(subparsers: Subparsers, operation: Operation[Any]) -> None:
    """``imgfilter <name>``: the registry operation on local images, one option per field."""
    parser = subparsers.add_parser(
        operation.name,
        help=f"{operation.summary[0].lower()}{operation.summary[1:]}, on local images",
        description=f"{operation.summary}, like POST {operation.path}, locally. {operation.help}",
        epilog=f"{_IMAGE_EPILOG} Example: imgfilter {operation.name} {operation.cli_example}",
    )
    _add_image_arguments(parser)
    schema = operation.schema
    required = set(schema.get("required", ()))
    for option in _options(schema):
        prop = schema["properties"][option.field]
        if option.flag:
            parser.add_argument(
                option.option, dest=option.field, action="store_const", const=True,
                help=_help(prop),
            )  # fmt: skip
        else:
            parser.add_argument(
                option.option, dest=option.field, required=option.field in required,
                metavar=option.field.upper(), help=_help(prop),
            )  # fmt: skip
    parser.set_defaults(handler=cmd_operation, operation=operation.name)


def cmd_operation(args: argparse.Namespace) -> int:
    """Run the registry operation ``args.operation`` on each IMAGE.

    2 for invalid options, 1 for an image that cannot be processed.
    """
    from .ops import OPERATIONS

    operation = OPERATIONS[args.operation]

    def run() -> int:
        options = _options(operation.schema)
        fields = {option.field: option.read(getattr(args, option.field)) for option in options}
        return _run_images(args, operation.spec, fields, operation.run)

    return _guarded(run)


def _add_kernels(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "kernels",
        help="list the preset kernels (or show one)",
        description="The presets of GET /kernels: name, size, weight, description.",
    )
    parser.add_argument("name", nargs="?", help="show this preset's matrix")
    parser.add_argument("--json", action="store_true", help="print JSON, as GET /kernels answers")
    parser.set_defaults(handler=cmd_kernels)


def cmd_kernels(args: argparse.Namespace) -> int:
    """Print the presets (a table, or JSON); 1 for an unknown name."""
    from .core.kernels import PRESETS

    def info(name: str) -> dict[str, Any]:
        preset = PRESETS[name]
        return {
            "name": preset.name,
            "kernel": [[float(v) for v in row] for row in preset.kernel],
            "weight": preset.weight,
            "description": preset.description,
        }

    def run() -> int:
        if args.name is not None and args.name not in PRESETS:
            raise CliError(f"unknown preset {args.name!r}; choose one of: {', '.join(PRESETS)}")
        names = [args.name] if args.name else list(PRESETS)
        if args.json:
            document = info(names[0]) if args.name else [info(name) for name in names]
            print(json.dumps(document, indent=2))
        elif args.name:
            preset = PRESETS[args.name]
            print(f"{preset.name}: {preset.description} (weight {preset.weight:.6g})")
            width = max(len(str(v)) for row in preset.kernel for v in row)
            for row in preset.kernel:
                print("  " + " ".join(str(v).rjust(width) for v in row))
        else:
            for name in names:
                preset = PRESETS[name]
                size = f"{len(preset.kernel)}x{len(preset.kernel[0])}"
                print(f"{name:<12} {size:<5} {preset.weight:<10.6g} {preset.description}")
        return 0

    return _guarded(run)


# --- running image subcommands -----------------------------------------------------------------


def _guarded(run: Callable[[], int]) -> int:
    """Run ``run``; print a ``CliError`` as one line on stderr and return its code."""
    try:
        return run()
    except CliError as exc:
        print(f"imgfilter: error: {exc}", file=sys.stderr)
        return exc.code


def _where(loc: Sequence[str | int]) -> str:
    parts = [str(part) for part in loc]
    return ".".join(parts[1:] if parts[:1] == ["body"] else parts)


def _validation_message(error: ValidationError, *, spec: bool = True) -> str:
    """The issues on one line, worded like the API's 422 (``service.api.messages``)."""
    from .api import messages

    errors = error.errors(include_url=False, include_input=False)
    if spec:
        issues = messages.humanize(errors, prefix=())
    else:
        issues = [{"loc": e["loc"], "msg": messages.message(e)} for e in errors]
    return "; ".join(
        f"{where}: {issue['msg']}" if (where := _where(issue["loc"])) else issue["msg"]
        for issue in issues
    )


def _run_images(
    args: argparse.Namespace,
    spec_model: type[S],
    fields: dict[str, Any],
    operation: Callable[[Decoded, S, Settings], Decoded],
) -> int:
    """Validate ``fields`` as ``spec_model`` (the API's multipart spec), run each IMAGE, write."""
    from . import imaging, processing
    from .config import get_settings
    from .schemas import validation_context

    try:
        settings = get_settings()
    except ValidationError as exc:
        raise CliError(f"invalid settings: {_validation_message(exc, spec=False)}", code=2) from exc
    imaging.configure_pillow(settings.max_pixels)
    output = Path(args.output) if args.output else None
    several = len(args.inputs) > 1 or (
        output is not None and (output.is_dir() or str(args.output).endswith(("/", os.sep)))
    )
    fmt = args.format or ("json" if output and output.suffix.lower() == ".json" else "png")
    spec_fields = {key: value for key, value in fields.items() if value is not None}
    spec_fields.setdefault("format", fmt)
    try:
        spec = spec_model.model_validate_json(
            json.dumps(spec_fields), context=validation_context(settings)
        )
    except ValidationError as exc:
        raise CliError(_validation_message(exc), code=2) from exc
    fmt = cast("OutputFormat", getattr(spec, "format", fmt))
    scale, path = spec.output_scale()
    if scale == "raw" and fmt == "png":
        where = _where(path)
        raise CliError(
            f"{where}: `raw` gives float32 values, which a PNG cannot hold; "
            "use --format json (or -o FILE.json)",
            code=2,
        )
    targets = _targets(args.inputs, output, several, fmt)
    progress = _Progress(len(targets), enabled=several and not args.quiet)
    for source, target in targets:
        image = _load(source, settings)
        try:
            result = operation(image, spec, settings)
        except InvalidSpecError as exc:
            raise CliError(f"{source}: {_where(exc.path)}: {exc.message}") from exc
        except CoreError as exc:
            raise CliError(f"{source}: {exc.param}: {exc.message}") from exc
        try:
            body, _ = processing.render(result, fmt, settings)
        except InvalidSpecError as exc:  # a JSON answer over max_json_values
            raise CliError(f"{source}: {exc.message}") from exc
        _write(body, target)
        progress.advance(source)
    return 0


# An -o naming one of these, with several inputs, is a file by mistake, not a directory to create.
_FILE_SUFFIXES = frozenset(
    (".png", ".json", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
)


def _targets(
    inputs: Sequence[str], output: Path | None, several: bool, fmt: str
) -> list[tuple[str, Path | None]]:
    """Pair each input with its output file (``None``: stdout); refuse clashing names."""
    if not several:
        if output is None and fmt == "png" and sys.stdout.isatty():
            raise CliError("refusing to write a PNG to the terminal; give -o FILE", code=2)
        return [(inputs[0], output)]
    if output is None:
        raise CliError("several images need -o DIR (a directory for the results)", code=2)
    if output.exists() and not output.is_dir():
        raise CliError(f"-o {output}: several images need a directory, not a file", code=2)
    if not output.exists() and output.suffix.lower() in _FILE_SUFFIXES:
        raise CliError(
            f"-o {output}: {len(inputs)} images need a directory, not one file "
            f"(give -o DIR, or one IMAGE per run)",
            code=2,
        )
    pairs: list[tuple[str, Path | None]] = []
    seen: dict[Path, str] = {}
    for source in inputs:
        target = output / f"{Path(source).stem}.{fmt}"
        if target in seen:
            raise CliError(f"{seen[target]} and {source} would both be written to {target}", 2)
        seen[target] = source
        pairs.append((source, target))
    output.mkdir(parents=True, exist_ok=True)
    return pairs


def _load(source: str, settings: Settings) -> Decoded:
    """Decode ``source`` (a file, or ascent) with ``service.imaging``, limits first."""
    from . import imaging

    if source == "ascent" and not Path(source).exists():
        return imaging.ascent()
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        raise CliError(f"{source}: {exc.strerror or exc}") from exc
    try:
        return imaging.decode(data, max_pixels=settings.max_pixels)
    except ServiceError as exc:
        raise CliError(f"{source}: {exc.message}") from exc


def _write(body: bytes, target: Path | None) -> None:
    if target is None:
        sys.stdout.buffer.write(body if body.startswith(b"\x89PNG") else body + b"\n")
        sys.stdout.buffer.flush()
        return
    try:
        target.write_bytes(body)
    except OSError as exc:
        raise CliError(f"{target}: {exc.strerror or exc}") from exc


class _Progress:
    """A plain progress bar on stderr: redrawn in place on a terminal, one line per file else."""

    WIDTH = 30

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.tty = sys.stderr.isatty()

    def advance(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        if not self.tty:
            print(f"imgfilter: {self.done}/{self.total} {label}", file=sys.stderr)
            return
        filled = self.WIDTH * self.done // self.total
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"\r[{bar}] {self.done}/{self.total} {Path(label).name[:40]:<40}"
        sys.stderr.write(line + ("\n" if self.done == self.total else ""))
        sys.stderr.flush()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: ``serve``, one subcommand per registry operation, ``kernels``."""
    parser = argparse.ArgumentParser(
        prog="imgfilter",
        description=(
            "Convolution and pooling on images. `serve` runs the HTTP service; convolve, pool, "
            "pipeline and kernels run locally in this process (no server, no network), with "
            "the same specs and messages as the API. To call a running server, use curl or "
            "service.client."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    from .ops import OPERATIONS

    _add_serve(subparsers)
    for operation in OPERATIONS.values():
        _add_operation(subparsers, operation)
    _add_kernels(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return handler(args)
