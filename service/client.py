"""A small Python client for the image filter service, on httpx (sync and async).

It needs httpx and NumPy only (and the standard library). Installed alone, without the server,
it is the ``imgfilter-client`` distribution (``pip install ./clients/python``), imported as
``imgfilter_client``; in the server's install it is ``service.client``.

>>> from service.client import Client
>>> with Client("http://127.0.0.1:8000") as api:  # doctest: +SKIP
...     png = api.convolve("ascent", preset="sobel-x")           # PNG bytes
...     edges = api.convolve("photo.jpg", kernel=[[0, 1, 0], [1, -4, 1], [0, 1, 0]],
...                          scale="abs", format="json")          # np.ndarray, uint8
...     small = api.pool(edges, size=2, format="json")            # (M // 2, N // 2)

Images (the ``image`` argument of every method):

- ``None`` or ``"ascent"``: the service's built-in picture (nothing is uploaded);
- a path (``str`` or ``os.PathLike``) or ``bytes``: an image file, sent as multipart;
- an ``np.ndarray`` of shape (M, N) or (M, N, C), C in 1..4: ``np.uint8`` arrays are sent as
  a lossless PNG file; other dtypes as JSON ``pixels`` (the service checks 0..255 and
  truncates fractions). A file literally named ``ascent`` needs ``Path("ascent")``.

Every operation the server lists at ``GET /operations`` (its registry) is a method named after
it (``-`` as ``_``): ``api.gradient(image, **options)`` posts to ``/gradient``, and
``api.call("gradient", image, **options)`` is the same call by name. ``convolve``, ``pool``
and ``pipeline`` are also written out, with their options typed. ``api.operations()`` lists
what the server offers.

Options are the API's spec fields (see ``/docs``); an option left out (or ``None``) is not
sent, so the service's default applies. The service validates everything: the client does not
second-guess it, and a refusal comes back as :class:`ApiError` in the API's own words.

Results: ``format="png"`` (default) gives the PNG file's bytes; ``format="json"`` gives an
``np.ndarray`` of shape (M, N) or (M, N, C) with dtype ``np.uint8``, or ``np.float32`` when
the last step used ``scale="raw"``.

Errors::

    Exception
    ├── ApiError          any non-2xx answer: ``status_code`` and the API's ``detail``
    └── httpx.HTTPError   transport problems (connection refused, timeouts), from httpx as is
"""

from __future__ import annotations

import json
import mimetypes
import os
import struct
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack, overload

import numpy as np
import numpy.typing as npt

try:
    import httpx
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError("the imgfilter client needs httpx: pip install httpx") from exc

__version__ = "0.1.0"  # the service's (tests/test_client_alone.py checks)

__all__ = [
    "ApiError",
    "AsyncClient",
    "Client",
    "ConvolveOptions",
    "ImageInput",
    "KernelInfo",
    "OperationInfo",
    "PoolOptions",
]

ImageInput = str | os.PathLike[str] | bytes | npt.NDArray[Any] | None
Array = npt.NDArray[Any]
Window = int | tuple[int, int] | list[int]


class ConvolveOptions(TypedDict, total=False):
    """Fields of ``POST /convolve`` (and of a pipeline's convolve step)."""

    kernel: Sequence[Sequence[float]] | Array
    preset: str
    weight: float
    normalize: bool
    mode: Literal["standard", "codelab"]
    border: Literal["reflect", "mirror", "nearest", "wrap", "constant", "keep", "valid"]
    cval: float
    flip: bool
    color: Literal["auto", "gray"]
    scale: Literal["clamp", "abs", "normalize", "raw"]


class PoolOptions(TypedDict, total=False):
    """Fields of ``POST /pool`` (and of a pipeline's pool step)."""

    method: Literal["max", "avg", "min"]
    size: Window
    stride: Window
    edge: Literal["drop", "partial"]
    color: Literal["auto", "gray"]
    scale: Literal["clamp", "abs", "normalize", "raw"]


