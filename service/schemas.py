"""The API contract: Pydantic models of every request spec and response body.

Each processing endpoint takes one *spec* in two encodings of the same request body:
``application/json`` (``XRequest``: the spec plus ``image``) and ``multipart/form-data`` (an
``image`` file part plus a ``spec`` text part holding ``XSpec`` as JSON, i.e. without
``image``). Every model forbids unknown fields (typos are errors, not silently ignored) and
rejects NaN/Infinity. Limits that come from settings (kernel side, pool window, pipeline steps)
are read from the validation context built by ``validation_context``; without a context the
defaults of ``Settings`` apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self, Union, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

from .config import Settings
from .core.kernels import PRESETS
from .core.types import Border as Border  # the core owns the literals; re-exported here
from .core.types import Edge as Edge
from .core.types import Mode as Mode
from .core.types import PoolMethod as PoolMethod
from .core.types import Scale as Scale

Color = Literal["auto", "gray"]
OutputFormat = Literal["png", "json", "npy"]

ENUMS: dict[str, tuple[Any, str]] = {
    "Border": (Border, "How pixels outside the image are read (convolution)."),
    "Scale": (Scale, "How values are mapped to 8-bit (or kept as float32: `raw`)."),
    "Color": (Color, "`auto`: keep the decoded mode; `gray`: 8-bit luma first."),
    "Mode": (Mode, "`standard` convolution or the lesson's loop (`codelab`)."),
    "PoolMethod": (PoolMethod, "How each pooling window is reduced."),
    "Edge": (Edge, "Pooling windows that run off the bottom/right edge."),
    "OutputFormat": (OutputFormat, "The answer's encoding when `Accept` leaves it open."),
}
"""The enums published as ``#/components/schemas/<name>`` (``service.main`` swaps them in)."""

MEDIA_TYPES: dict[OutputFormat, str] = {
    "png": "image/png",
    "json": "application/json",
    "npy": "application/x-npy",
}
"""The media type of each ``format``."""

VALUE_BOUND = 1e6
"""Largest magnitude of a kernel element, weight or cval: keeps float32 sums far from overflow."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The settings-dependent bounds validators read from the validation context."""

    max_kernel_side: int = 63
    max_pool_size: int = 64
    max_pipeline_steps: int = 16

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.max_kernel_side, settings.max_pool_size, settings.max_pipeline_steps)


def validation_context(settings: Settings) -> dict[str, Any]:
    """The context to pass to ``model_validate*`` so validators enforce ``settings``' limits."""
    return {"limits": Limits.from_settings(settings)}


def _limits(info: ValidationInfo) -> Limits:
    context = info.context if isinstance(info.context, dict) else {}
    limits = context.get("limits")
    return limits if isinstance(limits, Limits) else Limits()


