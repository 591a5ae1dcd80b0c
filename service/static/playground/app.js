// The playground: builds a spec from the form, calls the public API, shows the results.
// Vanilla JS, no build step, no external resources. URLs are relative to the page, so the
// page also works behind a path prefix. API text is always inserted as text, never as HTML.
"use strict";

const $ = (selector) => document.querySelector(selector);
const apiUrl = (path) => new URL(path, document.baseURI).href;
const presets = new Map();
const objectUrls = new Map();
let runId = 0;
let inflight = null;
let debounce = null;

/** An answer of the API with a non-2xx status; `detail` is the API's own words. */
class ApiError extends Error {
  constructor(status, statusText, detail) {
    super(`${status} ${statusText}`);
    this.status = status;
    this.statusText = statusText;
    this.detail = detail;
  }
}

// --- numbers and the kernel grid ---------------------------------------------------------

/** A number for "1.5", "-2", "1e-3" or "1/16"; the text itself otherwise (the API words it). */
function parseNumber(text) {
  const value = text.trim();
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(value)) return Number(value);
  const fraction = value.match(/^([-+]?\d+(?:\.\d*)?)\s*\/\s*(\d+(?:\.\d*)?)$/);
  if (fraction && Number(fraction[2]) !== 0) return Number(fraction[1]) / Number(fraction[2]);
  return value;
}

function gridSize() {
  return Number($("#kernel-size").value);
}

/** Rebuild the grid with `rows` (list of lists), centred and zero-padded to `size`. */
function buildGrid(size, rows) {
  const grid = $("#grid");
  const values = rows || readGridText();
  const offset = Math.floor((size - values.length) / 2);
  grid.replaceChildren();
  grid.style.gridTemplateColumns = `repeat(${size}, 1fr)`;
  for (let r = 0; r < size; r += 1) {
    for (let c = 0; c < size; c += 1) {
      const cell = document.createElement("input");
      cell.type = "text";
      cell.inputMode = "decimal";
      cell.className = "cell";
      cell.setAttribute("aria-label", `kernel row ${r + 1}, column ${c + 1}`);
      const row = values[r - offset];
      const value = row === undefined ? undefined : row[c - Math.floor((size - row.length) / 2)];
      cell.value = value === undefined ? "0" : String(value);
      grid.append(cell);
    }
  }
}

function readGridText() {
  const cells = [...document.querySelectorAll("#grid .cell")];
  const size = Math.round(Math.sqrt(cells.length));
  const rows = [];
  for (let r = 0; r < size; r += 1) rows.push(cells.slice(r * size, (r + 1) * size).map((c) => c.value));
  return rows;
}

function readKernel() {
  return readGridText().map((row) => row.map(parseNumber));
}

function applyPreset(name) {
  const preset = presets.get(name);
  $("#preset-description").textContent = preset ? preset.description : "";
  if (!preset) return;
  const size = preset.kernel.length;
  if (![...$("#kernel-size").options].some((o) => Number(o.value) === size)) {
    $("#kernel-size").add(new Option(`${size}\u00d7${size}`, String(size)));
  }
  $("#kernel-size").value = String(size);
  buildGrid(size, preset.kernel);
  $("#weight").value = String(preset.weight);
}

// --- specs ---------------------------------------------------------------------------------

/** The convolution fields, leaving out what equals the API's default. */
function convolveParams() {
  const params = {};
  const name = $("#preset").value;
  const weight = parseNumber($("#weight").value);
  if (name) {
    params.preset = name;
    if (weight !== presets.get(name).weight) params.weight = weight;
  } else {
    params.kernel = readKernel();
    params.weight = weight;
  }
  if ($("#mode").value === "codelab") {
    params.mode = "codelab";
  } else if ($("#border").value !== "reflect") {
    params.border = $("#border").value;
    if (params.border === "constant") params.cval = parseNumber($("#cval").value);
  }
  if ($("#scale").value !== "clamp") params.scale = $("#scale").value;
  if ($("#color").value !== "auto") params.color = $("#color").value;
  return params;
}

function poolParams() {
  const params = { method: $("#pool-method").value, size: parseNumber($("#pool-size").value) };
  if ($("#pool-stride").value.trim()) params.stride = parseNumber($("#pool-stride").value);
  if ($("#pool-edge").value !== "drop") params.edge = $("#pool-edge").value;
  return params;
}

