"""Errors the HTTP layer turns into JSON responses.

    ServiceError                 base: ``status_code`` + ``detail``; answered as {"detail": "..."}
    ├── BadImageError            400  the bytes are not a decodable image (the reason is given)
    ├── AuthenticationError      401  an API key is required and missing or wrong
    ├── NotAcceptableError       406  the Accept header allows none of the operation's answers
    ├── BodyTimeoutError         408  the body did not arrive within the body timeout
    ├── PayloadTooLargeError     413  the body exceeds the byte limit, or the image the pixel limit
    ├── UnsupportedMediaError    415  a content type or image format the service does not take
    ├── SpecError                422  a spec that parses but cannot run (shaped like FastAPI's 422)
    ├── OverloadedError          503  too much work in flight; ``Retry-After`` is set
    └── ProcessingTimeoutError   504  the work took longer than the processing timeout

Core errors (``service.core.errors.CoreError``, a ``ValueError``) are answered as 422 with the
offending parameter in ``loc``; Pydantic's ``ValidationError`` likewise. No handler is registered
for bare ``ValueError``: an unexpected one is a bug and must surface as a 500 in tests.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of the errors answered with a JSON ``detail``; ``status_code`` sets the status."""

    status_code: ClassVar[int] = 500

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail = detail or HTTPStatus(self.status_code).phrase
        self.headers = headers
        super().__init__(self.detail)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(detail={self.detail!r})"

    def body(self) -> dict[str, Any]:
        """The JSON body answered for this error."""
        return {"detail": self.detail}


class BadImageError(ServiceError):
    """Raised when uploaded bytes cannot be decoded as an image (400)."""

    status_code = 400


class AuthenticationError(ServiceError):
    """Raised when API keys are configured and the request carries none or a wrong one (401)."""

    status_code = 401


class NotAcceptableError(ServiceError):
    """Raised when ``Accept`` allows none of the media types an operation answers (406)."""

    status_code = 406


class BodyTimeoutError(ServiceError):
    """Raised when the request body does not arrive within ``body_timeout_s`` (408).

    Answered with ``Connection: close``: the rest of the body may still be on its way, so the
    connection cannot carry another request.
    """

    status_code = 408

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Connection": "close"})


class PayloadTooLargeError(ServiceError):
    """Raised when the body exceeds ``max_upload_bytes`` or the image ``max_pixels`` (413)."""

    status_code = 413


class UnsupportedMediaError(ServiceError):
    """Raised for a request content type or image format the service does not accept (415)."""

    status_code = 415


class SpecError(ServiceError):
    """Raised when a spec is well-formed but cannot be run; answered like FastAPI's 422."""

    status_code = 422

    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc

    def body(self) -> dict[str, Any]:
        return {"detail": [{"type": "value_error", "loc": list(self.loc), "msg": self.detail}]}


class OverloadedError(ServiceError):
    """Raised when the per-worker work limit and its wait queue are full (503, Retry-After)."""

    status_code = 503


class ProcessingTimeoutError(ServiceError):
    """Raised when processing exceeds ``processing_timeout_s`` (504)."""

    status_code = 504