class StrictModel(BaseModel):
    """Base of every request model: unknown fields and NaN/Infinity are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _refuse_non_numbers(value: Any) -> Any:
    """Before-validator: a number must be a JSON number, not a boolean or a numeric string."""
    if isinstance(value, bool | str):
        kind = "a boolean" if isinstance(value, bool) else "a string"
        raise PydanticCustomError("number_type", f"Input should be a number, not {kind}")
    return value


Number = Annotated[
    float,
    Field(ge=-VALUE_BOUND, le=VALUE_BOUND, allow_inf_nan=False),
    BeforeValidator(_refuse_non_numbers),
]


def _refuse_non_integers(value: Any) -> Any:
    """Before-validator of a window: an int or [rows, cols], neither booleans nor strings."""
    for side in value if isinstance(value, list) else (value,):
        if isinstance(side, bool | str):
            kind = "a boolean" if isinstance(side, bool) else "a string"
            raise PydanticCustomError(
                "window_type", f"Input should be an integer or a list of 2 integers, not {kind}"
            )
    return value


Side = Annotated[int, Field(ge=1)]
Window = Annotated[
    Side | tuple[Side, Side],
    BeforeValidator(_refuse_non_integers),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1},
                    "minItems": 2,
                    "maxItems": 2,
                },
            ]
        }
    ),
]

# --- images ------------------------------------------------------------------------------


class EncodedImage(StrictModel):
    """An image file (PNG, JPEG, WebP, BMP, TIFF or GIF) as base64 text."""

    data: str = Field(
        min_length=1,
        description="Base64 (standard alphabet, padded) of the image file's bytes.",
        examples=[
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
        ],
    )


def _pixels_schema(minimum: float | None, maximum: float | None, description: str) -> Any:
    bounds = {
        key: value
        for key, value in (("minimum", minimum), ("maximum", maximum))
        if value is not None
    }
    value = {"type": "number", **bounds}
    return {
        "type": "array",
        "minItems": 1,
        "description": description,
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "anyOf": [
                    value,
                    {"type": "array", "minItems": 1, "maxItems": 4, "items": value},
                ]
            },
        },
    }


def _refuse_booleans(rows: Any) -> Any:
    """Before-validator of ``pixels``: NumPy would read ``true`` as 1; JSON booleans are refused."""
    if isinstance(rows, list):
        for row in rows:
            for value in row if isinstance(row, list) else ():
                if (
                    value is True
                    or value is False
                    or (isinstance(value, list) and any(v is True or v is False for v in value))
                ):
                    raise PydanticCustomError(
                        "number_type", "`pixels` must hold only numbers, not booleans"
                    )
    return rows


PixelsArray = Annotated[
    list[Any],
    BeforeValidator(_refuse_booleans),
    WithJsonSchema(
        _pixels_schema(
            0, 255, "[H][W] or [H][W][C] numbers in 0..255; C in 1..4 (2, 4: alpha last)."
        )
    ),
]


class PixelImage(StrictModel):
    """An image given as a JSON array of 8-bit values."""

    pixels: PixelsArray = Field(examples=[[[0, 64], [128, 255]]])


ImageRef = Annotated[
    EncodedImage | PixelImage | Literal["ascent"],
    Field(
        description='"ascent" (the built-in 512x512 grayscale picture), {"data": base64} or '
        '{"pixels": [[...]]}.',
        examples=["ascent"],
    ),
]

# --- convolution -------------------------------------------------------------------------


def check_matrix(kernel: list[list[float]], limit: int, name: str = "kernel") -> list[list[float]]:
    """A kernel matrix's shape rules: not empty, rectangular, at most ``limit`` a side."""
    if not kernel or not kernel[0]:
        raise ValueError(f"{name} must not be empty")
    if any(len(row) != len(kernel[0]) for row in kernel):
        raise ValueError(f"{name} rows must all have the same length (a rectangular matrix)")
    rows, cols = len(kernel), len(kernel[0])
    if rows > limit or cols > limit:
        raise ValueError(f"{name} is {rows}x{cols}; each side must be at most {limit}")
    return kernel


