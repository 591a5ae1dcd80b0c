"""The operation registry: one :class:`Operation` entry per operation the service offers.

Everything per-operation derives from an entry:

- its request models (``schemas.spec_model``/``request_model``: ``<Title>Spec`` and
  ``<Title>Request``), and, for a ``step`` operation, ``<Title>Step`` in ``/pipeline``'s
  ``steps`` union (discriminated by ``op``);
- its routes ``POST /<name>``, ``/<name>/array`` and ``/<name>/upload`` with their
  operationIds, summaries and examples (``service.api.operations``);
- ``GET /operations`` (what the playground and the client read), the CLI subcommand and its
  options (``service.cli``, from the parameter model's fields).

Adding an operation is a core function, a parameter model (``schemas``), a ``run`` function
(the glue from a decoded image and the validated parameters to the core) and one entry in
``OPERATIONS``; ``/pipeline`` is itself an entry, whose ``run`` dispatches each step back
through this registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar, cast

from pydantic import BaseModel

from . import processing
from .config import Settings
from .core.errors import CoreError
from .core.gradient import gradient_magnitude, gradient_magnitude_stripes
from .errors import InvalidSpecError
from .imaging import Decoded
from .schemas import (
    ConvolveParams,
    GradientParams,
    OutputSpec,
    PoolParams,
    StrictModel,
    pipeline_params,
    request_model,
    spec_model,
    step_model,
)

P = TypeVar("P", bound=BaseModel)
Example = dict[str, Any]
"""An OpenAPI example: ``{"summary": ..., "value": <the JSON request>}``."""


@dataclass(frozen=True)
class Operation(Generic[P]):
    """One operation: its name (the path and the pipeline ``op``), model, runner and docs.

    ``run(image, params, settings)`` applies the operation to a decoded image; ``params`` is
    an instance of ``params`` (a spec, request or step model derived from it). ``examples``
    document ``POST /<name>`` (PNG answers: ascent) and ``array_examples`` ``/<name>/array``
    (JSON answers: small ``pixels`` images); ``request_example`` and ``spec_example`` are the
    request models' own examples. ``step``: also a ``/pipeline`` step. ``cli_example``: the
    arguments after ``imgfilter <name>`` in the CLI's help.
    """

    name: str
    params: type[P]
    run: Callable[[Decoded, P, Settings], Decoded]
    summary: str
    description: str
    help: str
    examples: Mapping[str, Example]
    array_examples: Mapping[str, Example]
    request_example: Example
    cli_example: str
    spec_example: Example | None = None
    step: bool = True
    spec: type[OutputSpec] = field(init=False)
    request: type[OutputSpec] = field(init=False)

    def __post_init__(self) -> None:
        title = self.title
        spec = spec_model(
            title,
            cast("type[StrictModel]", self.params),
            f"``POST /{self.name}`` options (the multipart `spec` part). {self.params.__doc__}",
            self.spec_example,
        )
        request = request_model(
            title,
            spec,
            f"``POST /{self.name}`` as JSON: the spec plus the image.",
            self.request_example,
        )
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "request", request)

    @cached_property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema of ``spec`` (what ``GET /operations`` and the CLI's options read)."""
        return self.spec.model_json_schema()

    @property
    def title(self) -> str:
        """The models' name prefix: ``gradient`` -> ``Gradient`` (``GradientSpec``, ...)."""
        return self.name.title().replace("-", "").replace("_", "")

    @property
    def path(self) -> str:
        return f"/{self.name}"


def run_steps(image: Decoded, params: Any, settings: Settings) -> Decoded:
    """Run ``params.steps`` in order, each on the previous step's output.

    A step's error is located at its index: ``("steps", i, field)`` in the spec.
    """
    for index, step in enumerate(params.steps):
        operation = STEPS[step.op]
        try:
            image = operation.run(image, step, settings)
        except InvalidSpecError as exc:
            raise InvalidSpecError(("steps", index, *exc.path), exc.message) from exc
        except CoreError as exc:
            raise InvalidSpecError(("steps", index, exc.param), exc.message) from exc
    return image


# --- the operations ------------------------------------------------------------------------

_SMALL = [[0, 0, 0, 0, 0], [0, 50, 100, 150, 0], [0, 100, 200, 250, 0], [0, 0, 0, 0, 0]]
_SMALL_SQUARE = [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90, 100, 110], [120, 130, 140, 150]]