function selectedFile() {
  const wanted = document.querySelector('input[name="source"]:checked').value === "upload";
  return wanted ? $("#file").files[0] || null : null;
}

// --- calling the API -------------------------------------------------------------------------

function authHeaders() {
  const key = $("#api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function failure(response) {
  let detail;
  const text = await response.text();
  try {
    detail = JSON.parse(text).detail;
  } catch {
    detail = text || response.statusText;
  }
  return new ApiError(response.status, response.statusText, detail);
}

/** POST `spec` to `path` as JSON (ascent) or multipart (an image blob); resolves to a PNG blob. */
async function post(path, spec, image, signal) {
  let init;
  if (image) {
    const form = new FormData();
    form.append("image", image.blob, image.name);
    form.append("spec", JSON.stringify(spec));
    init = { method: "POST", body: form, headers: authHeaders(), signal };
  } else {
    const headers = { "Content-Type": "application/json", ...authHeaders() };
    init = { method: "POST", body: JSON.stringify(spec), headers, signal };
  }
  const response = await fetch(apiUrl(path), init);
  if (!response.ok) throw await failure(response);
  return response.blob();
}

// --- showing results -------------------------------------------------------------------------

/** Size and min/max of a decoded <img> (over the colour channels, alpha left out). */
function imageStats(img) {
  const width = img.naturalWidth;
  const height = img.naturalHeight;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, width, height).data;
  let min = 255;
  let max = 0;
  for (let i = 0; i < data.length; i += 4) {
    for (let k = i; k < i + 3; k += 1) {
      if (data[k] < min) min = data[k];
      if (data[k] > max) max = data[k];
    }
  }
  return { width, height, min, max };
}

async function showImage(id, source, bytes) {
  const figure = document.getElementById(id);
  const img = figure.querySelector("img");
  const meta = figure.querySelector(".meta");
  if (objectUrls.has(id)) URL.revokeObjectURL(objectUrls.get(id));
  objectUrls.delete(id);
  let url = source;
  if (source instanceof Blob) {
    url = URL.createObjectURL(source);
    objectUrls.set(id, url);
  }
  figure.hidden = false;
  img.src = url;
  try {
    await img.decode();
  } catch {
    meta.textContent = "(this browser cannot show this format; the API can still read it)";
    return;
  }
  const s = imageStats(img);
  const size = bytes === undefined ? "" : `, ${(bytes / 1024).toFixed(1)} KiB`;
  meta.textContent = `${s.width}\u00d7${s.height}, min ${s.min}, max ${s.max}${size}`;
  figure.dataset.width = String(s.width);
  figure.dataset.height = String(s.height);
}

/** Scale the shown images by one common factor so they fit side by side (relative sizes kept). */
function layoutFigures() {
  const container = $(".figures");
  const figures = [...container.querySelectorAll("figure:not([hidden])")];
  const images = figures.map((f) => f.querySelector("img")).filter((img) => img.naturalWidth);
  const total = images.reduce((sum, img) => sum + img.naturalWidth, 0);
  const available = container.clientWidth - figures.length * 24 - (figures.length - 1) * 16;
  const scale = total ? Math.min(1, available / total) : 1;
  for (const img of images) {
    // Too small to compare side by side (narrow screens): let them wrap at full width instead.
    img.style.width = scale < 0.3 ? "" : `${Math.floor(img.naturalWidth * scale)}px`;
  }
}

function showError(error) {
  const box = $("#error");
  box.replaceChildren();
  const title = document.createElement("strong");
  const list = document.createElement("ul");
  if (error instanceof ApiError) {
    title.textContent = `The API answered ${error.status} ${error.statusText}`.trim();
    const issues = Array.isArray(error.detail) ? error.detail : [{ msg: String(error.detail) }];
    for (const issue of issues) {
      const item = document.createElement("li");
      if (Array.isArray(issue.loc) && issue.loc.length) {
        const where = document.createElement("code");
        where.textContent = issue.loc.join(".");
        item.append(where, ": ");
      }
      item.append(typeof issue.msg === "string" ? issue.msg : JSON.stringify(issue));
      list.append(item);
    }
  } else {
    title.textContent = "The request did not complete";
    const item = document.createElement("li");
    item.textContent = String(error && error.message ? error.message : error);
    list.append(item);
  }
  box.append(title, list);
  box.hidden = false;
}

// --- the equivalent curl command ---------------------------------------------------------------

const shellQuote = (text) => `'${String(text).replace(/'/g, "'\\''")}'`;

