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

from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .config import Settings
from .core.kernels import PRESETS

Border = Literal["reflect", "mirror", "nearest", "wrap", "constant", "keep", "valid"]
Scale = Literal["clamp", "abs", "normalize", "raw"]
Color = Literal["auto", "gray"]
Mode = Literal["standard", "codelab"]
PoolMethod = Literal["max", "avg", "min"]
Edge = Literal["drop", "partial"]
OutputFormat = Literal["png", "json"]

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


Number = Annotated[float, Field(ge=-VALUE_BOUND, le=VALUE_BOUND, allow_inf_nan=False)]
Side = Annotated[int, Field(ge=1)]
Window = Side | tuple[Side, Side]

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


PixelsArray = Annotated[
    list[Any],
    WithJsonSchema(
        {
            "type": "array",
            "minItems": 1,
            "description": "[H][W] or [H][W][C] numbers in 0..255; C in 1..4 (2, 4: alpha last).",
            "items": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "anyOf": [
                        {"type": "number", "minimum": 0, "maximum": 255},
                        {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 4,
                            "items": {"type": "number", "minimum": 0, "maximum": 255},
                        },
                    ]
                },
            },
        }
    ),
]


class PixelImage(StrictModel):
    """An image given as a JSON array of 8-bit values."""

    pixels: PixelsArray = Field(examples=[[[0, 64], [128, 255]]])


ImageRef = Annotated[
    Literal["ascent"] | EncodedImage | PixelImage,
    Field(
        description='"ascent" (the built-in 512x512 grayscale picture), {"data": base64} or '
        '{"pixels": [[...]]}.',
        examples=["ascent"],
    ),
]

# --- convolution -------------------------------------------------------------------------


class ConvolveParams(StrictModel):
    """What a convolution does: one of ``kernel``/``preset``, and how to apply it."""

    kernel: list[list[Number]] | None = Field(
        None,
        description="Rectangular matrix of finite numbers (rows of equal length, 1..63 a side). "
        "Exactly one of `kernel` and `preset`.",
        examples=[[[-1, -2, -1], [0, 0, 0], [1, 2, 1]]],
    )
    preset: str | None = Field(
        None,
        description="Name of a preset kernel (see GET /kernels). It brings its own weight, which "
        "an explicit `weight` replaces.",
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
        "`normalize` (min..max to 0..255), `raw` (float32, JSON output or between steps only).",
    )

    @field_validator("kernel")
    @classmethod
    def _check_kernel(cls, kernel: list[list[float]] | None, info: ValidationInfo) -> Any:
        if kernel is None:
            return kernel
        limit = _limits(info).max_kernel_side
        if not kernel or not kernel[0]:
            raise ValueError("kernel must not be empty")
        if any(len(row) != len(kernel[0]) for row in kernel):
            raise ValueError("kernel rows must all have the same length (a rectangular matrix)")
        rows, cols = len(kernel), len(kernel[0])
        if rows > limit or cols > limit:
            raise ValueError(f"kernel is {rows}x{cols}; each side must be at most {limit}")
        return kernel

    @field_validator("preset")
    @classmethod
    def _check_preset(cls, preset: str | None) -> str | None:
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
        return preset

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

_FORMAT_DESCRIPTION = "`png` (image/png) or `json` (the array and its statistics)."


class OutputSpec(StrictModel):
    """The output choice every endpoint spec shares."""

    format: OutputFormat = Field("png", description=_FORMAT_DESCRIPTION)


def _check_raw_output(scale: Scale, fmt: OutputFormat) -> None:
    if scale == "raw" and fmt != "json":
        raise ValueError("`scale: raw` gives float32 values, which only `format: json` can carry")


class ConvolveSpec(ConvolveParams, OutputSpec):
    """``POST /convolve`` options (the multipart `spec` part)."""

    @model_validator(mode="after")
    def _check_output(self) -> Self:
        _check_raw_output(self.scale, self.format)
        return self


class ConvolveRequest(ConvolveSpec):
    """``POST /convolve`` as JSON: the spec plus the image."""

    image: ImageRef = "ascent"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"image": "ascent", "kernel": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "weight": 1.0}
            ]
        }
    )


class PoolSpec(PoolParams, OutputSpec):
    """``POST /pool`` options (the multipart `spec` part)."""

    @model_validator(mode="after")
    def _check_output(self) -> Self:
        _check_raw_output(self.scale, self.format)
        return self


class PoolRequest(PoolSpec):
    """``POST /pool`` as JSON: the spec plus the image."""

    image: ImageRef = "ascent"

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"image": "ascent", "method": "max", "size": 2}]}
    )


class ConvolveStep(ConvolveParams):
    """A pipeline step that convolves."""

    op: Literal["convolve"]


class PoolStep(PoolParams):
    """A pipeline step that pools."""

    op: Literal["pool"]


Step = Annotated[ConvolveStep | PoolStep, Field(discriminator="op")]


class PipelineSpec(OutputSpec):
    """``POST /pipeline`` options: steps run in order, each on the previous one's output.

    Between steps the 8-bit result flows on, as in the lesson, unless a step says
    ``"scale": "raw"``, in which case its float32 values flow on.
    """

    steps: list[Step] = Field(
        min_length=1,
        description="Convolve and pool steps, in order (at most 16 by default).",
        examples=[[{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]],
    )

    @field_validator("steps", mode="before")
    @classmethod
    def _check_step_count(cls, steps: Any, info: ValidationInfo) -> Any:
        limit = _limits(info).max_pipeline_steps
        if isinstance(steps, list) and len(steps) > limit:
            raise ValueError(f"a pipeline has at most {limit} steps, got {len(steps)}")
        return steps

    @model_validator(mode="after")
    def _check_output(self) -> Self:
        _check_raw_output(self.steps[-1].scale, self.format)
        return self


class PipelineRequest(PipelineSpec):
    """``POST /pipeline`` as JSON: the spec plus the image."""

    image: ImageRef = "ascent"

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "image": "ascent",
                    "steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}],
                    "format": "png",
                }
            ]
        }
    )


# --- responses ---------------------------------------------------------------------------


class ArrayResult(BaseModel):
    """A result as JSON: ``pixels`` is ``[H][W]`` for one channel, ``[H][W][C]`` otherwise."""

    width: int
    height: int
    channels: int
    dtype: Literal["uint8", "float32"]
    min: float = Field(description="The smallest value (an integer when dtype is uint8).")
    max: float = Field(description="The largest value (an integer when dtype is uint8).")
    pixels: list[Any]


class KernelInfo(BaseModel):
    """A preset kernel."""

    name: str
    kernel: list[list[float]]
    weight: float
    description: str


class Health(BaseModel):
    """Liveness/readiness answer."""

    status: Literal["ok", "ready", "not ready"]


class ErrorMessage(BaseModel):
    """An error with a sentence that says what was wrong."""

    detail: str


class ValidationIssue(BaseModel):
    """One problem found in a spec: where (``loc``) and what (``msg``)."""

    type: str
    loc: list[str | int]
    msg: str


class ValidationErrorMessage(BaseModel):
    """A 422 answer, shaped like FastAPI's."""

    detail: list[ValidationIssue]


SPEC_MODELS: tuple[type[BaseModel], ...] = (
    ConvolveRequest,
    ConvolveSpec,
    PoolRequest,
    PoolSpec,
    PipelineRequest,
    PipelineSpec,
)