CONVOLVE: Operation[ConvolveParams] = Operation(
    name="convolve",
    params=ConvolveParams,
    run=processing.convolve,
    summary="Convolve an image with a kernel",
    description="Apply a kernel (a matrix or a preset) times a weight to an image.\n\n"
    "Standard mode is the cross-correlation `out[r, c] = weight * sum k[m, n] * "
    "img[r + m - rows//2, c + n - cols//2]` with a border mode (`flip` for true "
    "convolution); codelab mode is the lesson's loop bit for bit.",
    help="Kernels over images (standard or the lesson's loop).",
    cli_example="ascent --preset sobel-x -o edges.png",
    spec_example={"preset": "sobel-x"},
    request_example={
        "image": "ascent",
        "kernel": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        "weight": 1.0,
    },
    examples={
        "sobel-y": {
            "summary": "Ascent, the lesson's default [-1,-2,-1; 0,0,0; 1,2,1] (horizontal lines)",
            "value": {
                "image": "ascent",
                "kernel": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
                "weight": 1,
            },
        },
        "sobel-x": {
            "summary": "Ascent, the lesson's [-1,0,1; -2,0,2; -1,0,1] (vertical lines)",
            "value": {
                "image": "ascent",
                "kernel": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
                "weight": 1,
            },
        },
        "laplacian": {
            "summary": "Ascent, the lesson's edge filter [0,1,0; 1,-4,1; 0,1,0]",
            "value": {"image": "ascent", "kernel": [[0, 1, 0], [1, -4, 1], [0, 1, 0]], "weight": 1},
        },
        "codelab": {
            "summary": "The lesson's loop bit for bit (codelab mode), weight 0.1 blur",
            "value": {
                "image": "ascent",
                "kernel": [[1, 1, 1], [1, 2, 1], [1, 1, 1]],
                "weight": 0.1,
                "mode": "codelab",
            },
        },
    },
    array_examples={
        "preset": {
            "summary": "sobel-x on a small `pixels` image",
            "value": {"image": {"pixels": _SMALL}, "preset": "sobel-x"},
        },
        "raw": {
            "summary": "The lesson's Laplacian kept as float32 (`scale: raw`)",
            "value": {
                "image": {"pixels": _SMALL},
                "kernel": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
                "scale": "raw",
            },
        },
        "codelab": {
            "summary": "The lesson's loop (codelab mode) on a small image",
            "value": {
                "image": {"pixels": _SMALL},
                "kernel": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
                "mode": "codelab",
            },
        },
    },
)

POOL: Operation[PoolParams] = Operation(
    name="pool",
    params=PoolParams,
    run=processing.pool_image,
    summary="Pool an image (max, avg or min)",
    description="Reduce each `size` window, every `stride` pixels, to its max, mean or "
    "min.\n\n`edge: drop` keeps only the windows that fit; `partial` also reduces the "
    "windows that run off the bottom/right edge over the pixels they cover.",
    help="Max, average and min pooling.",
    cli_example="edges.png --size 2 -o small.png",
    request_example={"image": "ascent", "method": "max", "size": 2},
    examples={
        "max-2x2": {
            "summary": "The lesson's 2x2 max pooling of ascent (512x512 -> 256x256)",
            "value": {"image": "ascent", "method": "max", "size": 2},
        },
    },
    array_examples={
        "avg-3x3-partial": {
            "summary": "3x3 average every 2 pixels, partial windows kept, as JSON",
            "value": {
                "image": {"pixels": [[0, 10, 20, 30], [40, 50, 60, 70], [80, 90, 100, 110]]},
                "method": "avg",
                "size": 3,
                "stride": 2,
                "edge": "partial",
            },
        },
    },
)