class KernelInfo(TypedDict):
    """A preset kernel, as ``GET /kernels`` lists it."""

    name: str
    kernel: list[list[float]]
    weight: float
    description: str


class OperationInfo(TypedDict):
    """An operation, as ``GET /operations`` lists it."""

    name: str
    path: str
    summary: str
    description: str
    step: bool
    spec: dict[str, Any]


class ApiError(Exception):
    """Raised when the service answers a status outside 2xx.

    ``detail`` is the API's ``detail`` as sent: a sentence (400, 401, 413, 415, 503, ...) or,
    for 422, a list of ``{"type", "loc", "msg"}`` issues. A body that is not JSON is kept as text.
    """

    def __init__(self, status_code: int, detail: Any) -> None:
        self.status_code = status_code
        self.detail = detail
        super().__init__(f"{status_code}: {_describe(detail)}")

    def __repr__(self) -> str:
        return f"ApiError(status_code={self.status_code!r}, detail={self.detail!r})"


def _describe(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for issue in detail:
            if isinstance(issue, Mapping) and "msg" in issue:
                where = ".".join(str(part) for part in issue.get("loc", []))
                parts.append(f"{where}: {issue['msg']}" if where else str(issue["msg"]))
            else:
                parts.append(str(issue))
        return "; ".join(parts)
    return str(detail)


# --- building requests and reading answers (shared by both clients) --------------------------


@dataclass(frozen=True, slots=True)
class _Call:
    """The arguments of one ``httpx`` request."""

    method: str
    path: str
    content: bytes | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    data: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """``value`` with NumPy arrays/scalars turned into lists/numbers (for the JSON spec)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _png(array: Array) -> bytes | None:
    """A PNG of a uint8 (M, N) or (M, N, C<=4) array; ``None`` for anything else."""
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or array.size == 0:
        return None
    if array.ndim == 3:
        if not 1 <= array.shape[2] <= 4:
            return None
        if array.shape[2] == 1:
            array = array[:, :, 0]
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]  # gray, gray+alpha, RGB, RGBA
    rows = np.zeros((height, 1 + width * channels), np.uint8)  # filter byte 0 (None) per row
    rows[:, 1:] = array.reshape(height, width * channels)
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
            _png_chunk(b"IEND", b""),
        )
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _build(path: str, spec: Mapping[str, Any], image: ImageInput) -> _Call:
    """A ``POST path`` with ``spec`` as JSON (ascent, pixels) or multipart (a file's bytes)."""
    body = _plain(spec)
    upload: bytes | None = None
    name = "image.png"
    if isinstance(image, np.ndarray):
        upload = _png(image)
        if upload is None:  # not PNG-able: let the service judge the pixels
            body["image"] = {"pixels": image.tolist()}
    elif isinstance(image, bytes):
        upload = image
        name = "image"
    elif isinstance(image, os.PathLike) or (isinstance(image, str) and image != "ascent"):
        file = Path(image)
        upload, name = file.read_bytes(), file.name
    elif image is not None and image != "ascent":
        raise TypeError(f"image must be None, 'ascent', a path, bytes or an ndarray, not {image!r}")
    if upload is not None:
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        spec_text = _json(body).decode()
        return _Call(
            "POST",
            path,
            files={"image": (name, upload, media_type)},
            data={"spec": spec_text},
        )
    content = _json(body)
    return _Call("POST", path, content=content, headers={"Content-Type": "application/json"})


def _check(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = json.loads(response.content)["detail"]
    except (ValueError, KeyError, TypeError):
        detail = response.text or response.reason_phrase
    raise ApiError(response.status_code, detail)


def _result(response: httpx.Response) -> bytes | Array:
    """PNG bytes, or the JSON result's pixels as an ``np.uint8``/``np.float32`` array."""
    _check(response)
    if response.headers.get("content-type", "").startswith("image/"):
        return response.content
    document = json.loads(response.content)
    dtype = np.float32 if document["dtype"] == "float32" else np.uint8
    return np.asarray(document["pixels"], dtype=dtype)


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": f"imgfilter-client/{__version__}"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _operation(name: str, image: ImageInput, fmt: str, options: Mapping[str, Any]) -> _Call:
    return _build(f"/{name}", {**options, "format": fmt}, image)


def _method_name(name: str) -> str:
    """The path a method posts to: ``gradient`` -> ``/gradient``, ``edge_map`` -> ``/edge-map``."""
    if name.startswith("_"):
        raise AttributeError(name)
    return name.replace("_", "-")


# --- the clients --------------------------------------------------------------------------------


class Client:
    """Calls the service at ``base_url`` (sync). Use as a context manager, or call ``close()``.

    Parameters
    ----------
    base_url : str
        Where the service runs, e.g. ``"http://127.0.0.1:8000"``.
    api_key : str, optional
        Sent as ``Authorization: Bearer <key>`` when the service requires keys.
    timeout : float, default 30.0
        Seconds for each of connect, read, write and pool (httpx's timeout).
    transport : httpx.BaseTransport, optional
        A custom transport (tests, ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, call: _Call) -> httpx.Response:
        return self._http.request(
            call.method,
            call.path,
            content=call.content,
            files=call.files,
            data=call.data,
            headers=call.headers,
        )

    @overload
    def convolve(
        self,
        image: ImageInput = None,
        *,
        format: Literal["png"] = "png",
        **options: Unpack[ConvolveOptions],
    ) -> bytes: ...
    @overload
    def convolve(
        self,
        image: ImageInput = None,
        *,
        format: Literal["json"],
        **options: Unpack[ConvolveOptions],
    ) -> Array: ...
    def convolve(
        self, image: ImageInput = None, *, format: str = "png", **options: Unpack[ConvolveOptions]
    ) -> bytes | Array:
        """``POST /convolve``: give ``kernel`` or ``preset``, plus any other spec field."""
        return self.call("convolve", image, format=format, **options)

    @overload
    def pool(
        self,
        image: ImageInput = None,
        *,
        format: Literal["png"] = "png",
        **options: Unpack[PoolOptions],
    ) -> bytes: ...
    @overload
    def pool(
        self, image: ImageInput = None, *, format: Literal["json"], **options: Unpack[PoolOptions]
    ) -> Array: ...
    def pool(
        self, image: ImageInput = None, *, format: str = "png", **options: Unpack[PoolOptions]
    ) -> bytes | Array:
        """``POST /pool``: ``method``, ``size``, ``stride``, ``edge``, ``color``, ``scale``."""
        return self.call("pool", image, format=format, **options)

    @overload
    def pipeline(
        self,
        steps: Sequence[Mapping[str, Any]],
        image: ImageInput = None,
        *,
        format: Literal["png"] = "png",
    ) -> bytes: ...
    @overload
    def pipeline(
        self,
        steps: Sequence[Mapping[str, Any]],
        image: ImageInput = None,
        *,
        format: Literal["json"],
    ) -> Array: ...
    def pipeline(
        self, steps: Sequence[Mapping[str, Any]], image: ImageInput = None, *, format: str = "png"
    ) -> bytes | Array:
        """``POST /pipeline``: ``steps`` as the API takes them, e.g.
        ``[{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]``."""
        return self.call("pipeline", image, format=format, steps=list(steps))

    def call(
        self, operation: str, image: ImageInput = None, *, format: str = "png", **options: Any
    ) -> bytes | Array:
        """``POST /<operation>`` with ``options`` as its spec fields (any registry operation)."""
        return _result(self._send(_operation(operation, image, format, options)))

    def __getattr__(self, name: str) -> Callable[..., bytes | Array]:
        """``api.<operation>(image, **options)``: :meth:`call` for an operation by name."""
        operation = _method_name(name)
        return lambda image=None, **options: self.call(operation, image, **options)

    def operations(self) -> list[OperationInfo]:
        """``GET /operations``: every operation's name, path, summary and spec schema."""
        response = self._http.get("/operations")
        _check(response)
        operations: list[OperationInfo] = response.json()
        return operations

    def kernels(self) -> list[KernelInfo]:
        """``GET /kernels``: every preset's name, kernel, weight and description."""
        response = self._http.get("/kernels")
        _check(response)
        kernels: list[KernelInfo] = response.json()
        return kernels


class AsyncClient:
    """The async twin of :class:`Client` (same parameters and methods, awaitable)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, call: _Call) -> httpx.Response:
        return await self._http.request(
            call.method,
            call.path,
            content=call.content,
            files=call.files,
            data=call.data,
            headers=call.headers,
        )

    @overload
    async def convolve(
        self,
        image: ImageInput = None,
        *,
        format: Literal["png"] = "png",
        **options: Unpack[ConvolveOptions],
    ) -> bytes: ...
    @overload
    async def convolve(
        self,
        image: ImageInput = None,
        *,
        format: Literal["json"],
        **options: Unpack[ConvolveOptions],
    ) -> Array: ...
    async def convolve(
        self, image: ImageInput = None, *, format: str = "png", **options: Unpack[ConvolveOptions]
    ) -> bytes | Array:
        """``POST /convolve`` (see :meth:`Client.convolve`)."""
        return await self.call("convolve", image, format=format, **options)

    @overload
    async def pool(
        self,
        image: ImageInput = None,
        *,
        format: Literal["png"] = "png",
        **options: Unpack[PoolOptions],
    ) -> bytes: ...
    @overload
    async def pool(
        self, image: ImageInput = None, *, format: Literal["json"], **options: Unpack[PoolOptions]
    ) -> Array: ...
    async def pool(
        self, image: ImageInput = None, *, format: str = "png", **options: Unpack[PoolOptions]
    ) -> bytes | Array:
        """``POST /pool`` (see :meth:`Client.pool`)."""
        return await self.call("pool", image, format=format, **options)

    @overload
    async def pipeline(
        self,
        steps: Sequence[Mapping[str, Any]],
        image: ImageInput = None,
        *,
        format: Literal["png"] = "png",
    ) -> bytes: ...
    @overload
    async def pipeline(
        self,
        steps: Sequence[Mapping[str, Any]],
        image: ImageInput = None,
        *,
        format: Literal["json"],
    ) -> Array: ...
    async def pipeline(
        self, steps: Sequence[Mapping[str, Any]], image: ImageInput = None, *, format: str = "png"
    ) -> bytes | Array:
        """``POST /pipeline`` (see :meth:`Client.pipeline`)."""
        return await self.call("pipeline", image, format=format, steps=list(steps))

    async def call(
        self, operation: str, image: ImageInput = None, *, format: str = "png", **options: Any
    ) -> bytes | Array:
        """``POST /<operation>`` (see :meth:`Client.call`)."""
        return _result(await self._send(_operation(operation, image, format, options)))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[bytes | Array]]:
        """``await api.<operation>(image, **options)`` (see :meth:`Client.__getattr__`)."""
        operation = _method_name(name)
        return lambda image=None, **options: self.call(operation, image, **options)

    async def operations(self) -> list[OperationInfo]:
        """``GET /operations`` (see :meth:`Client.operations`)."""
        response = await self._http.get("/operations")
        _check(response)
        operations: list[OperationInfo] = response.json()
        return operations

    async def kernels(self) -> list[KernelInfo]:
        """``GET /kernels`` (see :meth:`Client.kernels`)."""
        response = await self._http.get("/kernels")
        _check(response)
        kernels: list[KernelInfo] = response.json()
        return kernels
