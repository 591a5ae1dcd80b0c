"""Soak test: minutes of mixed valid and invalid traffic against the real service, bounded.

``make soak`` runs ``python -m bench.soak`` (not part of ``make test``). Everything stays on
127.0.0.1:

1. Starts the service as production does, ``python -m service serve --workers W`` (falls back
   to ``uvicorn service.main:app --workers W`` when the CLI is absent) on a free port, with
   the default limits (so the per-worker work cap and its queue are live).
2. Warms up, then records each worker's RSS (``VmRSS`` in ``/proc/<pid>/status``) as its
   baseline.
3. Runs ``--clients`` concurrent keep-alive clients for ``--duration`` seconds. Each picks
   requests from a fixed, seeded mix: processing in both encodings (ascent, uploads, base64,
   pixels, codelab, pipelines, JSON output) and hostile ones (bad kernels, garbage and
   truncated files, a decompression bomb, wrong content types, unknown fields, 10000-step
   pipelines, deeply nested JSON, unknown kernels). Every request kind has one expected
   status; 503 (the documented load-shedding answer) is allowed for processing requests.
4. Samples each worker's RSS every 0.25 s (peak per worker), and watches the worker PIDs.
5. Prints requests, req/s, the status histogram, p50/p99 latency (all, and per kind), each
   worker's baseline/peak/final RSS; ``--json FILE`` also writes the figures.

Exit status 1 when any answer is a 5xx other than 503, a status other than the expected one,
a transport error (dropped connection), a worker process replaced (it crashed), or a
worker's peak RSS more than ``--rss-ceiling-mb`` over its baseline; 2 for a setup failure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from testkit.images import bomb_png, encode
from testkit.procfs import cpu_seconds, rss_kib, worker_pids
from testkit.servers import free_port, stop_group, wait_healthy

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SHED = 503  # the documented overload answer, allowed for processing requests


# --- the request mix ------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix, with its weight and the status it must get."""

    name: str
    weight: int
    method: str
    path: str
    expect: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def processing(self) -> bool:
        return self.path in ("/convolve", "/pool", "/pipeline")


def _multipart(spec: dict[str, Any] | None, image: bytes | None) -> bytes:
    boundary = "soak-boundary"
    parts = []
    if spec is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n'.encode()
            + json.dumps(spec).encode()
            + b"\r\n"
        )
    if image is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="i"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + image
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


