"""service.schemas: the spec models enforce their own rules, before any image is decoded.

The core re-checks kernel and window sizes, but only after the image is decoded; these rules
must already stop a spec at validation (and so in the OpenAPI contract and the multipart
``spec`` part), with ``loc`` on the field.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.schemas import ConvolveParams, PoolParams, validation_context
from tests.conftest import make_settings


def _locs(error: pytest.ExceptionInfo[ValidationError]) -> list[tuple[object, ...]]:
    return [tuple(issue["loc"]) for issue in error.value.errors()]


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        ([[]], "must not be empty"),
        ([[]] * 3, "must not be empty"),
        ([[1] * 64], "at most 63"),
        ([[1]] * 64, "at most 63"),
        ([[1, 2], [3]], "same length"),
    ],
    ids=["empty-row", "empty-rows", "1x64", "64x1", "ragged"],
)
def test_convolve_params_reject_bad_kernels(kernel: list[list[float]], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        ConvolveParams(kernel=kernel)
    assert _locs(caught) == [("kernel",)]


@pytest.mark.parametrize("kernel", [[[1] * 63], [[1]] * 63, [[0.5]]])
def test_convolve_params_accept_kernels_up_to_the_limit(kernel: list[list[float]]) -> None:
    assert ConvolveParams(kernel=kernel).kernel_shape == (len(kernel), len(kernel[0]))


def test_convolve_params_kernel_limit_from_settings() -> None:
    context = validation_context(make_settings(max_kernel_side=5))
    ConvolveParams.model_validate({"kernel": [[1] * 5]}, context=context)
    with pytest.raises(ValidationError, match="at most 5"):
        ConvolveParams.model_validate({"kernel": [[1] * 6]}, context=context)


@pytest.mark.parametrize("size", [65, [2, 65], [65, 2], [65, 65]])
def test_pool_params_reject_any_side_over_the_limit(size: object) -> None:
    with pytest.raises(ValidationError, match="limit of 64") as caught:
        PoolParams.model_validate({"size": size})
    assert _locs(caught) == [("size",)]


@pytest.mark.parametrize("size", [64, [1, 64], [64, 64]])
def test_pool_params_accept_sides_up_to_the_limit(size: object) -> None:
    PoolParams.model_validate({"size": size})
