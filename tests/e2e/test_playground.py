"""The playground and Swagger UI in a real browser: Debian's chromium driven by Playwright.

Skipped when ``/usr/bin/chromium`` or the ``playwright`` package is missing (``.ci/run``
installs chromium; the ``e2e`` extra installs playwright; ``playwright install`` is never run).
Screenshots go to ``$IMGFILTER_SCREENSHOT_DIR`` when set (``make e2e`` sets ``docs``), else
to the test's temporary directory.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from tests.conftest import decode_png, png_bytes

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page
from tests.servers import Server, free_port, running_server, uvicorn_args

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.slow

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000

# Reads an <img> through a canvas: its size, whether it is opaque gray, and the red channel.
READ_IMAGE = """(selector) => {
  const img = document.querySelector(selector);
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const red = new Uint8Array(data.length / 4);
  let gray = true;
  for (let i = 0, j = 0; i < data.length; i += 4, j += 1) {
    red[j] = data[i];
    if (data[i] !== data[i + 1] || data[i] !== data[i + 2] || data[i + 3] !== 255) gray = false;
  }
  let text = "";
  for (let i = 0; i < red.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, red.subarray(i, i + 0x8000));
  }
  return { width: canvas.width, height: canvas.height, gray, red: btoa(text) };
}"""


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    port = free_port()
    env = {"IMGFILTER_LOG_LEVEL": "warning"}
    with running_server(uvicorn_args(port), port=port, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
            viewport={"width": 1480, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture
def requests_seen() -> list[str]:
    """The URL of every request the test's page made."""
    return []


@pytest.fixture
def page(browser: BrowserContext, server: Server, requests_seen: list[str]) -> Iterator[Page]:
    page = browser.new_page()
    page.on("request", lambda request: requests_seen.append(request.url))
    yield page
    page.close()


def _screenshot_path(name: str, tmp_path: Path) -> Path:
    directory = os.environ.get("IMGFILTER_SCREENSHOT_DIR")
    target = Path(directory) if directory else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    return target / name


def _assert_local_only(urls: list[str]) -> None:
    remote = [
        url
        for url in urls
        if urlsplit(url).scheme not in ("blob", "data") and urlsplit(url).hostname != "127.0.0.1"
    ]
    assert remote == [], f"requests left 127.0.0.1: {remote}"


def _shown_pixels(page: Page, selector: str) -> np.ndarray:
    image = page.evaluate(READ_IMAGE, selector)
    assert image["gray"], f"{selector} is not an opaque grayscale image"
    red = np.frombuffer(base64.b64decode(image["red"]), dtype=np.uint8)
    return red.reshape(image["height"], image["width"])


def _wait_done(page: Page) -> None:
    page.wait_for_selector('body[data-status="done"]', state="attached")


def test_playground_sobel_x_equals_api(
    page: Page, server: Server, tmp_path: Path, requests_seen: list[str]
) -> None:
    page.goto(f"{server.base_url}/")
    _wait_done(page)
    page.select_option("#preset", "sobel-x")
    _wait_done(page)
    expected = decode_png(
        httpx.post(f"{server.base_url}/convolve", json={"preset": "sobel-x"}).content
    )
    np.testing.assert_array_equal(_shown_pixels(page, "#convolved img"), expected)
    caption = page.inner_text("#convolved figcaption")
    assert f"512\u00d7512, min {expected.min()}, max {expected.max()}" in caption
    assert '"preset":"sobel-x"' in page.inner_text("#curl")

    page.check("#pool-on")
    _wait_done(page)
    steps = [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "size": 2}]
    pooled = httpx.post(f"{server.base_url}/pipeline", json={"steps": steps}).content
    np.testing.assert_array_equal(_shown_pixels(page, "#pooled img"), decode_png(pooled))
    assert "/pipeline" in page.inner_text("#curl")
    page.screenshot(path=str(_screenshot_path("playground.png", tmp_path)), full_page=True)
    _assert_local_only(requests_seen)


def test_playground_invalid_kernel_shows_api_error(page: Page, server: Server) -> None:
    page.goto(f"{server.base_url}/")
    _wait_done(page)
    page.fill("#grid .cell >> nth=0", "abc")
    page.press("#grid .cell >> nth=0", "Enter")
    page.wait_for_selector('body[data-status="error"]', state="attached")
    kernel = [["abc", -2, -1], [0, 0, 0], [1, 2, 1]]
    api = httpx.post(f"{server.base_url}/convolve", json={"kernel": kernel, "weight": 1})
    assert api.status_code == 422
    issue = api.json()["detail"][0]
    error = page.inner_text("#error")
    assert "422" in error
    assert f"{'.'.join(map(str, issue['loc']))}: {issue['msg']}" in error


def test_swagger_try_it_out_renders_png(
    page: Page, server: Server, tmp_path: Path, requests_seen: list[str]
) -> None:
    page.goto(f"{server.base_url}/docs")
    operation = page.locator("#operations-convolve-convolve")
    operation.locator(".opblock-summary").click()
    try_it = operation.locator("button.try-out__btn")
    if try_it.count() and "Try it out" in try_it.inner_text():
        try_it.click()
    body = operation.locator("textarea.body-param__text")
    assert json.loads(body.input_value())["image"] == "ascent"
    image = _execute_shows_image(page, operation)
    assert image.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [512, 512]
    assert (
        "200"
        in operation.locator(".live-responses-table tr.response .response-col_status").inner_text()
    )
    image.evaluate("(img) => img.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(_screenshot_path("swagger.png", tmp_path)))
    _assert_local_only(requests_seen)


def test_swagger_try_it_out_uploads_a_file(page: Page, server: Server, tmp_path: Path) -> None:
    """The multipart operation: Swagger sends `spec` as an application/json part with a file."""
    upload = tmp_path / "small.png"
    upload.write_bytes(png_bytes(np.arange(48, dtype=np.uint8).reshape(6, 8)))
    page.goto(f"{server.base_url}/docs")
    operation = page.locator("#operations-pool-poolUpload")
    operation.locator(".opblock-summary").click()
    operation.locator('input[type="file"]').set_input_files(str(upload))
    image = _execute_shows_image(page, operation)
    assert image.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [4, 3]


def _execute_shows_image(page: Page, operation: Locator) -> Locator:
    """Click Swagger's Execute; the answer's image once it has loaded."""
    operation.locator("button.execute").click()
    image = operation.locator(".live-responses-table img")
    image.wait_for()
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )
    return image