def build_mix(seed: int = 6) -> list[Kind]:
    """The request kinds, weighted; bodies are built once, deterministically."""
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    png_rgb = encode(rgb, "PNG")
    jpeg = encode(rgb.resize((128, 128)), "JPEG", quality=85)
    gray = Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8))
    gif = encode(gray, "GIF", save_all=True, append_images=[gray.rotate(90)])
    kernel7 = rng.normal(size=(7, 7)).round(3).tolist()
    kernel15 = rng.normal(size=(15, 15)).round(3).tolist()
    pixels = rng.integers(0, 256, (32, 32)).tolist()
    lesson = [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]
    form = {"content-type": "multipart/form-data; boundary=soak-boundary"}
    as_json = {"content-type": "application/json"}

    def js(value: Any) -> bytes:
        return json.dumps(value).encode()

    mix = [
        # valid processing
        Kind("sobel-ascent-png", 12, "POST", "/convolve", 200, js({"preset": "sobel-x"}), as_json),
        Kind(
            "kernel7-ascent-json",
            4,
            "POST",
            "/convolve",
            200,
            js({"kernel": kernel7, "border": "mirror", "format": "json"}),
            as_json,
        ),
        Kind(
            "kernel15-ascent",
            3,
            "POST",
            "/convolve",
            200,
            js({"kernel": kernel15, "scale": "abs"}),
            as_json,
        ),
        Kind(
            "codelab-ascent",
            4,
            "POST",
            "/convolve",
            200,
            js({"kernel": lesson, "mode": "codelab"}),
            as_json,
        ),
        Kind("pool-ascent", 8, "POST", "/pool", 200, js({"size": 2}), as_json),
        Kind(
            "pipeline-lesson",
            8,
            "POST",
            "/pipeline",
            200,
            js({"steps": [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]}),
            as_json,
        ),
        Kind(
            "upload-rgb-png",
            8,
            "POST",
            "/convolve",
            200,
            _multipart({"preset": "gaussian-5", "color": "gray"}, png_rgb),
            form,
        ),
        Kind(
            "base64-jpeg-pool",
            4,
            "POST",
            "/pool",
            200,
            js({"image": {"data": base64.b64encode(jpeg).decode()}, "method": "avg", "size": 3}),
            as_json,
        ),
        Kind("upload-gif-pool", 2, "POST", "/pool", 200, _multipart({"size": 2}, gif), form),
        Kind(
            "pixels-json",
            4,
            "POST",
            "/pool",
            200,
            js({"image": {"pixels": pixels}, "format": "json"}),
            as_json,
        ),
        Kind("kernels", 3, "GET", "/kernels", 200),
        Kind("healthz", 2, "GET", "/healthz", 200),
        # invalid and hostile
        Kind("ragged-kernel", 4, "POST", "/convolve", 422, js({"kernel": [[1, 2], [3]]}), as_json),
        Kind(
            "nan-weight", 2, "POST", "/convolve", 422, b'{"preset":"box-3","weight":NaN}', as_json
        ),
        Kind("unknown-field", 2, "POST", "/pool", 422, js({"size": 2, "colour": "gray"}), as_json),
        Kind(
            "garbage-upload",
            3,
            "POST",
            "/pool",
            400,
            _multipart({"size": 2}, bytes(rng.integers(0, 256, 4096, dtype=np.uint8))),
            form,
        ),
        Kind(
            "truncated-png",
            3,
            "POST",
            "/convolve",
            400,
            _multipart({"preset": "sobel-x"}, png_rgb[: len(png_rgb) // 2]),
            form,
        ),
        Kind(
            "bomb-png",
            3,
            "POST",
            "/convolve",
            413,
            _multipart({"preset": "box-3"}, bomb_png()),
            form,
        ),
        Kind("text-plain", 2, "POST", "/pool", 415, b"size=2", {"content-type": "text/plain"}),
        Kind("missing-spec", 1, "POST", "/pool", 422, _multipart(None, png_rgb), form),
        Kind(
            "steps-10000",
            1,
            "POST",
            "/pipeline",
            422,
            js({"steps": [{"op": "pool"}] * 10_000}),
            as_json,
        ),
        Kind("nested-json", 1, "POST", "/pool", 422, b"[" * 100_000 + b"]" * 100_000, as_json),
        Kind(
            "codelab-even",
            1,
            "POST",
            "/convolve",
            422,
            js({"kernel": [[1, 1], [1, 1]], "mode": "codelab"}),
            as_json,
        ),
        Kind("unknown-kernel", 2, "GET", "/kernels/sobel-z", 404),
    ]
    return mix


# --- the server -----------------------------------------------------------------------------


def server_command(port: int, workers: int) -> list[str]:
    if (REPO / "service" / "cli.py").exists():
        serve = ["-m", "service", "serve", "--host", HOST, "--port", str(port)]
        return [sys.executable, *serve, "--workers", str(workers)]
    uvicorn = ["-m", "uvicorn", "service.main:app", "--host", HOST, "--port", str(port)]
    return [sys.executable, *uvicorn, "--workers", str(workers)]


def _rss_mib(pid: int) -> float | None:
    kib = rss_kib(pid)
    return None if kib is None else kib / 1024


def wait_workers(supervisor: int, count: int, deadline_s: float = 30) -> set[int]:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        found = worker_pids(supervisor)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"{count} workers did not start")


# --- the load ---------------------------------------------------------------------------------


@dataclass
class Results:
    """Everything the run measured."""

    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: dict[str, Counter[object]] = field(default_factory=lambda: defaultdict(Counter))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[tuple[str, int]] = field(default_factory=Counter)
    rss_peak: dict[int, float] = field(default_factory=dict)
    seen_workers: set[int] = field(default_factory=set)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + sum(self.errors.values())


async def client_loop(
    base_url: str, mix: list[Kind], seed: int, stop_at: float, results: Results
) -> None:
    rng = random.Random(seed)
    weights = [kind.weight for kind in mix]
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        while time.monotonic() < stop_at:
            kind = rng.choices(mix, weights)[0]
            begin = time.perf_counter()
            try:
                response = await client.request(
                    kind.method, kind.path, content=kind.body or None, headers=kind.headers
                )
                await response.aread()
            except httpx.TransportError as exc:
                results.errors[f"{kind.name}: {type(exc).__name__}"] += 1
                continue
            elapsed = time.perf_counter() - begin
            status = response.status_code
            results.statuses[status] += 1
            results.by_kind[kind.name][status] += 1
            results.latencies[kind.name].append(elapsed)
            if status != kind.expect and not (status == SHED and kind.processing):
                results.unexpected[(kind.name, status)] += 1


async def sample_rss(supervisor: int, stop_at: float, results: Results) -> None:
    while time.monotonic() < stop_at:
        for pid in worker_pids(supervisor):
            results.seen_workers.add(pid)
            value = _rss_mib(pid)
            if value is not None:
                results.rss_peak[pid] = max(results.rss_peak.get(pid, 0.0), value)
        await asyncio.sleep(0.25)


async def run_load(
    base_url: str, supervisor: int, mix: list[Kind], clients: int, duration: float
) -> Results:
    results = Results()
    stop_at = time.monotonic() + duration
    tasks = [client_loop(base_url, mix, 1000 + index, stop_at, results) for index in range(clients)]
    await asyncio.gather(sample_rss(supervisor, stop_at, results), *tasks)
    return results


async def warm_up(base_url: str, mix: list[Kind], rounds: int) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for _ in range(rounds):
            await asyncio.gather(
                *(
                    client.request(k.method, k.path, content=k.body or None, headers=k.headers)
                    for k in mix
                )
            )


# --- report -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def report(
    results: Results,
    duration: float,
    baseline: dict[int, float],
    final: dict[int, float],
    ceiling_mb: float,
    workers_before: set[int],
    workers_after: set[int],
    cpu: dict[int, float],
) -> tuple[list[str], dict[str, Any]]:
    failures: list[str] = []
    every = [value for values in results.latencies.values() for value in values]
    five_xx = {s: n for s, n in results.statuses.items() if s >= 500 and s != SHED}
    if five_xx:
        failures.append(f"5xx other than 503: {five_xx}")
    if results.errors:
        failures.append(f"transport errors: {dict(results.errors)}")
    if results.unexpected:
        failures.append(f"unexpected statuses: {dict(results.unexpected)}")
    if workers_after != workers_before or results.seen_workers != workers_before:
        failures.append(f"worker processes changed: {sorted(results.seen_workers)}")
    growth = {pid: results.rss_peak.get(pid, 0.0) - base for pid, base in baseline.items()}
    for pid, grown in growth.items():
        if grown > ceiling_mb:
            failures.append(f"worker {pid} RSS grew {grown:.0f} MiB > ceiling {ceiling_mb:g} MiB")

    lines = [
        f"requests      {results.requests} in {duration:.0f} s "
        f"({results.requests / duration:.0f} req/s)",
        "statuses      " + ", ".join(f"{s}: {n}" for s, n in sorted(results.statuses.items())),
        f"latency       p50 {percentile(every, 50) * 1000:.1f} ms, "
        f"p99 {percentile(every, 99) * 1000:.1f} ms",
        "",
        f"{'kind':22} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}  statuses",
    ]
    for name in sorted(results.by_kind):
        values = results.latencies[name]
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(results.by_kind[name].items()))
        lines.append(
            f"{name:22} {len(values):>6} {percentile(values, 50) * 1000:>8.1f} "
            f"{percentile(values, 99) * 1000:>8.1f}  {statuses}"
        )
    lines += [
        "",
        f"{'worker':>8} {'baseline MiB':>13} {'peak MiB':>9} {'final MiB':>10} {'CPU s':>7}",
    ]
    for pid in sorted(baseline):
        lines.append(
            f"{pid:>8} {baseline[pid]:>13.0f} {results.rss_peak.get(pid, float('nan')):>9.0f} "
            f"{final.get(pid, float('nan')):>10.0f} {cpu.get(pid, float('nan')):>7.1f}"
        )
    lines.append("")
    lines += [f"FAIL: {reason}" for reason in failures] or ["PASS"]
    figures = {
        "duration_s": duration,
        "requests": results.requests,
        "requests_per_s": results.requests / duration,
        "statuses": {str(s): n for s, n in sorted(results.statuses.items())},
        "p50_ms": percentile(every, 50) * 1000,
        "p99_ms": percentile(every, 99) * 1000,
        "kinds": {
            name: {
                "n": len(results.latencies[name]),
                "p50_ms": percentile(results.latencies[name], 50) * 1000,
                "p99_ms": percentile(results.latencies[name], 99) * 1000,
                "statuses": {str(s): n for s, n in results.by_kind[name].items()},
            }
            for name in sorted(results.by_kind)
        },
        "workers": {
            str(pid): {
                "baseline_mib": baseline[pid],
                "peak_mib": results.rss_peak.get(pid),
                "final_mib": final.get(pid),
                "cpu_s": cpu.get(pid),
            }
            for pid in sorted(baseline)
        },
        "transport_errors": dict(results.errors),
        "failures": failures,
    }
    return lines, figures