def check_preset(preset: str) -> str:
    """A preset name that exists."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return preset


MATRIX_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "number", "minimum": -VALUE_BOUND, "maximum": VALUE_BOUND},
    },
}
KernelMatrix = Annotated[list[list[Number]], WithJsonSchema(MATRIX_SCHEMA)]
"""A kernel as a JSON matrix of finite numbers (its shape is checked by `check_matrix`)."""


class ConvolveParams(StrictModel):
    """What a convolution does: one of ``kernel``/``preset``, and how to apply it."""

    kernel: Annotated[list[list[Number]] | None, WithJsonSchema(MATRIX_SCHEMA)] = Field(
        None,
        description="Rectangular matrix of finite numbers (rows of equal length, 1..63 a side). "
        "Exactly one of `kernel` and `preset`.",
        examples=[[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]],
    )
    preset: Annotated[str | None, WithJsonSchema({"type": "string", "minLength": 1})] = Field(
        None,
        description="Name of a preset kernel (see GET /kernels). It brings its own weight, which "
        "an explicit `weight` replaces. Exactly one of `kernel` and `preset`.",
        examples=["sobel-x"],
    )
    weight: Number | None = Field(
        None,
        description="Multiplies the finished sum (not each kernel element). Default: the "
        "preset's weight, or 1.",
        examples=[1.0],
    )
    normalize: bool = Field(
        False, description="Divide the kernel by its sum first (when the sum is not 0)."
    )
    mode: Mode = Field(
        "standard",
        description="`standard`: cross-correlation with a border mode. `codelab`: bit for bit "
        "the lesson's loop (odd square kernel, applied transposed, margin kept, border `keep`).",
    )
    border: Border = Field(
        "reflect",
        description="How pixels outside the image are read (scipy.ndimage's modes), or `keep` "
        "(border pixels keep their input value) or `valid` (output shrinks). Codelab mode "
        "allows only `keep`, which is its default.",
    )
    cval: Number = Field(0.0, description="The outside value for `border: constant`.")
    flip: bool = Field(
        False, description="Flip the kernel: true convolution (scipy.ndimage.convolve)."
    )
    color: Color = Field(
        "auto",
        description="`auto`: keep grayscale/RGB as decoded, alpha untouched. `gray`: convert to "
        "8-bit luma first.",
    )
    scale: Scale = Field(
        "clamp",
        description="To 8-bit: `clamp` (clip 0..255, truncate), `abs` (|v| then clamp), "
        "`normalize` (min..max to 0..255), `raw` (float32: JSON or .npy output, or between steps).",
    )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The schema says what ``_check_combination`` enforces: exactly one of kernel/preset."""
        schema = handler.resolve_ref_schema(handler(core_schema))
        # if/then/else rather than oneOf: generators read a oneOf of bare `required` lists as a
        # union and lose the model (openapi-python-client types the body `Any`); they ignore
        # if/then/else, which validators (and schemathesis) apply.
        schema["if"] = {"required": ["kernel"]}
        schema["then"] = {"not": {"required": ["preset"]}}
        schema["else"] = {"required": ["preset"]}
        return schema

    @field_validator("kernel", "preset", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            raise ValueError(f"`{info.field_name}` is null; leave it out instead")
        return value

    @field_validator("kernel")
    @classmethod
    def _check_kernel(cls, kernel: list[list[float]] | None, info: ValidationInfo) -> Any:
        return kernel if kernel is None else check_matrix(kernel, _limits(info).max_kernel_side)

    @field_validator("preset")
    @classmethod
    def _check_preset(cls, preset: str | None) -> str | None:
        return preset if preset is None else check_preset(preset)

    @model_validator(mode="after")
    def _check_combination(self) -> Self:
        if (self.kernel is None) == (self.preset is None):
            raise ValueError("give exactly one of `kernel` and `preset`")
        if self.mode == "codelab":
            if "border" in self.model_fields_set and self.border != "keep":
                raise ValueError(
                    f"codelab mode reproduces the lesson's loop, whose border is `keep`; "
                    f"border {self.border!r} is not allowed (omit it or use 'keep')"
                )
            if self.flip:
                raise ValueError("codelab mode does not flip the kernel; `flip` must be false")
            rows, cols = self.kernel_shape
            if rows != cols or rows % 2 == 0:
                raise ValueError(
                    f"codelab mode needs an odd square kernel (3x3, 5x5, ...), got {rows}x{cols}"
                )
        return self

    @property
    def kernel_matrix(self) -> list[list[float]]:
        """The kernel to apply: the explicit one or the preset's."""
        if self.kernel is not None:
            return self.kernel
        return [list(row) for row in PRESETS[str(self.preset)].kernel]

    @property
    def kernel_shape(self) -> tuple[int, int]:
        matrix = self.kernel_matrix
        return len(matrix), len(matrix[0])

    @property
    def effective_weight(self) -> float:
        """The explicit weight, else the preset's, else 1."""
        if self.weight is not None:
            return self.weight
        return PRESETS[self.preset].weight if self.preset is not None else 1.0

    @property
    def effective_border(self) -> Border:
        """``keep`` in codelab mode (its only border), else ``border``."""
        return "keep" if self.mode == "codelab" else self.border


# --- gradient magnitude ------------------------------------------------------------------

KernelChoice = str | list[list[Number]]
"""A preset's name or a kernel matrix."""


class GradientParams(StrictModel):
    """What a gradient magnitude does: two kernels, each applied as in convolve, combined.

    ``out = sqrt(gx**2 + gy**2)`` where ``gx`` and ``gy`` are the two kernels' responses, each
    times its weight (a preset's own, or 1 for a matrix; an explicit ``weight`` replaces both).
    """

    kernels: Annotated[
        tuple[KernelChoice, KernelChoice],
        WithJsonSchema(
            {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "items": {"anyOf": [{"type": "string", "minLength": 1}, MATRIX_SCHEMA]},
            }
        ),
    ] = Field(
        ("sobel-x", "sobel-y"),
        description="The two kernels, each a preset name (see GET /kernels) or a matrix "
        "(rows of equal length, 1..63 a side). Default: the Sobel pair, `sobel-x` and "
        "`sobel-y`.",
        examples=[["prewitt-x", "prewitt-y"]],
    )
    weight: Number | None = Field(
        None,
        description="Multiplies both responses (replacing the presets' weights), so the "
        "magnitude scales by its absolute value. Default: each preset's weight, or 1.",
        examples=[1.0],
    )
    border: Border = Field(
        "reflect",
        description="How pixels outside the image are read, as in convolve; `valid` needs two "
        "kernels of the same shape; `keep` is refused (border pixels would not be gradients).",
    )
    cval: Number = Field(0.0, description="The outside value for `border: constant`.")
    flip: bool = Field(False, description="Flip both kernels: true convolution.")
    color: Color = Field(
        "auto", description="`auto`: each channel on its own, alpha untouched. `gray`: luma first."
    )
    scale: Scale = Field(
        "clamp",
        description="To 8-bit as in convolve (the magnitude is never negative, so `abs` is "
        "`clamp`), or `raw` (float32).",
    )

    @field_validator("kernels")
    @classmethod
    def _check_kernels(cls, kernels: tuple[Any, Any], info: ValidationInfo) -> Any:
        limit = _limits(info).max_kernel_side
        for index, kernel in enumerate(kernels):
            if isinstance(kernel, str):
                check_preset(kernel)
            else:
                check_matrix(kernel, limit, f"kernel {index + 1}")
        return kernels

    def kernel_pair(self) -> list[tuple[list[list[float]], float]]:
        """Each kernel's matrix and weight (``weight``, else the preset's, else 1)."""
        pair: list[tuple[list[list[float]], float]] = []
        for kernel in self.kernels:
            if isinstance(kernel, str):
                preset = PRESETS[kernel]
                matrix = [[float(v) for v in row] for row in preset.kernel]
                pair.append((matrix, preset.weight if self.weight is None else self.weight))
            else:
                pair.append((kernel, 1.0 if self.weight is None else self.weight))
        return pair


# --- pooling -----------------------------------------------------------------------------


class PoolParams(StrictModel):
    """What a pooling does: method, window, stride and the ragged-edge rule."""

    method: PoolMethod = Field("max", description="Reduce each window by max, avg or min.")
    size: Window = Field(2, description="Window side, or [rows, cols]; 1..64.", examples=[2])
    stride: Window | None = Field(
        None, description="Step between windows, or [rows, cols]; default = size.", examples=[None]
    )
    edge: Edge = Field(
        "drop",
        description="`drop`: only windows that fit (PyTorch ceil_mode=False). `partial`: "
        "windows that run off the bottom/right are reduced over the pixels they cover.",
    )
    color: Color = Field("auto", description="`gray`: convert to 8-bit luma first.")
    scale: Scale = Field(
        "clamp", description="To 8-bit as in convolution (avg 2.5 truncates to 2), or `raw`."
    )

    @field_validator("size")
    @classmethod
    def _check_size(cls, size: int | tuple[int, int], info: ValidationInfo) -> Any:
        limit = _limits(info).max_pool_size
        sides = (size, size) if isinstance(size, int) else size
        if max(sides) > limit:
            raise ValueError(f"pool size {list(sides)} exceeds the limit of {limit} a side")
        return size


# --- endpoint specs ----------------------------------------------------------------------
# The models of each operation's request are derived from its parameter model by the
# operation registry (``service.ops``) with the builders below: ``XSpec`` (the parameters and
# ``format``: the multipart ``spec`` part), ``XRequest`` (the spec plus ``image``: the JSON
# body) and, for operations that can be pipeline steps, ``XStep`` (the parameters plus ``op``).

_FORMAT_DESCRIPTION = (
    "The answer's encoding when the request's `Accept` leaves the choice open (absent or "
    "`*/*`): `png` (image/png), `json` (application/json: the array and its statistics) or "
    "`npy` (application/x-npy: a NumPy .npy file). An `Accept` that names an offered type wins; "
    "the `/array` operations always answer JSON. Default: `png`."
)


class OutputSpec(StrictModel):
    """The output choice every endpoint spec shares."""

    format: OutputFormat = Field("png", description=_FORMAT_DESCRIPTION)

    def output_scale(self) -> tuple[Scale, tuple[str | int, ...]]:
        """The scale of the result and its path in the spec (``raw`` cannot be a PNG).

        An operation's ``scale`` field when it has one; ``PipelineParams`` answers its last
        step's.
        """
        scale: Scale | None = getattr(self, "scale", None)
        return (scale, ("scale",)) if scale is not None else ("clamp", ())


def _examples(example: dict[str, Any] | None) -> ConfigDict:
    # A whole example: Swagger UI would otherwise combine the fields' examples (kernel and
    # preset together, a 422).
    return ConfigDict(json_schema_extra={"examples": [example]} if example else None)


def spec_model(
    title: str, params: type[StrictModel], doc: str, example: dict[str, Any] | None = None
) -> type[OutputSpec]:
    """``<title>Spec``: ``params``' fields and ``format``."""
    namespace = {"__doc__": doc, "__module__": __name__, "model_config": _examples(example)}
    return cast("type[OutputSpec]", type(f"{title}Spec", (params, OutputSpec), namespace))


def request_model(
    title: str, spec: type[OutputSpec], doc: str, example: dict[str, Any]
) -> type[OutputSpec]:
    """``<title>Request``: the spec plus ``image`` (default ascent)."""
    namespace = {
        "__doc__": doc,
        "__module__": __name__,
        "__annotations__": {"image": ImageRef},
        "image": "ascent",
        "model_config": _examples(example),
    }
    return cast("type[OutputSpec]", type(f"{title}Request", (spec,), namespace))


def step_model(title: str, name: str, params: type[StrictModel], doc: str) -> type[StrictModel]:
    """``<title>Step``: ``params``' fields plus ``op: "<name>"`` (the pipeline's discriminator)."""
    namespace = {"__doc__": doc, "__module__": __name__, "__annotations__": {"op": Literal[name]}}
    return cast("type[StrictModel]", type(f"{title}Step", (params,), namespace))


def pipeline_params(steps: Mapping[str, type[StrictModel]]) -> type[StrictModel]:
    """``PipelineParams``: ``steps``, a list of the step models (by name) told apart by ``op``."""
    step: Any = Annotated[Union[tuple(steps.values())], Field(discriminator="op")]  # noqa: UP007

    def check_step_count(cls: type[StrictModel], value: Any, info: ValidationInfo) -> Any:
        limit = _limits(info).max_pipeline_steps
        if isinstance(value, list) and len(value) > limit:
            raise ValueError(f"a pipeline has at most {limit} steps, got {len(value)}")
        return value

    def output_scale(self: Any) -> tuple[Scale, tuple[str | int, ...]]:
        return self.steps[-1].scale, ("steps", len(self.steps) - 1, "scale")

    ops = ", ".join(f"`{name}`" for name in steps)
    namespace = {
        "__doc__": (
            "What a pipeline does: steps run in order, each on the previous one's output.\n\n"
            "Between steps the 8-bit result flows on, as in the lesson, unless a step says "
            '``"scale": "raw"``, in which case its float32 values flow on.'
        ),
        "__module__": __name__,
        "__annotations__": {"steps": list[step]},
        "steps": Field(
            min_length=1,
            description=f"Steps ({ops}), in order (at most 16 by default).",
            examples=[[{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]],
        ),
        "_check_step_count": field_validator("steps", mode="before")(classmethod(check_step_count)),
        "output_scale": output_scale,
    }
    return cast("type[StrictModel]", type("PipelineParams", (StrictModel,), namespace))


# --- responses ---------------------------------------------------------------------------


class ArrayResult(BaseModel):
    """A result as JSON: ``pixels`` is ``[H][W]`` for one channel, ``[H][W][C]`` otherwise."""

    width: int = Field(description="Columns (W).")
    height: int = Field(description="Rows (H).")
    channels: int = Field(description="C: 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).")
    dtype: Literal["uint8", "float32"] = Field(
        description="`uint8`, or `float32` after `scale: raw`."
    )
    min: float = Field(description="The smallest value (an integer when dtype is uint8).")
    max: float = Field(description="The largest value (an integer when dtype is uint8).")
    pixels: Annotated[
        list[Any],
        WithJsonSchema(
            _pixels_schema(
                None,
                None,
                "[H][W] for one channel, [H][W][C] otherwise: integers "
                "0..255 (uint8) or any finite float32.",
            )
        ),
    ]


class KernelInfo(BaseModel):
    """A preset kernel."""

    name: str
    kernel: list[list[float]]
    weight: float
    description: str


class OperationInfo(BaseModel):
    """An operation the service offers (an entry of its registry)."""

    name: str = Field(description="The operation's name: its path `/<name>` and pipeline `op`.")
    path: str = Field(description="`POST` here (also `<path>/array` and `<path>/upload`).")
    summary: str = Field(description="What it does, in one line.")
    description: str = Field(description="What it does, with its formula (Markdown).")
    step: bool = Field(description="Whether it can be a `/pipeline` step.")
    spec: dict[str, Any] = Field(
        description="The JSON Schema of its spec (the multipart `spec` part; the JSON body "
        "is this plus `image`)."
    )


class Health(BaseModel):
    """Liveness/readiness answer."""

    status: Literal["ok", "ready", "not ready"]


class ErrorMessage(BaseModel):
    """An error with a sentence that says what was wrong."""

    detail: str


class ValidationIssue(BaseModel):
    """One problem found in a spec: where (``loc``) and what (``msg``)."""

    type: str = Field(description="A machine-readable kind, e.g. `missing`, `value_error`.")
    loc: list[str | int] = Field(
        description='Where: `["body", field, ...]` (JSON body), `["body", "spec", field, ...]` '
        '(multipart `spec` part) or `["path", name]`.'
    )
    msg: str = Field(description="What was wrong, for a person.")


class ValidationErrorMessage(BaseModel):
    """A 422 answer, shaped like FastAPI's; every 422 of the service has this shape."""

    detail: list[ValidationIssue]
