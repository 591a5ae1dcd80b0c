"""The playground and Swagger UI in a real browser: Debian's chromium driven by Playwright.

Skipped when ``/usr/bin/chromium`` or the ``playwright`` package is missing (``.ci/run``
installs chromium; the ``e2e`` extra installs playwright; ``playwright install`` is never run).
axe-core comes from ``tests/e2e/package.json`` (pinned, with its hash in the lock file):
``npm ci`` installs it on first use; the accessibility test skips when npm is missing.
Screenshots go to ``$IMGFILTER_SCREENSHOT_DIR`` when set (``make e2e`` sets ``docs``), else
to the test's temporary directory.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image

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
TIMEOUT_MS = 30_000
E2E = Path(__file__).parent
# The test server's upload limit: the large-upload test sends a JPEG under it whose convolved
# PNG is over it (so the old convolve-then-upload-to-/pool flow would get a 413).
MAX_UPLOAD = 1_200_000
API_KEY = "e2e-test-key-0123456789"
INTERNALS = ("constrained-", "tuple[", "Value error", "Input should", "body.")

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
    env = {"IMGFILTER_LOG_LEVEL": "warning", "IMGFILTER_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}
    with running_server(uvicorn_args(port), port=port, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[Server]:
    """A server whose processing endpoints need ``API_KEY``."""
    port = free_port()
    env = {"IMGFILTER_LOG_LEVEL": "warning", "IMGFILTER_API_KEYS": API_KEY}
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
            viewport={"width": 1440, "height": 900},
            accept_downloads=True,
        )
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture
def requests_seen() -> list[str]:
    """``METHOD URL`` of every request the test's page made."""
    return []


@pytest.fixture
def page(browser: BrowserContext, server: Server, requests_seen: list[str]) -> Iterator[Page]:
    page = browser.new_page()
    page.on("request", lambda request: requests_seen.append(f"{request.method} {request.url}"))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == [], f"script errors on the page: {errors}"


def _screenshot_path(name: str, tmp_path: Path) -> Path:
    directory = os.environ.get("IMGFILTER_SCREENSHOT_DIR")
    target = Path(directory) if directory else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    return target / name


def _assert_local_only(requests: list[str]) -> None:
    urls = [request.split(" ", 1)[1] for request in requests]
    remote = [
        url
        for url in urls
        if urlsplit(url).scheme not in ("blob", "data") and urlsplit(url).hostname != "127.0.0.1"
    ]
    assert remote == [], f"requests left 127.0.0.1: {remote}"


def _posts(requests: list[str]) -> list[str]:
    return [urlsplit(r.split(" ", 1)[1]).path for r in requests if r.startswith("POST ")]


def _shown_pixels(page: Page, selector: str) -> np.ndarray:
    image = page.evaluate(READ_IMAGE, selector)
    assert image["gray"], f"{selector} is not an opaque grayscale image"
    red = np.frombuffer(base64.b64decode(image["red"]), dtype=np.uint8)
    return red.reshape(image["height"], image["width"])


def _wait(page: Page, status: str) -> None:
    page.wait_for_selector(f'body[data-status="{status}"]', state="attached")


def _open(page: Page, server: Server, fragment: str = "") -> None:
    page.goto(f"{server.base_url}/{fragment}")
    _wait(page, "done")


def _api_png(server: Server, path: str, spec: dict[str, Any]) -> np.ndarray:
    response = httpx.post(f"{server.base_url}/{path}", json=spec, timeout=60)
    assert response.status_code == 200, response.text
    return decode_png(response.content)