function curlCommand(conv, pooling, file) {
  const path = pooling ? "pipeline" : "convolve";
  const spec = pooling ? { steps: [{ op: "convolve", ...conv }, { op: "pool", ...pooling }] } : conv;
  const lines = [`curl -sS -X POST ${shellQuote(apiUrl(path))}`];
  if ($("#api-key").value.trim()) lines.push('-H "X-API-Key: $IMGFILTER_API_KEY"');
  if (file) {
    lines.push(`-F ${shellQuote(`image=@${file.name}`)}`);
    lines.push(`-F ${shellQuote(`spec=${JSON.stringify(spec)}`)}`);
  } else {
    lines.push("-H 'Content-Type: application/json'");
    lines.push(`-d ${shellQuote(JSON.stringify(spec))}`);
  }
  lines.push(`-o ${pooling ? "pooled" : "convolved"}.png`);
  return lines.join(" \\\n  ");
}

async function copyCurl() {
  const text = $("#curl").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const range = document.createRange();
    range.selectNodeContents($("#curl"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  $("#copy").textContent = "Copied";
  setTimeout(() => {
    $("#copy").textContent = "Copy";
  }, 1500);
}

// --- running ---------------------------------------------------------------------------------

function setStatus(status) {
  document.body.dataset.status = status;
  $("#run").disabled = status === "running";
}

async function run() {
  clearTimeout(debounce);
  const id = ++runId;
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const { signal } = inflight;
  setStatus("running");
  try {
    const file = selectedFile();
    const conv = convolveParams();
    const pooling = $("#pool-on").checked ? poolParams() : null;
    $("#curl").textContent = curlCommand(conv, pooling, file);
    await showImage("original", file || apiUrl("images/ascent"), file ? file.size : undefined);
    const image = file ? { blob: file, name: file.name } : null;
    const convolved = await post("convolve", conv, image, signal);
    let pooled = null;
    if (pooling) {
      // The pipeline's rule: the 8-bit result of the convolution is the pooling's input.
      const input = { blob: convolved, name: "convolved.png" };
      pooled = await post("pool", pooling, input, signal);
    }
    if (id !== runId) return;
    $("#error").hidden = true;
    await showImage("convolved", convolved, convolved.size);
    if (pooled) await showImage("pooled", pooled, pooled.size);
    else $("#pooled").hidden = true;
    layoutFigures();
    if (id === runId) setStatus("done");
  } catch (error) {
    if (id !== runId || (error && error.name === "AbortError")) return;
    showError(error);
    setStatus("error");
  }
}

/** Run shortly after the last change (several quick edits make one request). */
function schedule() {
  clearTimeout(debounce);
  setStatus("pending");
  debounce = setTimeout(run, 250);
}

function syncControls() {
  const codelab = $("#mode").value === "codelab";
  $("#border").disabled = codelab;
  $("#cval").disabled = codelab || $("#border").value !== "constant";
  for (const field of document.querySelectorAll(".pool-field")) field.disabled = !$("#pool-on").checked;
}

async function loadPresets() {
  const response = await fetch(apiUrl("kernels"));
  if (!response.ok) throw await failure(response);
  for (const preset of await response.json()) {
    presets.set(preset.name, preset);
    $("#preset").add(new Option(preset.name, preset.name));
  }
}

async function start() {
  buildGrid(3, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]);
  syncControls();
  const form = $("#controls");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  form.addEventListener("change", (event) => {
    const target = event.target;
    if (target.id === "preset") applyPreset(target.value);
    if (target.id === "kernel-size") {
      $("#preset").value = "";
      $("#preset-description").textContent = "";
      buildGrid(gridSize());
    }
    if (target.id === "file" && target.files.length) {
      document.querySelector('input[name="source"][value="upload"]').checked = true;
    }
    syncControls();
    schedule();
  });
  $("#grid").addEventListener("input", () => {
    if ($("#preset").value) {
      $("#preset").value = "";
      $("#preset-description").textContent = "";
    }
  });
  $("#copy").addEventListener("click", copyCurl);
  window.addEventListener("resize", layoutFigures);
  try {
    await loadPresets();
    if (presets.has("sobel-y")) {
      $("#preset").value = "sobel-y";
      applyPreset("sobel-y");
    }
  } catch (error) {
    showError(error);
  }
  run();
}

document.addEventListener("DOMContentLoaded", start);