def _gradient(image: Decoded, params: GradientParams, settings: Settings) -> Decoded:
    image = processing.prepare(image, params.color)
    (kernel_x, weight_x), (kernel_y, weight_y) = params.kernel_pair()
    options: dict[str, Any] = {
        "weight_x": weight_x,
        "weight_y": weight_y,
        "border": params.border,
        "cval": params.cval,
        "flip": params.flip,
        "alpha": image.alpha,
        "max_kernel_side": settings.max_kernel_side,
    }
    with processing.stage("gradient"):
        if processing.striped(image, params.scale):
            shrink = len(kernel_x) - 1 if params.border == "valid" else 0

            def stripes(stripe_rows: int, threads: int) -> Iterator[tuple[int, Any]]:
                # two responses per stripe: half the rows keeps the float32 budget
                return gradient_magnitude_stripes(
                    image.pixels, kernel_x, kernel_y,
                    stripe_rows=max(8, stripe_rows // 2), threads=threads, **options,
                )  # fmt: skip

            return processing.run_striped(
                image, stripes, image.height - shrink, params.scale, settings
            )
        values = gradient_magnitude(image.pixels, kernel_x, kernel_y, **options)
        return processing.finish(values, image, params.scale)


GRADIENT: Operation[GradientParams] = Operation(
    name="gradient",
    params=GradientParams,
    run=_gradient,
    summary="Gradient magnitude of two kernels (edge strength)",
    description="The edge map: `out = sqrt(gx^2 + gy^2)`, where `gx` and `gy` are two "
    "kernels' responses (default the Sobel pair, `sobel-x` and `sobel-y`), each computed as "
    "`POST /convolve` computes it (borders, `cval`, `flip`, weights), then mapped to 8-bit "
    "by `scale`.",
    help="Edge strength: the magnitude of two kernels' responses.",
    cli_example="ascent -o edges.png (the Sobel pair; --kernels prewitt-x,prewitt-y)",
    request_example={"image": "ascent", "kernels": ["sobel-x", "sobel-y"], "weight": 0.125},
    examples={
        "sobel": {
            "summary": "Ascent's Sobel edge magnitude over 8 (the strongest edges fit 0..255)",
            "value": {"image": "ascent", "weight": 0.125},
        },
        "prewitt": {
            "summary": "The Prewitt pair, as matrices, over 8",
            "value": {
                "image": "ascent",
                "kernels": [
                    [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
                    [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
                ],
                "weight": 0.125,
            },
        },
    },
    array_examples={
        "sobel-raw": {
            "summary": "The Sobel magnitude of a small image, as float32 (`scale: raw`)",
            "value": {"image": {"pixels": _SMALL}, "scale": "raw"},
        },
    },
)

STEP_OPERATIONS: tuple[Operation[Any], ...] = (CONVOLVE, POOL, GRADIENT)
"""The operations a pipeline step can be, in the order the documents list them."""

STEPS: Mapping[str, Operation[Any]] = {operation.name: operation for operation in STEP_OPERATIONS}

STEP_MODELS: Mapping[str, type[StrictModel]] = {
    operation.name: step_model(
        operation.title,
        operation.name,
        cast("type[StrictModel]", operation.params),
        f"A pipeline step that runs `{operation.name}`: {operation.summary[0].lower()}"
        f"{operation.summary[1:]}.",
    )
    for operation in STEP_OPERATIONS
}

PipelineParams = pipeline_params(STEP_MODELS)

PIPELINE: Operation[Any] = Operation(
    name="pipeline",
    params=PipelineParams,
    run=run_steps,
    summary="Run operation steps in order",
    description="Run the steps in order, each on the previous one's 8-bit output "
    "(float32 after `raw`).",
    help="Steps of operations, in one call.",
    cli_example="""ascent --steps '[{"op": "convolve", "preset": "sobel-x"}, """
    """{"op": "pool", "size": 2}]' -o out.png""",
    step=False,
    request_example={
        "image": "ascent",
        "steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}],
        "format": "png",
    },
    examples={
        "lesson": {
            "summary": "The lesson: sobel-x on ascent, then 2x2 max pooling (256x256 out)",
            "value": {
                "image": "ascent",
                "steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}],
            },
        },
        "codelab": {
            "summary": "The lesson's loop (codelab mode, its default filter) then 2x2 max",
            "value": {
                "image": "ascent",
                "steps": [
                    {
                        "op": "convolve",
                        "kernel": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
                        "mode": "codelab",
                    },
                    {"op": "pool", "size": 2},
                ],
            },
        },
        "laplacian-raw": {
            "summary": "Laplacian kept as float32 (raw) into a 2x2 max, mapped to 0..255",
            "value": {
                "image": "ascent",
                "steps": [
                    {"op": "convolve", "preset": "laplacian", "scale": "raw"},
                    {"op": "pool", "size": 2, "scale": "normalize"},
                ],
            },
        },
    },
    array_examples={
        "lesson": {
            "summary": "sobel-x then 2x2 max on a small `pixels` image",
            "value": {
                "image": {"pixels": _SMALL_SQUARE},
                "steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}],
            },
        },
        "raw": {
            "summary": "Laplacian as float32 (raw) into a 2x2 max, kept raw",
            "value": {
                "image": {"pixels": _SMALL_SQUARE},
                "steps": [
                    {"op": "convolve", "preset": "laplacian", "scale": "raw"},
                    {"op": "pool", "size": 2, "scale": "raw"},
                ],
            },
        },
    },
)

OPERATIONS: Mapping[str, Operation[Any]] = {
    operation.name: operation for operation in (*STEP_OPERATIONS, PIPELINE)
}
"""Every operation by name, in the order routes, documents, the CLI and the playground list them."""


def spec_models() -> Sequence[type[BaseModel]]:
    """Every request model the OpenAPI document publishes (requests, specs, steps)."""
    models: list[type[BaseModel]] = []
    for operation in OPERATIONS.values():
        models += [operation.request, operation.spec]
    return [*models, *STEP_MODELS.values()]