def _in_view(page: Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    assert box is not None
    assert viewport is not None
    return bool(box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"])


def _no_internals(text: str) -> None:
    for internal in INTERNALS:
        assert internal not in text, f"{internal!r} shown: {text}"


# --- results ---------------------------------------------------------------------------------


def test_playground_sobel_x_then_pool_equals_api_in_one_request(
    page: Page, server: Server, tmp_path: Path, requests_seen: list[str]
) -> None:
    _open(page, server)
    page.select_option("#preset", "sobel-x")
    _wait(page, "done")
    expected = _api_png(server, "convolve", {"preset": "sobel-x"})
    np.testing.assert_array_equal(_shown_pixels(page, "#result img"), expected)
    caption = page.inner_text("#result figcaption")
    assert f"512\u00d7512, min {expected.min()}, max {expected.max()}" in caption
    assert '"preset":"sobel-x"' in page.inner_text("#curl")

    requests_seen.clear()
    page.check("#pool-on")
    _wait(page, "done")
    steps = [{"op": "convolve", "preset": "sobel-x"}, {"op": "pool", "method": "max", "size": 2}]
    pooled = _api_png(server, "pipeline", {"steps": steps})
    np.testing.assert_array_equal(_shown_pixels(page, "#result img"), pooled)
    assert _posts(requests_seen) == ["/pipeline"]  # one request, never /pool
    assert "/pipeline" in page.inner_text("#curl")
    assert "2\u00d72 max-pooled" in page.inner_text("#result-title")
    page.screenshot(path=str(_screenshot_path("playground.png", tmp_path)))
    _assert_local_only(requests_seen)


def _noise_jpeg(path: Path, shape: tuple[int, int]) -> None:
    pixels = np.random.default_rng(16).integers(0, 256, size=shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG", quality=40)


def test_large_upload_with_pooling_is_one_pipeline_request(
    page: Page, server: Server, tmp_path: Path, requests_seen: list[str]
) -> None:
    photo = tmp_path / "noise.jpg"
    _noise_jpeg(photo, (1200, 1400))
    spec = {"preset": "identity"}  # noise stays noise: its PNG does not compress
    with photo.open("rb") as handle:
        convolved = httpx.post(
            f"{server.base_url}/convolve",
            files={"image": ("noise.jpg", handle, "image/jpeg")},
            data={"spec": json.dumps(spec)},
            timeout=60,
        )
    # The premise: the upload fits, its convolved PNG would not (the old two-request flow).
    assert photo.stat().st_size < MAX_UPLOAD < len(convolved.content)

    _open(page, server, "#preset=identity")
    requests_seen.clear()
    page.check("#pool-on")
    page.set_input_files("#file", str(photo))
    page.wait_for_function("document.querySelector('#result-title').textContent.includes('pooled')")
    _wait(page, "done")
    pooled = _shown_pixels(page, "#result img")
    assert pooled.shape == (600, 700)
    steps = [{"op": "convolve", "preset": "identity"}, {"op": "pool", "size": 2}]
    with photo.open("rb") as handle:
        expected = httpx.post(
            f"{server.base_url}/pipeline",
            files={"image": ("noise.jpg", handle, "image/jpeg")},
            data={"spec": json.dumps({"steps": steps})},
            timeout=60,
        )
    np.testing.assert_array_equal(pooled, decode_png(expected.content))
    assert "/pool" not in _posts(requests_seen)
    assert "-F 'image=@noise.jpg'" in page.inner_text("#curl")


# --- errors ----------------------------------------------------------------------------------


def test_kernel_error_names_the_cell_and_clears_the_result(
    page: Page, server: Server, tmp_path: Path
) -> None:
    _open(page, server)
    cell = page.locator("#grid .cell >> nth=5")  # row 2, column 3
    cell.fill("abc")  # no Enter, no blur: the live preview runs it
    _wait(page, "error")
    assert cell.get_attribute("aria-invalid") == "true"
    message = page.inner_text("#kernel-error")
    assert "Kernel row 2, column 3: must be a number" in message
    _no_internals(page.inner_text("#error"))
    assert page.locator("#result img").is_hidden()  # no stale result
    assert page.locator("#download").is_hidden()
    assert page.locator("#result .placeholder").is_visible()
    assert _in_view(page, "#kernel-error")
    page.screenshot(path=str(_screenshot_path("playground-error-kernel.png", tmp_path)))

    cell.fill("1/2")
    _wait(page, "done")
    assert cell.get_attribute("aria-invalid") is None
    assert page.locator("#kernel-error").is_hidden()
    assert page.locator("#result img").is_visible()


def test_pool_size_error_beside_its_control_with_focus(
    page: Page, server: Server, tmp_path: Path
) -> None:
    _open(page, server)
    page.check("#pool-on")
    _wait(page, "done")
    page.fill("#pool-size", "0")
    page.click("#run")
    _wait(page, "error")
    message = page.inner_text("#pool-size-error")
    assert message.startswith("must be \u2265 1")
    _no_internals(page.inner_text("#error"))
    _no_internals(message)
    assert page.evaluate("document.activeElement.id") == "pool-size"
    assert _in_view(page, "#pool-size-error")
    assert _in_view(page, "#error")  # the summary stays in view (the results column is sticky)
    page.screenshot(path=str(_screenshot_path("playground-error-pool.png", tmp_path)))


def test_upload_without_a_file_is_an_error_not_ascent(
    page: Page, server: Server, requests_seen: list[str]
) -> None:
    _open(page, server)
    requests_seen.clear()
    page.check('input[name="source"][value="upload"]')
    _wait(page, "error")
    assert "Choose an image file" in page.inner_text("#file-error")
    assert page.get_attribute("#file", "aria-invalid") == "true"
    assert _posts(requests_seen) == []


def test_text_file_shows_the_api_error_at_the_file(
    page: Page, server: Server, tmp_path: Path
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    _open(page, server)
    page.set_input_files("#file", str(text))
    _wait(page, "error")
    assert "400" in page.inner_text("#error")
    assert page.inner_text("#file-error")
    assert "can still read" not in page.inner_text("#original")
    assert "the API read it" not in page.inner_text("#original")


def test_key_panel_opens_on_401_and_the_key_survives_reload(
    page: Page, keyed_server: Server, tmp_path: Path
) -> None:
    page.goto(f"{keyed_server.base_url}/")
    _wait(page, "error")
    assert "401" in page.inner_text("#error")
    assert page.evaluate("document.querySelector('#key-panel').open")
    assert page.evaluate("document.activeElement.id") == "api-key"
    assert page.is_visible("#api-key-error")
    page.screenshot(path=str(_screenshot_path("playground-401.png", tmp_path)))
    page.fill("#api-key", API_KEY)
    page.click("#run")
    _wait(page, "done")
    page.reload()
    _wait(page, "done")
    assert page.input_value("#api-key") == API_KEY
    assert "X-API-Key: $IMGFILTER_API_KEY" in page.inner_text("#curl")
    assert API_KEY not in page.url


# --- features --------------------------------------------------------------------------------


def test_download_button_saves_the_shown_result(page: Page, server: Server) -> None:
    _open(page, server)
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "convolved.png"
    saved = decode_png(Path(download.path()).read_bytes())
    np.testing.assert_array_equal(saved, _api_png(server, "convolve", {"preset": "sobel-y"}))


def test_setup_in_the_url_restores_the_page(page: Page, server: Server) -> None:
    _open(page, server)
    page.select_option("#preset", "")
    page.select_option("#kernel-size", "5")
    page.fill("#grid .cell >> nth=12", "2")  # the centre of 5x5
    page.fill("#weight", "1/2")
    page.select_option("#border", "constant")
    page.fill("#cval", "9")
    page.check("#pool-on")
    page.select_option("#pool-method", "avg")
    _wait(page, "done")
    shared = page.url
    assert "#" in shared
    shown = _shown_pixels(page, "#result img")

    other = page.context.new_page()
    try:
        _open(other, server, "#" + urlsplit(shared).fragment)
        assert other.input_value("#kernel-size") == "5"
        assert other.input_value("#grid .cell >> nth=12") == "2"
        assert other.input_value("#weight") == "1/2"
        assert other.input_value("#cval") == "9"
        assert other.input_value("#pool-method") == "avg"
        assert other.is_checked("#pool-on")
        np.testing.assert_array_equal(_shown_pixels(other, "#result img"), shown)
    finally:
        other.close()


def test_reset_restores_the_defaults(page: Page, server: Server) -> None:
    _open(page, server)
    page.select_option("#preset", "laplacian")
    page.check("#pool-on")
    page.select_option("#scale", "abs")
    _wait(page, "done")
    page.click("#reset-button")
    _wait(page, "done")
    assert page.input_value("#preset") == "sobel-y"
    assert not page.is_checked("#pool-on")
    assert page.input_value("#scale") == "clamp"
    assert urlsplit(page.url).fragment == "preset=sobel-y"


FOCUSED_CELL = "[document.activeElement.dataset.row, document.activeElement.dataset.col]"


FOCUSED_CELL = "[document.activeElement.dataset.row, document.activeElement.dataset.col]"


def test_live_preview_and_arrow_keys_in_the_grid(page: Page, server: Server) -> None:
    _open(page, server)
    page.select_option("#preset", "identity")
    _wait(page, "done")
    page.click("#grid .cell >> nth=0")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    assert page.evaluate(FOCUSED_CELL) == ["1", "1"]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowUp")
    assert page.evaluate(FOCUSED_CELL) == ["0", "2"]
    page.keyboard.type("3")  # replaces the selected 0; no Enter, no blur
    _wait(page, "done")
    kernel = [[0, 0, 3], [0, 1, 0], [0, 0, 0]]
    expected = _api_png(server, "convolve", {"kernel": kernel, "weight": 1})
    page.wait_for_function("document.querySelector('#preset').value === ''")
    np.testing.assert_array_equal(_shown_pixels(page, "#result img"), expected)


@pytest.mark.parametrize(("preset", "weight"), [("box-3", "1/9"), ("gaussian-5", "1/256")])
def test_weights_show_as_fractions(page: Page, server: Server, preset: str, weight: str) -> None:
    _open(page, server)
    page.select_option("#preset", preset)
    _wait(page, "done")
    assert page.input_value("#weight") == weight
    assert f'"preset":"{preset}"' in page.inner_text("#curl")
    assert '"weight"' not in page.inner_text("#curl")  # the preset's own weight, not sent


def test_before_after_slider(page: Page, server: Server, tmp_path: Path) -> None:
    _open(page, server)
    page.check('input[name="view"][value="compare"]')
    assert page.is_visible("#compare")
    assert page.is_hidden("#side")
    page.fill("#compare-position", "30")
    clip = page.evaluate("getComputedStyle(document.querySelector('#compare-after')).clipPath")
    assert clip == "inset(0px 0px 0px 30%)"
    after = page.evaluate("document.querySelector('#compare-after').src")
    assert after == page.evaluate("document.querySelector('#download').href")
    page.screenshot(path=str(_screenshot_path("playground-compare.png", tmp_path)))


def test_histogram_describes_the_result(page: Page, server: Server) -> None:
    _open(page, server)
    expected = _api_png(server, "convolve", {"preset": "sobel-y"})
    label = page.get_attribute("#histogram", "aria-label") or ""
    zeros = 100 * np.count_nonzero(expected == 0) / expected.size
    assert f"min {expected.min()}, max {expected.max()}, mean {expected.mean():.1f}" in label
    assert f"{zeros:.1f}% of pixels at 0" in label
    painted = page.evaluate(
        """() => {
          const c = document.querySelector('#histogram');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i]) n += 1;
          return n;
        }"""
    )
    assert painted > 1000


def test_phone_shows_original_and_result_together(
    page: Page, server: Server, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    _open(page, server)
    original = page.locator("#original img").bounding_box()
    result = page.locator("#result img").bounding_box()
    assert original is not None
    assert result is not None
    assert abs(original["y"] - result["y"]) < 2  # side by side
    assert result["x"] + result["width"] <= 390
    assert result["y"] + result["height"] < 844 / 2  # at the top, not 1,200 px down
    page.screenshot(path=str(_screenshot_path("playground-phone.png", tmp_path)))
    page.fill("#grid .cell >> nth=0", "x")
    _wait(page, "error")
    page.screenshot(path=str(_screenshot_path("playground-phone-error.png", tmp_path)))


def test_curl_shown_fails_on_an_api_error(page: Page, server: Server) -> None:
    curl = shutil.which("curl")
    _open(page, server)
    page.fill("#weight", "heavy")
    _wait(page, "error")
    command = page.inner_text("#curl")
    assert command.startswith("curl -sS --fail-with-body ")
    if curl is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        ["/bin/bash", "-c", command.replace("-o convolved.png", "-o /dev/null")],
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 22  # curl's "HTTP page not retrieved" (a 4xx with --fail)


def test_dark_mode(page: Page, server: Server, tmp_path: Path) -> None:
    page.emulate_media(color_scheme="dark")
    _open(page, server)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(21, 23, 26)"
    page.screenshot(path=str(_screenshot_path("playground-dark.png", tmp_path)))
    page.fill("#grid .cell >> nth=4", "?")
    _wait(page, "error")
    page.screenshot(path=str(_screenshot_path("playground-dark-error.png", tmp_path)))


# --- accessibility -------------------------------------------------------------------------


def _axe_script() -> Path:
    script = E2E / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is missing: cannot install axe-core from tests/e2e/package.json")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=E2E,
            check=True,
            capture_output=True,
            timeout=300,
        )
    return script


def _axe_violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(_axe_script()))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("critical", "serious")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_critical_or_serious_violation(
    page: Page, server: Server, scheme: str
) -> None:
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    _open(page, server)
    page.check("#pool-on")
    _wait(page, "done")
    assert _axe_violations(page) == []
    page.fill("#pool-size", "0")  # the error state too
    _wait(page, "error")
    assert _axe_violations(page) == []
    page.select_option("#op", "pool")  # a generated form, with an error in it
    page.fill("#pool-size", "2")
    page.fill("#op-pool-size", "0")
    _wait(page, "error")
    assert page.is_visible("#op-pool-size-error")
    assert _axe_violations(page) == []


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_declare_their_language(page: Page, server: Server, path: str) -> None:
    page.goto(f"{server.base_url}{path}")
    assert page.evaluate("document.documentElement.lang") == "en"


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


def test_too_large_upload_is_reported_at_the_file(
    page: Page, server: Server, tmp_path: Path
) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(np.random.default_rng(0).bytes(MAX_UPLOAD + 100_000))
    _open(page, server)
    page.set_input_files("#file", str(big))
    _wait(page, "error")
    assert "413" in page.inner_text("#error")
    assert "larger than this server accepts" in page.inner_text("#file-error")
    assert page.locator("#result img").is_hidden()


@pytest.mark.parametrize(
    ("preset", "words"),
    [
        ("box-3", "Sum \u00d7 weight = 1: flat areas keep their brightness."),
        ("sobel-y", "Sum \u00d7 weight = 0: flat areas go to 0: only changes (edges) remain."),
    ],
)
def test_kernel_sum_says_what_happens_to_flat_areas(
    page: Page, server: Server, preset: str, words: str
) -> None:
    _open(page, server)
    page.select_option("#preset", preset)
    _wait(page, "done")
    assert page.inner_text("#kernel-sum") == words
    page.fill("#weight", "2")
    gain = "18" if preset == "box-3" else "0"  # box-3: nine 1s
    assert page.inner_text("#kernel-sum").startswith(f"Sum \u00d7 weight = {gain}:")


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


# --- the operations (GET /operations) --------------------------------------------------------

# A synthetic step operation the tests add to GET /operations: one field of each kind the page
# generates a control for (enum, boolean, number, int-or-pair, string-or-matrix), a field with
# `_` in its name, and `format` (left out of the form).
FAKE_OP: dict[str, Any] = {
    "name": "fake-op",
    "path": "/fake-op",
    "summary": "A made-up operation (test only)",
    "description": "Exists only in the browser tests.",
    "step": True,
    "spec": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "format": {"enum": ["png", "json", "npy"], "default": "png", "type": "string"},
            "method": {
                "enum": ["alpha", "beta", "gamma"],
                "default": "beta",
                "type": "string",
                "title": "Method",
                "description": "Which `way` to go.",
            },
            "invert": {"type": "boolean", "default": False, "description": "Invert first."},
            "amount": {
                "anyOf": [{"type": "number"}, {"type": "null"}],
                "default": None,
                "title": "Amount",
                "description": "How much. Default: `1.5`.",
            },
            "window": {
                "anyOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "array", "items": {"type": "integer"}, "minItems": 2},
                ],
                "default": 3,
                "title": "Window",
                "description": "Side, or [rows, cols].",
            },
            "kernel_a": {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                ],
                "default": "sobel-x",
                "title": "Kernel A",
                "description": "A preset name or a matrix.",
            },
        },
    },
}
FAKE_PNG = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5