# --- main -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (60)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (32)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (2)")
    parser.add_argument(
        "--rss-ceiling-mb",
        type=float,
        default=300,
        help="fail when a worker's peak RSS exceeds its post-warm-up baseline by more (300)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    port = free_port()
    base_url = f"http://{HOST}:{port}"
    env = {**os.environ, "IMGFILTER_LOG_LEVEL": "warning", "PYTHONUNBUFFERED": "1"}
    mix = build_mix()
    with tempfile.TemporaryFile() as server_log:
        process = subprocess.Popen(
            server_command(port, args.workers),
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=server_log,
            start_new_session=True,
        )
        try:
            try:
                wait_healthy(base_url, process, deadline_s=60)
                workers_before = wait_workers(process.pid, args.workers)
            except (RuntimeError, TimeoutError) as exc:
                server_log.seek(0)
                print(f"setup failed: {exc}\n{server_log.read().decode()[-2000:]}", file=sys.stderr)
                return 2
            asyncio.run(warm_up(base_url, mix, rounds=4))
            time.sleep(0.5)
            baseline = {pid: _rss_mib(pid) or 0.0 for pid in workers_before}
            cpu_before = {pid: cpu_seconds(pid) or 0.0 for pid in workers_before}
            print(
                f"soak: {args.clients} clients, {args.duration:g} s, {args.workers} workers "
                f"{sorted(workers_before)} at {base_url}",
                flush=True,
            )
            results = asyncio.run(run_load(base_url, process.pid, mix, args.clients, args.duration))
            time.sleep(1.0)
            workers_after = worker_pids(process.pid)
            final = {pid: value for pid in workers_after if (value := _rss_mib(pid)) is not None}
            cpu = {
                pid: used - cpu_before[pid]
                for pid in workers_before
                if (used := cpu_seconds(pid)) is not None
            }
        finally:
            if process.poll() is None:
                stop_group(process, timeout=30)
    lines, figures = report(
        results,
        args.duration,
        baseline,
        final,
        args.rss_ceiling_mb,
        workers_before,
        workers_after,
        cpu,
    )
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 1 if figures["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
