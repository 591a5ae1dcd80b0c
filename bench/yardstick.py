"""The yardstick app of the load benchmark: ``naive_app`` plus the cases it lacks, written alike.

``../shared/bench/naive_app.py`` (not ours, not modified) serves ``POST /convolve`` (Sobel on
ascent -> PNG) and ``GET /healthz``. The load benchmark also compares JSON output, an upload,
pooling and the pipeline, so this module imports naive_app's ``app`` and adds those routes in
the same straightforward style (plain ``def`` handlers in the threadpool, ``scipy.ndimage``,
NumPy, Pillow's default PNG level 6, the stdlib ``json``):

``POST /convolve/json``    naive_app's convolve, answered as ``json.dumps`` of ``tolist()``
                           (the service's ``ArrayResult`` keys, same uint8 pixels);
``POST /convolve/upload``  multipart ``image`` file + ``spec`` JSON text (kernel, weight):
                           Pillow decode, ``ndimage.correlate`` per channel, Pillow PNG;
``POST /pool``             JSON ``{"size": s}``: ascent, ``reshape(...).max(axis=(1, 3))``;
``POST /pipeline``         JSON ``{}``: Sobel-x correlate, clip, truncate, 2x2 max, PNG.

Run (``bench.load`` does): ``YARDSTICK_DIR=../shared/bench uvicorn bench.yardstick:app``.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import File, Form, UploadFile
from fastapi.responses import Response
from PIL import Image
from pydantic import BaseModel
from scipy import ndimage

from bench import VENDORED_YARDSTICK, default_yardstick_dir

_DIR = Path(os.environ.get("YARDSTICK_DIR", default_yardstick_dir())).resolve()
if _DIR == VENDORED_YARDSTICK:  # the copy has no ../data beside it: the package's ascent
    os.environ.setdefault("ASCENT_PATH", str(_DIR.parents[1] / "service" / "data" / "ascent.png"))
sys.path.insert(0, str(_DIR))

import naive_app  # noqa: E402  (located at run time)

app = naive_app.app
SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]


def _correlate_u8(image: np.ndarray, kernel: list[list[float]], weight: float) -> np.ndarray:
    k = np.asarray(kernel, dtype=np.float32) * np.float32(weight)
    if image.ndim == 3:
        k = k[:, :, None]
    out = ndimage.correlate(image, k, mode="reflect")
    return np.clip(out, 0, 255).astype(np.uint8)


def _max_pool(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[0] // size, a.shape[1] // size
    return a[: h * size, : w * size].reshape(h, size, w, size, *a.shape[2:]).max(axis=(1, 3))


def _png(a: np.ndarray) -> Response:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return Response(buf.getvalue(), media_type="image/png")


@app.post("/convolve/json")
def convolve_json(req: naive_app.ConvolveRequest) -> Response:
    out = _correlate_u8(naive_app.IMAGES[req.image], req.kernel, req.weight)
    document: dict[str, Any] = {
        "width": out.shape[1],
        "height": out.shape[0],
        "channels": 1,
        "dtype": "uint8",
        "min": float(out.min()),
        "max": float(out.max()),
        "pixels": out.tolist(),
    }
    return Response(json.dumps(document), media_type="application/json")


@app.post("/convolve/upload")
def convolve_upload(image: UploadFile = File(...), spec: str = Form(...)) -> Response:  # noqa: B008
    params = json.loads(spec)
    pixels = np.asarray(Image.open(image.file), dtype=np.float32)
    return _png(_correlate_u8(pixels, params["kernel"], params.get("weight", 1.0)))


class PoolRequest(BaseModel):
    size: int = 2


@app.post("/pool")
def pool(req: PoolRequest) -> Response:
    ascent = naive_app.IMAGES["ascent"].astype(np.uint8)
    return _png(_max_pool(ascent, req.size))


@app.post("/pipeline")
def pipeline() -> Response:
    edges = _correlate_u8(naive_app.IMAGES["ascent"], SOBEL_X, 1.0)
    return _png(_max_pool(edges, 2))