def _step_operations(server: Server) -> list[str]:
    operations = httpx.get(f"{server.base_url}/operations", timeout=30).json()
    return [operation["name"] for operation in operations if operation["step"]]


def _options(page: Page, selector: str) -> list[str]:
    return list(page.eval_on_selector_all(f"{selector} option", "os => os.map(o => o.value)"))


def _with_fake_op(page: Page, bodies: list[Any]) -> None:
    """GET /operations lists FAKE_OP too; POST /fake-op records its JSON body, answers FAKE_PNG."""

    def operations(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, json=[*response.json(), FAKE_OP])

    def fake(route: Any) -> None:
        bodies.append(route.request.post_data_json)
        route.fulfill(status=200, content_type="image/png", body=png_bytes(FAKE_PNG))

    page.route("**/operations", operations)
    page.route("**/fake-op", fake)


def _run(page: Page) -> None:
    page.click("#run")
    _wait(page, "done")


def _bodies_of(requests: list[Any], path: str) -> list[Any]:
    return [r.post_data_json for r in requests if urlsplit(r.url).path == path]


def _run_cli(line: str, output: Path) -> np.ndarray:
    """Run a CLI line the page shows (this checkout's ``imgfilter``) in ``output``'s directory."""
    command = line.replace("imgfilter ", f"{shlex.quote(sys.executable)} -m service ", 1)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(
        ["/bin/bash", "-c", command],
        cwd=output.parent,
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return decode_png(output.read_bytes())


def test_operation_selector_lists_the_step_operations(page: Page, server: Server) -> None:
    expected = _step_operations(server)
    assert expected[0] == "convolve"
    assert len(expected) >= 2  # convolve and pool at least
    _open(page, server)
    assert _options(page, "#op") == expected
    assert page.input_value("#op") == "convolve"
    assert page.is_visible("#preset")  # convolve keeps its own editor
    assert page.is_hidden("#op-fields")
    assert page.inner_text("#op-summary") == "Convolve an image with a kernel"
    assert page.is_hidden("#op-note")


def test_operations_unavailable_leaves_convolve_and_says_why(
    page: Page, server: Server, requests_seen: list[str]
) -> None:
    page.route("**/operations", lambda route: route.fulfill(status=503, json={"detail": "down"}))
    _open(page, server, "#op=pool&op.size=4")
    assert _options(page, "#op") == ["convolve"]
    assert page.is_visible("#preset")
    note = page.inner_text("#op-note")
    assert "Only convolve is offered" in note
    assert "503" in note
    assert '"pool" is not offered here' in note
    assert page.is_hidden("#error")  # quiet: not an error of the run
    assert _posts(requests_seen) == ["/convolve"]


def test_extra_operation_gets_a_generated_form_and_sends_only_what_is_set(
    page: Page, server: Server, tmp_path: Path
) -> None:
    bodies: list[Any] = []
    _with_fake_op(page, bodies)
    _open(page, server)
    assert _options(page, "#op")[-1] == "fake-op"
    page.select_option("#op", "fake-op")
    _wait(page, "done")
    assert bodies == [{}]  # every field at its default: nothing sent
    assert page.is_hidden("#preset")
    assert page.inner_text("#op-summary") == FAKE_OP["summary"]
    assert page.locator("#op-fake-op-format").count() == 0
    assert _options(page, "#op-fake-op-method") == ["alpha", "beta", "gamma"]
    assert page.input_value("#op-fake-op-method") == "beta"
    assert page.get_attribute("#op-fake-op-invert", "type") == "checkbox"
    assert not page.is_checked("#op-fake-op-invert")
    assert page.get_attribute("#op-fake-op-amount", "inputmode") == "decimal"
    assert page.get_attribute("#op-fake-op-amount", "placeholder") == "1.5"
    assert page.get_attribute("#op-fake-op-window", "placeholder") == "3"
    assert page.get_attribute("#op-fake-op-kernel_a", "placeholder") == "sobel-x"
    assert page.inner_text("#op-fake-op-method-hint") == "Which way to go."
    assert page.locator("#op-fake-op-method-hint code").inner_text() == "way"
    assert page.get_by_label("Kernel A").get_attribute("id") == "op-fake-op-kernel_a"

    page.select_option("#op-fake-op-method", "gamma")
    page.check("#op-fake-op-invert")
    page.fill("#op-fake-op-amount", "1/4")
    page.fill("#op-fake-op-window", "[2, 3]")
    page.fill("#op-fake-op-kernel_a", "laplacian")  # a bare word: a string
    _run(page)
    sent = {"method": "gamma", "invert": True, "amount": 0.25, "window": [2, 3]}
    sent["kernel_a"] = "laplacian"
    assert bodies[-1] == sent
    np.testing.assert_array_equal(_shown_pixels(page, "#result img"), FAKE_PNG)
    assert page.inner_text("#result-title") == "Fake-op"
    assert page.get_attribute("#download", "download") == "fake-op.png"
    curl = page.inner_text("#curl")
    assert f"{server.base_url}/fake-op" in curl
    assert json.dumps(sent, separators=(",", ":")) in curl
    assert page.inner_text("#cli") == (
        "imgfilter fake-op ascent --method gamma --invert --amount 0.25 --window '[2,3]' "
        "--kernel-a laplacian -o fake-op.png"
    )

    page.fill("#op-fake-op-amount", "")  # emptied: not sent (the server's default)
    page.uncheck("#op-fake-op-invert")
    _run(page)
    assert bodies[-1] == {"method": "gamma", "window": [2, 3], "kernel_a": "laplacian"}

    other = page.context.new_page()
    try:
        _with_fake_op(other, bodies)
        _open(other, server, "#" + urlsplit(page.url).fragment)
        assert other.input_value("#op") == "fake-op"
        assert other.input_value("#op-fake-op-method") == "gamma"
        assert other.input_value("#op-fake-op-window") == "[2, 3]"
        assert not other.is_checked("#op-fake-op-invert")
        assert bodies[-1] == {"method": "gamma", "window": [2, 3], "kernel_a": "laplacian"}
    finally:
        other.close()


def test_generated_field_error_shows_under_its_control(
    page: Page, server: Server, tmp_path: Path
) -> None:
    _open(page, server)
    page.select_option("#op", "pool")
    _wait(page, "done")
    page.fill("#op-pool-size", "0")
    page.click("#run")
    _wait(page, "error")
    assert page.inner_text("#op-pool-size-error").startswith("must be \u2265 1")
    assert page.get_attribute("#op-pool-size", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "op-pool-size"
    _no_internals(page.inner_text("#error"))
    assert page.locator("#result img").is_hidden()

    page.check("#pool-on")  # the same field as step 0 of a pipeline: ["body", "steps", 0, "size"]
    _wait(page, "error")
    assert page.inner_text("#op-pool-size-error").startswith("must be \u2265 1")
    assert page.is_hidden("#pool-size-error")  # not the pooling step's size
    page.fill("#op-pool-size", "3")
    _wait(page, "done")
    assert page.get_attribute("#op-pool-size", "aria-invalid") is None
    assert page.is_hidden("#op-pool-size-error")


def test_pooling_step_after_the_selected_operation(
    page: Page, server: Server, tmp_path: Path
) -> None:
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    _open(page, server, "#op=pool&op.size=4&op.method=avg")
    assert page.input_value("#op") == "pool"
    assert page.input_value("#op-pool-size") == "4"
    assert _bodies_of(requests, "/pool") == [{"method": "avg", "size": 4}]
    requests.clear()
    page.check("#pool-on")
    _wait(page, "done")
    steps = [{"op": "pool", "method": "avg", "size": 4}, {"op": "pool", "method": "max", "size": 2}]
    assert _bodies_of(requests, "/pipeline") == [{"steps": steps}]
    shown = _shown_pixels(page, "#result img")
    np.testing.assert_array_equal(shown, _api_png(server, "pipeline", {"steps": steps}))
    assert shown.shape == (64, 64)
    assert page.inner_text("#result-title") == "Pool, then 2\u00d72 max-pooled"
    assert page.get_attribute("#download", "download") == "pool-pooled.png"
    page.screenshot(path=str(_screenshot_path("playground-operation.png", tmp_path)))

    # The CLI line shown gives the same pixels, locally.
    cli = page.inner_text("#cli")
    assert cli.startswith("imgfilter pipeline ascent --steps '")
    np.testing.assert_array_equal(_run_cli(cli, tmp_path / "pool-pooled.png"), shown)


def test_convolve_cli_line_gives_the_shown_result(
    page: Page, server: Server, tmp_path: Path
) -> None:
    _open(page, server, "#preset=box-3&border=constant&cval=40")
    cli = page.inner_text("#cli")
    assert cli == (
        "imgfilter convolve ascent --preset box-3 --border constant --cval 40 -o convolved.png"
    )
    shown = _shown_pixels(page, "#result img")
    np.testing.assert_array_equal(_run_cli(cli, tmp_path / "convolved.png"), shown)
