"""Errors of the domain (imaging, processing, the specs) and of the runtime limits.

    ServiceError                    base: ``message`` says what went wrong, for a person
    ├── InputError                  what was sent cannot be processed
    │   ├── UndecodableImageError       the bytes are not a decodable image (the reason is given)
    │   ├── UnsupportedImageFormatError a recognised image format the service does not take
    │   ├── ImageTooLargeError          the image, or a ``pixels`` array, exceeds ``max_pixels``
    │   └── InvalidSpecError            a spec that parses but cannot run; ``path`` points
    │       │                           at the field, relative to the spec: ("steps", 0, "scale")
    │       └── ResultTooLargeError     the result holds more values than a JSON answer may
    └── RuntimeLimitError           the service cannot do the work now; retrying may succeed
        ├── OverloadedError             too much work in flight; retry after ``retry_after`` s
        ├── StorageFullError            no room in temporary storage to receive an upload
        └── ProcessingTimeoutError      the work took longer than ``processing_timeout_s``

These say nothing about HTTP: no status codes, no headers, no ``"body"`` prefix on a path.
``service.api.errors`` maps each class (and the core's ``CoreError``) to its answer. A new
class needs a line in that table (``tests/test_errors_mapping.py`` fails without one).
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the domain and runtime errors; ``message`` is what the person is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(ServiceError):
    """What the caller sent (an image or a spec) cannot be processed as it is."""


class UndecodableImageError(InputError):
    """Raised when bytes cannot be decoded as an image (empty, not an image, corrupt)."""


class UnsupportedImageFormatError(InputError):
    """Raised for an image format that is recognised but not accepted (PPM, ICO, EPS, ...)."""


class ImageTooLargeError(InputError):
    """Raised when an image's width x height, or a ``pixels`` array's, exceeds ``max_pixels``."""


class InvalidSpecError(InputError):
    """Raised when a spec is well-formed but cannot be run; ``path`` locates the field.

    ``path`` is relative to the spec (``("steps", 0, "scale")``, ``("image", "pixels")``;
    ``()`` for the spec as a whole).
    """

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={self.path!r}, message={self.message!r})"


class ResultTooLargeError(InvalidSpecError):
    """Raised when a JSON answer would hold more than ``limit`` values; located at ``format``."""

    def __init__(self, values: int, limit: int) -> None:
        super().__init__(
            ("format",),
            f"a JSON answer holds at most {limit:,} values and this result has {values:,}; "
            "ask for a .npy file (Accept: application/x-npy or format npy) or a PNG",
        )
        self.values = values
        self.limit = limit


class RuntimeLimitError(ServiceError):
    """The service cannot take or finish the work now (a limit of this process)."""


class OverloadedError(RuntimeLimitError):
    """Raised when the work limit and its wait queue are full; retry after ``retry_after`` s."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageFullError(RuntimeLimitError):
    """Raised when an upload cannot be spooled to temporary storage (the disk is full)."""

    def __init__(self) -> None:
        super().__init__("no room to receive the upload right now; retry later")


class ProcessingTimeoutError(RuntimeLimitError):
    """Raised when processing exceeds ``processing_timeout_s`` (the thread is abandoned)."""
