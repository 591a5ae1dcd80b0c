"""The ``imgfilter`` command line (also ``python -m service``).

One function pair per subcommand: ``_add_<name>(subparsers)`` declares its arguments and sets
``handler=cmd_<name>``; ``cmd_<name>(args) -> int`` runs it and returns the exit code. Add a
subcommand by writing the pair and listing ``_add_<name>`` in ``_SUBCOMMANDS``. Imports of
heavy modules belong inside the ``cmd_`` functions, so ``imgfilter --help`` stays fast and
``serve`` decides how metrics are stored before prometheus-client is imported.

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
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel, ValidationError

from . import __version__
from .config import Settings
from .core.errors import CoreError
from .errors import ServiceError, SpecError

if TYPE_CHECKING:
    from .imaging import Decoded
    from .schemas import OutputFormat

S = TypeVar("S", bound=BaseModel)

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


def _window(text: str) -> Any:
    """``2``, ``2,3`` or ``[2, 3]`` as the API's int-or-pair field."""
    if "," in text and not text.lstrip().startswith("["):
        return [_value(part) for part in text.split(",")]
    return _value(text)


def _kernel(text: str) -> Any:
    """A JSON matrix, or rows split by ``;`` with values split by ``,`` or spaces."""
    if text.lstrip().startswith("["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CliError(f"--kernel is not valid JSON: {exc}", code=2) from exc
    return [[_value(v) for v in row.replace(",", " ").split()] for row in text.split(";")]


def _add_image_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or 'ascent'")
    parser.add_argument("-o", "--output", help="output file (one IMAGE) or directory (several)")
    parser.add_argument("--format", help="png (default) or json (the API's ArrayResult)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _add_color_scale(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--color", help="auto (default) or gray (8-bit luma first)")
    parser.add_argument("--scale", help="clamp (default), abs, normalize, or raw (json only)")


def _add_convolve(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "convolve",
        help="convolve local images with a kernel or preset",
        description="Apply a kernel like POST /convolve, locally.",
        epilog=_IMAGE_EPILOG + " Example: imgfilter convolve ascent --preset sobel-x -o edges.png",
    )
    _add_image_arguments(parser)
    kernel = parser.add_mutually_exclusive_group()
    kernel.add_argument(
        "--kernel",
        help="JSON matrix, or rows split by ';' (a leading '-' needs '='): "
        "--kernel='-1,0,1;-2,0,2;-1,0,1'",
    )
    kernel.add_argument("--preset", help="a preset name (see `imgfilter kernels`)")
    parser.add_argument("--weight", type=_value, help="multiplies the finished sum")
    parser.add_argument(
        "--normalize", action="store_const", const=True, help="divide the kernel by its sum"
    )
    parser.add_argument("--mode", help="standard (default) or codelab (the lesson's loop)")
    parser.add_argument(
        "--border", help="reflect (default), mirror, nearest, wrap, constant, keep, valid"
    )
    parser.add_argument("--cval", type=_value, help="outside value for --border constant")
    parser.add_argument(
        "--flip", action="store_const", const=True, help="flip the kernel (true convolution)"
    )
    _add_color_scale(parser)
    parser.set_defaults(handler=cmd_convolve)


def cmd_convolve(args: argparse.Namespace) -> int:
    """Convolve each IMAGE; 2 for invalid options, 1 for an image that cannot be processed."""
    from . import processing
    from .schemas import ConvolveSpec

    names = ("preset", "weight", "normalize", "mode", "border", "cval", "flip", "color", "scale")

    def run() -> int:
        fields = {name: getattr(args, name) for name in names}
        fields["kernel"] = None if args.kernel is None else _kernel(args.kernel)
        return _run_images(args, ConvolveSpec, fields, processing.convolve)

    return _guarded(run)


def _add_pool(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "pool",
        help="pool local images (max, avg, min)",
        description="Pool like POST /pool, locally.",
        epilog=_IMAGE_EPILOG + " Example: imgfilter pool edges.png --size 2 -o small.png",
    )
    _add_image_arguments(parser)
    parser.add_argument("--method", help="max (default), avg or min")
    parser.add_argument("--size", type=_window, help="window side, or 'rows,cols' (default 2)")
    parser.add_argument("--stride", type=_window, help="step between windows (default: size)")
    parser.add_argument("--edge", help="drop (default) or partial")
    _add_color_scale(parser)
    parser.set_defaults(handler=cmd_pool)


def cmd_pool(args: argparse.Namespace) -> int:
    """Pool each IMAGE; 2 for invalid options, 1 for an image that cannot be processed."""
    from . import processing
    from .schemas import PoolSpec

    names = ("method", "size", "stride", "edge", "color", "scale")
    fields = {name: getattr(args, name) for name in names}
    return _guarded(lambda: _run_images(args, PoolSpec, fields, processing.pool_image))


def _add_pipeline(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="run convolve/pool steps on local images",
        description="Run steps like POST /pipeline, locally.",
        epilog=_IMAGE_EPILOG
        + " Example: imgfilter pipeline ascent --steps "
        + """'[{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]' -o out.png""",
    )
    _add_image_arguments(parser)
    parser.add_argument(
        "--steps", required=True, help="the steps as JSON (the API's `steps`), or @FILE"
    )
    parser.set_defaults(handler=cmd_pipeline)


def cmd_pipeline(args: argparse.Namespace) -> int:
    """Run the steps on each IMAGE; 2 for invalid steps, 1 for an image that cannot be run."""
    from . import processing
    from .schemas import PipelineSpec

    def run() -> int:
        text: str = args.steps
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text(encoding="utf-8")
            except OSError as exc:
                raise CliError(f"--steps {text}: {exc.strerror or exc}", code=2) from exc
        try:
            steps = json.loads(text)
        except ValueError as exc:
            raise CliError(f"--steps is not valid JSON: {exc}", code=2) from exc
        fields = steps if isinstance(steps, dict) else {"steps": steps}

        def operation(image: Decoded, spec: PipelineSpec, settings: Settings) -> Decoded:
            return processing.run_steps(image, spec.steps, settings)

        return _run_images(args, PipelineSpec, fields, operation)

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
    targets = _targets(args.inputs, output, several, fmt)
    progress = _Progress(len(targets), enabled=several and not args.quiet)
    for source, target in targets:
        image = _load(source, settings)
        try:
            result = operation(image, spec, settings)
        except SpecError as exc:
            raise CliError(f"{source}: {_where(exc.loc)}: {exc.detail}") from exc
        except CoreError as exc:
            raise CliError(f"{source}: {exc.param}: {exc.message}") from exc
        body, _ = processing.render(result, fmt, settings)
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
        raise CliError(f"{source}: {exc.detail}") from exc


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


_SUBCOMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    _add_serve,
    _add_convolve,
    _add_pool,
    _add_pipeline,
    _add_kernels,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of ``_SUBCOMMANDS``."""
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
    for add in _SUBCOMMANDS:
        add(subparsers)
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
