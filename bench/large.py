"""Large images: peak memory per request and throughput at 1 to 36 MP (issue 15).

``python -m bench.large`` (run by ``make bench``) starts the service (``python -m service
serve``, one worker, on 127.0.0.1) and measures, over HTTP, with smooth pictures (ascent
resized bicubically; RGB = ascent, its transpose, its negative; RGBA adds a gradient alpha):

1. **Peak memory.** For ``/convolve`` (5x5 Gaussian), ``/pool`` (2x2 max) and ``/pipeline``
   (both), gray and RGB JPEG (quality 90) and RGBA PNG uploads, at 1, 9 and 36 MP: the
   worker's peak resident memory during the request above its idle baseline, as a multiple of
   the decoded image's bytes (target: at most 4x). Method: each case runs in a fresh worker
   that has served one 256 x 256 request of the same kind (imports done); once it is idle and
   has trimmed its heap (``IMGFILTER_IDLE_TRIM_MIB=1``) its ``VmRSS`` is the baseline, then
   ``5`` written to ``/proc/PID/clear_refs`` resets its ``VmHWM`` (the kernel's high-water
   mark of resident memory) to the current RSS, and after the response ``VmHWM`` is the
   peak. The kernel counts every resident page -- NumPy arrays, Pillow's and libjpeg's
   buffers, the request body, the PNG -- which ``tracemalloc`` (Python allocations only)
   would not, and nothing is sampled, so no short peak is missed. Needs Linux and the right
   to write ``clear_refs`` (the worker is this user's child).
2. **Throughput.** The issue's table: smooth RGB JPEGs of 1024^2 .. 6000^2 through
   ``/pipeline`` (5x5 Gaussian, 2x2 max pooling, PNG), best of 3, in MP/s; and the 36 MP
   request against a straightforward pipeline of the same work run in this process (Pillow
   decode, per-channel ``scipy.ndimage.correlate`` in float32, clip to uint8, NumPy max
   pooling, Pillow PNG save with its defaults); target: at least 4x.
3. **Threads.** The 36 MP pipeline in-process (decode, steps, encode) with the convolution's
   stripes on 1 and on 2 threads (`service.processing.stripe_threads` gives 2 only to a
   worker with a CPU to spare).

Results go to ``bench/results/large.json`` and print as Markdown; docs/performance.md quotes
them. The whole run takes 2-4 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
from PIL import Image
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "large.json"
GAUSS_5 = [[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6], [4, 16, 24, 16, 4]]
GAUSS_5 = [*GAUSS_5, [1, 4, 6, 4, 1]]
GAUSS_WEIGHT = 1 / 256
SPECS: dict[str, tuple[str, dict[str, Any]]] = {
    "convolve": ("/convolve", {"kernel": GAUSS_5, "weight": GAUSS_WEIGHT}),
    "pool": ("/pool", {"size": 2}),
    "pipeline": (
        "/pipeline",
        {
            "steps": [
                {"op": "convolve", "kernel": GAUSS_5, "weight": GAUSS_WEIGHT},
                {"op": "pool", "size": 2},
            ]
        },
    ),
    "gradient": ("/gradient", {}),
}
MEMORY_SIDES = (1000, 3000, 6000)  # 1, 9 and 36 MP
THROUGHPUT_SIDES = (1024, 2048, 4096, 6000)
CHANNELS = {"gray": 1, "RGB": 3, "RGBA": 4}
MEMORY_TARGET = 4.0
SPEED_TARGET = 4.0

Array = npt.NDArray[np.uint8]


def picture(side: int, mode: str) -> Array:
    """A smooth side x side picture: ascent resized (bicubic), channels as the docstring says."""
    with Image.open(REPO / "service" / "data" / "ascent.png") as img:
        gray = np.asarray(img.convert("L").resize((side, side), Image.Resampling.BICUBIC))
    if mode == "gray":
        return gray
    rgb = np.dstack([gray, gray.T, 255 - gray])
    if mode == "RGB":
        return rgb
    ramp = np.linspace(64, 255, side, dtype=np.float64).astype(np.uint8)
    return np.dstack([rgb, np.broadcast_to(ramp[:, None], (side, side))])


def upload(side: int, mode: str) -> tuple[bytes, str, str]:
    """(file bytes, file name, media type): JPEG q90 for gray/RGB, PNG level 1 for RGBA."""
    buffer = io.BytesIO()
    if mode == "RGBA":
        Image.fromarray(picture(side, mode)).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue(), "image.png", "image/png"
    Image.fromarray(picture(side, mode)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue(), "image.jpg", "image/jpeg"


# --- the worker --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Worker:
    """``python -m service serve --workers 1`` on 127.0.0.1: one process, its pid known."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.port = port
        command = [sys.executable, "-m", "service", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", "1"]
        self.process = subprocess.Popen(
            command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL
        )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the service did not start")
            time.sleep(0.2)

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM of the worker, in bytes."""
        values = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
        return values

    def idle_baseline(self) -> int:
        """RSS once the worker is idle and trimmed (stable after 2 s), peak reset to it."""
        time.sleep(1.5)  # the idle trimmer runs at most once a second after the response
        previous = -1
        for _ in range(20):
            time.sleep(0.6)
            rss = self.status()["VmRSS"]
            if abs(rss - previous) < 1 << 20:
                break
            previous = rss
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        return self.status()["VmRSS"]

    def post(self, path: str, spec: dict[str, Any], file: tuple[bytes, str, str]) -> bytes:
        data, name, media = file
        response = self.client.post(
            path, data={"spec": json.dumps(spec)}, files={"image": (name, data, media)}
        )
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
        return response.content

    def close(self) -> None:
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- measurements ------------------------------------------------------------------------


@dataclass
class MemoryRow:
    op: str
    mode: str
    side: int
    upload_bytes: int
    decoded_bytes: int
    peak_bytes: int
    seconds: float

    @property
    def ratio(self) -> float:
        return self.peak_bytes / self.decoded_bytes


@dataclass
class SpeedRow:
    side: int
    upload_bytes: int
    seconds: float

    @property
    def mp_per_s(self) -> float:
        return self.side * self.side / 1e6 / self.seconds


def measure_memory(
    ports: Callable[[], int],
    env: dict[str, str],
    sides: tuple[int, ...],
    modes: tuple[str, ...] = tuple(CHANNELS),
    ops: tuple[str, ...] = tuple(SPECS),
) -> list[MemoryRow]:
    """Each case in a fresh worker, after one 256 x 256 request of the same kind (imports)."""
    rows = []
    for side in sides:
        for mode in modes:
            channels = CHANNELS[mode]
            file = upload(side, mode)
            small = upload(256, mode)
            for op in ops:
                path, spec = SPECS[op]
                worker = Worker(ports(), env)
                try:
                    worker.post(path, spec, small)
                    baseline = worker.idle_baseline()
                    start = time.perf_counter()
                    worker.post(path, spec, file)
                    seconds = time.perf_counter() - start
                    peak = worker.status()["VmHWM"] - baseline
                finally:
                    worker.close()
                decoded = side * side * channels
                row = MemoryRow(op, mode, side, len(file[0]), decoded, peak, seconds)
                rows.append(row)
                print(
                    f"  {op:9} {mode:4} {side}x{side}: peak {peak / 2**20:7.1f} MiB = "
                    f"{row.ratio:.2f}x the decoded {row.decoded_bytes / 2**20:.0f} MiB",
                    flush=True,
                )
    return rows


def best_of(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure_speed(worker: Worker, sides: tuple[int, ...], repeats: int) -> list[SpeedRow]:
    path, spec = SPECS["pipeline"]
    rows = []
    for side in sides:
        file = upload(side, "RGB")
        seconds = best_of(lambda file=file: worker.post(path, spec, file), repeats)
        rows.append(SpeedRow(side, len(file[0]), seconds))
        print(f"  pipeline RGB {side}x{side}: {seconds * 1e3:,.0f} ms", flush=True)
    return rows


def straightforward_pipeline(data: bytes) -> bytes:
    """The yardstick of target 2: Pillow, scipy per channel in float32, NumPy, Pillow PNG."""
    with Image.open(io.BytesIO(data)) as img:
        pixels = np.asarray(img)
    kernel = np.asarray(GAUSS_5, np.float32) * np.float32(GAUSS_WEIGHT)
    planes = [
        np.clip(ndimage.correlate(pixels[..., c].astype(np.float32), kernel), 0, 255)
        for c in range(pixels.shape[2])
    ]
    filtered = np.dstack(planes).astype(np.uint8)
    h, w = filtered.shape[0] // 2 * 2, filtered.shape[1] // 2 * 2
    pooled = filtered[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).max(axis=(1, 3))
    out = io.BytesIO()
    Image.fromarray(pooled).save(out, format="PNG")
    return out.getvalue()


def in_process_threads(side: int, repeats: int) -> dict[int, float]:
    """Seconds of decode + pipeline + encode in this process, stripes on 1 and 2 threads."""
    from service import imaging, processing
    from service.config import Settings
    from service.ops import OPERATIONS, run_steps
    from service.schemas import validation_context

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    spec = OPERATIONS["pipeline"].spec.model_validate(
        SPECS["pipeline"][1], context=validation_context(settings)
    )
    data = upload(side, "RGB")[0]
    original = processing.stripe_threads
    times = {}
    try:
        for threads in (1, 2):
            processing.stripe_threads = lambda *_, threads=threads: threads  # type: ignore[assignment]

            def run() -> None:
                image = imaging.decode(data, max_pixels=settings.max_pixels)
                result = run_steps(image, spec, settings)
                processing.render(result, "png", settings)

            times[threads] = best_of(run, repeats)
            print(f"  in-process, {threads} thread(s): {times[threads] * 1e3:,.0f} ms", flush=True)
    finally:
        processing.stripe_threads = original
    return times


# --- report ------------------------------------------------------------------------------


def markdown(memory: list[MemoryRow], speed: list[SpeedRow], summary: dict[str, Any]) -> str:
    lines = [
        "| image | upload | time over HTTP | MP/s |",
        "|---|--:|--:|--:|",
    ]
    for row in speed:
        lines.append(
            f"| {row.side}x{row.side} | {row.upload_bytes / 1e6:.1f} MB | "
            f"{row.seconds * 1e3:,.0f} ms | {row.mp_per_s:.1f} |"
        )
    lines += [
        "",
        "| request | image | decoded | peak above idle | x decoded |",
        "|---|---|--:|--:|--:|",
    ]
    for m in memory:
        lines.append(
            f"| {m.op} | {m.mode} {m.side}x{m.side} | {m.decoded_bytes / 2**20:.0f} MiB | "
            f"{m.peak_bytes / 2**20:.0f} MiB | {m.ratio:.2f} |"
        )
    lines += ["", *(f"- {key}: {value}" for key, value in summary.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.large", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 and 9 MP only, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument(
        "--port", type=int, default=0, help="first of 30 ports for the workers (0: free ones)"
    )
    parser.add_argument("--memory-sides", default="", help="comma-separated sides (1000,...)")
    parser.add_argument("--speed-sides", default="", help="comma-separated sides (1024,...)")
    parser.add_argument("--modes", default=",".join(CHANNELS), help="gray,RGB,RGBA")
    parser.add_argument("--ops", default=",".join(SPECS), help="convolve,pool,pipeline,gradient")
    args = parser.parse_args(argv)
    memory_sides = MEMORY_SIDES[:2] if args.quick else MEMORY_SIDES
    speed_sides = THROUGHPUT_SIDES[:2] if args.quick else THROUGHPUT_SIDES
    if args.memory_sides:
        memory_sides = tuple(int(v) for v in args.memory_sides.split(","))
    if args.speed_sides:
        speed_sides = tuple(int(v) for v in args.speed_sides.split(","))
    modes = tuple(m for m in args.modes.split(",") if m)
    ops = tuple(o for o in args.ops.split(",") if o)
    repeats = 1 if args.quick else args.repeats

    env = {
        "IMGFILTER_IDLE_TRIM_MIB": "1",  # trim after every request: a clean idle baseline
        "IMGFILTER_MAX_UPLOAD_BYTES": str(64 << 20),  # the 36 MP RGBA PNG is ~18 MiB
        "IMGFILTER_LOG_LEVEL": "warning",
        "IMGFILTER_WORKERS": "1",  # the app's view of `serve --workers 1` (stripe threads)
    }
    given = iter(range(args.port, args.port + 100)) if args.port else None

    def ports() -> int:  # a new port per worker: no wait for the last one's socket
        return next(given) if given is not None else free_port()

    print("Peak memory per request (worker RSS high-water mark above its idle baseline):")
    memory = measure_memory(ports, env, memory_sides, modes, ops)
    worker = Worker(ports(), env)
    try:
        print("Throughput, smooth RGB JPEG through /pipeline:")
        speed = measure_speed(worker, speed_sides, repeats)
    finally:
        worker.close()

    largest = speed[-1]
    data = upload(largest.side, "RGB")[0]
    print("Straightforward pipeline (Pillow, scipy float32 per channel, NumPy, Pillow PNG):")
    naive = best_of(lambda: straightforward_pipeline(data), max(1, repeats - 1))
    print(f"  {largest.side}x{largest.side}: {naive * 1e3:,.0f} ms", flush=True)
    threads = in_process_threads(largest.side, repeats)

    worst = max(memory, key=lambda m: m.ratio)
    speedup = naive / largest.seconds
    summary = {
        "worst peak": f"{worst.ratio:.2f}x ({worst.op} {worst.mode} {worst.side}^2)",
        "target 1 (peak <= 4x decoded)": "PASS" if worst.ratio <= MEMORY_TARGET else "FAIL",
        f"{largest.side}^2 service vs straightforward": (
            f"{speedup:.1f}x ({largest.seconds * 1e3:,.0f} vs {naive * 1e3:,.0f} ms; "
            f"{largest.mp_per_s:.1f} vs {largest.side**2 / 1e6 / naive:.1f} MP/s)"
        ),
        "target 2 (>= 4x)": "PASS" if speedup >= SPEED_TARGET else "FAIL",
        "stripes on 2 threads vs 1 (in-process, 36 MP pipeline)": (
            f"{threads[1] / threads[2]:.2f}x ({threads[1] * 1e3:,.0f} vs "
            f"{threads[2] * 1e3:,.0f} ms)"
        ),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}",
    }
    report = markdown(memory, speed, summary)
    print()
    print(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "memory": [asdict(m) | {"ratio": m.ratio} for m in memory],
                "speed": [asdict(s) | {"mp_per_s": s.mp_per_s} for s in speed],
                "straightforward_s": naive,
                "threads_s": threads,
                "summary": summary,
            },
            indent=2,
        )
    )
    return 0  # the PASS/FAIL lines report the targets, as bench.core's do


if __name__ == "__main__":
    raise SystemExit(main())
