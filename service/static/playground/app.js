// The playground: builds a spec from the form, calls the public API once per run (/<op>, or
// /pipeline with the pooling step), shows the result beside the original. The operations come
// from GET /operations: convolve has its own kernel editor, any other step operation a form
// generated from its spec's JSON Schema.
// Vanilla JS, no build step, no external resources. URLs are relative to the page, so the
// page also works behind a path prefix. API text is always inserted as text, never as HTML.
"use strict";

const $ = (selector) => document.querySelector(selector);
const apiUrl = (path) => new URL(path, document.baseURI).href;
const presets = new Map();
const CONVOLVE = "convolve";
/** The step operations of GET /operations by name (convolve first), and their generated forms. */
const operations = new Map();
const opForms = new Map();
/** Spec fields a generated form leaves out: the answer's encoding, and the Image box's colour. */
const SKIPPED_FIELDS = ["format", "color"];
const objectUrls = new Map();
const KEY_STORE = "imgfilter.apiKey";
const DEFAULT_PRESET = "sobel-y";
const LIVE_DELAY_MS = 300;
let runId = 0;
let inflight = null;
let debounce = null;
let originalHistogram = null;

/** An answer of the API with a non-2xx status; `detail` is the API's own words. */
class ApiError extends Error {
  constructor(status, statusText, detail) {
    super(`${status} ${statusText}`);
    this.status = status;
    this.statusText = statusText;
    this.detail = detail;
  }
}

/** A problem found before calling the API, tied to one control. */
class FormError extends Error {
  constructor(control, message) {
    super(message);
    this.control = control;
  }
}

// --- numbers and the kernel grid ---------------------------------------------------------

/** A number for "1.5", "-2", "1e-3" or "1/16"; the text itself otherwise (the API words it). */
function parseNumber(text) {
  const value = String(text).trim();
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(value)) return Number(value);
  const fraction = value.match(/^([-+]?\d+(?:\.\d*)?)\s*\/\s*(\d+(?:\.\d*)?)$/);
  if (fraction && Number(fraction[2]) !== 0) return Number(fraction[1]) / Number(fraction[2]);
  return value;
}

/** "1/9" for 0.1111111111111111, "1/256" for 0.00390625; short decimals and integers as is. */
function formatNumber(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value);
  const text = String(value);
  const decimals = (text.split(".")[1] || "").length;
  if (Number.isInteger(value) || (decimals <= 3 && !text.includes("e"))) return text;
  for (let d = 2; d <= 4096; d += 1) {
    const n = Math.round(value * d);
    if (n / d === value) return `${n}/${d}`;
  }
  return text;
}

function gridSize() {
  return Number($("#kernel-size").value);
}

function cells() {
  return [...document.querySelectorAll("#grid .cell")];
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
      cell.dataset.row = String(r);
      cell.dataset.col = String(c);
      cell.setAttribute("aria-label", `kernel row ${r + 1}, column ${c + 1}`);
      const row = values[r - offset];
      const value = row === undefined ? undefined : row[c - Math.floor((size - row.length) / 2)];
      cell.value = value === undefined ? "0" : typeof value === "number" ? formatNumber(value) : value;
      grid.append(cell);
    }
  }
}

function readGridText() {
  const all = cells();
  const size = Math.round(Math.sqrt(all.length));
  const rows = [];
  for (let r = 0; r < size; r += 1) rows.push(all.slice(r * size, (r + 1) * size).map((c) => c.value));
  return rows;
}

function readKernel() {
  return readGridText().map((row) => row.map(parseNumber));
}

function ensureSizeOption(size) {
  if (![...$("#kernel-size").options].some((o) => Number(o.value) === size)) {
    $("#kernel-size").add(new Option(`${size}\u00d7${size}`, String(size)));
  }
  $("#kernel-size").value = String(size);
}

function applyPreset(name) {
  const preset = presets.get(name);
  $("#preset-description").textContent = preset ? preset.description : "";
  if (!preset) return;
  ensureSizeOption(preset.kernel.length);
  buildGrid(preset.kernel.length, preset.kernel);
  $("#weight").value = formatNumber(preset.weight);
}

/** Arrow keys move between cells (left/right only at the text's edge); Enter runs now. */
function gridKeys(event) {
  const cell = event.target;
  if (!cell.classList.contains("cell")) return;
  const size = gridSize();
  let r = Number(cell.dataset.row);
  let c = Number(cell.dataset.col);
  // The caret at the text's edge, or the whole text selected (as after a move): the arrow moves.
  const atStart = cell.selectionStart === 0;
  const atEnd = cell.selectionEnd === cell.value.length;
  if (event.key === "ArrowUp") r -= 1;
  else if (event.key === "ArrowDown") r += 1;
  else if (event.key === "ArrowLeft" && atStart) c -= 1;
  else if (event.key === "ArrowRight" && atEnd) c += 1;
  else return;
  if (r < 0 || c < 0 || r >= size || c >= size) return;
  event.preventDefault();
  const next = cells()[r * size + c];
  next.focus();
  next.select();
}

/** What the kernel does to a flat area: its sum times the weight (the gain at zero frequency). */
function describeSum() {
  const values = readKernel().flat();
  const weight = parseNumber($("#weight").value);
  const box = $("#kernel-sum");
  if (values.some((v) => typeof v !== "number") || typeof weight !== "number") {
    box.textContent = "";
    return;
  }
  const gain = values.reduce((sum, v) => sum + v, 0) * weight;
  const shown = formatNumber(Math.round(gain * 1e9) / 1e9);
  let effect = `flat areas are multiplied by ${shown}`;
  if (Math.abs(gain - 1) < 1e-9) effect = "flat areas keep their brightness";
  else if (Math.abs(gain) < 1e-9) effect = "flat areas go to 0: only changes (edges) remain";
  box.textContent = `Sum \u00d7 weight = ${shown}: ${effect}.`;
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
  const params = { method: $("#pool-method").value, size: parseWindow($("#pool-size").value) };
  if ($("#pool-stride").value.trim()) params.stride = parseWindow($("#pool-stride").value);
  if ($("#pool-edge").value !== "drop") params.edge = $("#pool-edge").value;
  return params;
}

/** "2" -> 2, "2,3" or "2x3" -> [2, 3]; anything else as typed (the API words the problem). */
function parseWindow(text) {
  const pair = String(text).trim().match(/^(\d+)\s*[,x\u00d7]\s*(\d+)$/i);
  return pair ? [Number(pair[1]), Number(pair[2])] : parseNumber(text);
}

function uploadWanted() {
  return document.querySelector('input[name="source"]:checked').value === "upload";
}

function selectedFile() {
  if (!uploadWanted()) return null;
  const file = $("#file").files[0];
  if (!file) throw new FormError($("#file"), "Choose an image file to upload, or pick ascent.");
  return file;
}

/** The one request of a run: /<op>, or /pipeline when the pooling step is on. */
function request(op, params, pooling) {
  if (!pooling) return { path: opPath(op), spec: params };
  return { path: "pipeline", spec: { steps: [{ op, ...params }, { op: "pool", ...pooling }] } };
}

// --- the operations and their generated forms ----------------------------------------------

function selectedOp() {
  return $("#op").value || CONVOLVE;
}

/** The API path of `op`, relative to the page (the list's `path`, else its name). */
function opPath(op) {
  const entry = operations.get(op);
  return (entry && typeof entry.path === "string" ? entry.path : op).replace(/^\/+/, "");
}

/** Whether `op`'s spec has a `color` field (the Image box's Color select then applies). */
function opUsesColor(op) {
  const entry = operations.get(op);
  return op === CONVOLVE || Boolean(entry && entry.spec && entry.spec.properties && entry.spec.properties.color);
}

/** A quiet line under the selector (the list could not be read, a link's operation is unknown). */
function noteOperations(text) {
  const note = $("#op-note");
  note.textContent = note.textContent ? `${note.textContent} ${text}` : text;
  note.hidden = false;
}

/** Fill the selector with the step operations of GET /operations, convolve first. */
async function loadOperations() {
  let list;
  try {
    const response = await fetch(apiUrl("operations"));
    if (!response.ok) throw await failure(response);
    list = await response.json();
    if (!Array.isArray(list)) throw new Error("the answer is not a list");
  } catch (error) {
    const why = error instanceof ApiError ? `it answered ${error.message}` : String(error.message || error);
    noteOperations(`Only convolve is offered: the list of operations (GET operations) could not be read (${why}).`);
    return;
  }
  const steps = list.filter((entry) => entry && entry.step === true && typeof entry.name === "string");
  if (!steps.length) {
    noteOperations("Only convolve is offered: the server lists no step operation.");
    return;
  }
  steps.sort((a, b) => Number(b.name === CONVOLVE) - Number(a.name === CONVOLVE));
  const select = $("#op");
  select.replaceChildren();
  for (const entry of steps) {
    operations.set(entry.name, entry);
    const first = entry === steps[0];
    select.add(new Option(entry.name, entry.name, first, first));
  }
}

/** A schema with its `$ref` (to the spec's `$defs`) or single `allOf` resolved. */
function resolveSchema(schema, root) {
  if (!schema || typeof schema !== "object") return {};
  const { $ref: ref, allOf, ...rest } = schema;
  if (typeof ref === "string" && ref.startsWith("#/$defs/")) {
    const target = (root.$defs || {})[ref.slice("#/$defs/".length)];
    return { ...resolveSchema(target, root), ...rest };
  }
  if (Array.isArray(allOf) && allOf.length === 1) return { ...resolveSchema(allOf[0], root), ...rest };
  return schema;
}

/**
 * How a spec field is edited: "select" (one enum), "checkbox" (a boolean), "number" (a number
 * or integer), else "json" (arrays, unions such as int-or-pair: JSON, or a bare word as a string).
 * A `null` alternative only means "optional" and is ignored.
 */
function fieldKind(prop, root) {
  const alternatives = (Array.isArray(prop.anyOf) ? prop.anyOf : Array.isArray(prop.oneOf) ? prop.oneOf : [prop])
    .map((kind) => resolveSchema(kind, root))
    .filter((kind) => kind.type !== "null");
  if (alternatives.length !== 1) return { kind: "json" };
  const only = alternatives[0];
  if (Array.isArray(only.enum) && only.enum.length) return { kind: "select", values: only.enum };
  if (only.type === "boolean") return { kind: "checkbox" };
  if (only.type === "number" || only.type === "integer") return { kind: "number", integer: only.type === "integer" };
  return { kind: "json" };
}

/** The field's default as text: "Default: `...`" in its description, else the schema's `default`. */
function fieldDefault(prop) {
  const words = String(prop.description || "").match(/Default: `([^`]*)`/);
  if (words) return words[1];
  if (prop.default === undefined || prop.default === null) return "";
  return typeof prop.default === "string" ? prop.default : JSON.stringify(prop.default);
}

/** `text` into `node`, with `code` spans as <code> (as text: never parsed as HTML). */
function appendRichText(node, text) {
  String(text)
    .split("`")
    .forEach((part, index) => {
      if (!part) return;
      if (index % 2 === 0) {
        node.append(part);
        return;
      }
      const code = document.createElement("code");
      code.textContent = part;
      node.append(code);
    });
}

/** One generated control: a label around it, its help text and its error line (ids for both). */
function buildField(op, name, prop, root, required) {
  const id = `op-${op}-${name}`.replace(/[^A-Za-z0-9_-]/g, "_");
  const { kind, values, integer } = fieldKind(prop, root);
  const fallback = fieldDefault(prop);
  const title = typeof prop.title === "string" && prop.title ? prop.title : name;
  const label = document.createElement("label");
  const hint = document.createElement("p");
  const error = document.createElement("p");
  hint.id = `${id}-hint`;
  hint.className = "hint";
  appendRichText(hint, prop.description || "");
  error.id = `${id}-error`;
  error.className = "field-error";
  error.hidden = true;
  const field = { name, kind, title, errorId: error.id, initial: "" };
  let control;
  if (kind === "select") {
    control = document.createElement("select");
    field.values = new Map(values.map((value) => [String(value), value]));
    const initial = values.some((value) => value === prop.default) ? String(prop.default) : fallback;
    if (!field.values.has(initial)) control.add(new Option("(not set)", "", true, true));
    for (const value of values) {
      const text = String(value);
      control.add(new Option(text, text, text === initial, text === initial));
    }
    field.initial = control.value;
  } else {
    control = document.createElement("input");
    if (kind === "checkbox") {
      control.type = "checkbox";
      control.defaultChecked = prop.default === true;
      control.checked = control.defaultChecked;
      field.initial = String(control.checked);
    } else {
      control.type = "text";
      control.placeholder = fallback;
      if (kind === "number") control.inputMode = integer ? "numeric" : "decimal";
      control.spellcheck = false;
    }
  }
  control.id = id;
  control.dataset.field = name;
  control.setAttribute("aria-describedby", `${hint.id} ${error.id}`);
  if (required) control.setAttribute("aria-required", "true");
  const words = `${title}${required ? " (required)" : ""}`;
  if (kind === "checkbox") {
    label.className = "inline";
    label.append(control, ` ${words}`);
  } else {
    label.append(`${words} `, control);
  }
  field.control = control;
  return { field, nodes: [label, hint, error] };
}

/** The form of a step operation other than convolve, from its spec's JSON Schema (built once). */
function opForm(op) {
  if (opForms.has(op)) return opForms.get(op);
  const entry = operations.get(op);
  const spec = (entry && entry.spec) || {};
  const required = new Set(Array.isArray(spec.required) ? spec.required : []);
  const box = document.createElement("div");
  box.className = "op-form";
  box.dataset.op = op;
  const fields = new Map();
  for (const [name, raw] of Object.entries(spec.properties || {})) {
    if (SKIPPED_FIELDS.includes(name)) continue;
    const { field, nodes } = buildField(op, name, resolveSchema(raw, spec), spec, required.has(name));
    fields.set(name, field);
    box.append(...nodes);
  }
  if (!fields.size) {
    const none = document.createElement("p");
    none.className = "hint";
    none.textContent = "This operation has no options.";
    box.append(none);
  }
  $("#op-fields").append(box);
  const form = { op, box, fields };
  opForms.set(op, form);
  return form;
}

/** Show the selected operation's editor: convolve's, or its generated form. */
function showOperation() {
  const op = selectedOp();
  const entry = operations.get(op);
  $("#op-summary").textContent = entry && typeof entry.summary === "string" ? entry.summary : "";
  $("#convolve-fields").hidden = op !== CONVOLVE;
  $("#op-fields").hidden = op === CONVOLVE;
  if (op !== CONVOLVE) opForm(op);
  for (const form of opForms.values()) form.box.hidden = form.op !== op;
}

/** A text field's value: a number (number fields: "1/9" too), else JSON, else the text itself. */
function readFieldText(field) {
  const text = field.control.value.trim();
  if (field.kind === "number") return parseNumber(text);
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The generated form's fields as the spec: only what was set (empty or at the default: left out). */
function opParams(op) {
  const params = {};
  for (const field of opForm(op).fields.values()) {
    const { control, kind, name } = field;
    if (kind === "checkbox") {
      if (String(control.checked) !== field.initial) params[name] = control.checked;
    } else if (kind === "select") {
      if (control.value && control.value !== field.initial) params[name] = field.values.get(control.value);
    } else if (control.value.trim()) {
      params[name] = readFieldText(field);
    }
  }
  if (opUsesColor(op) && $("#color").value !== "auto") params.color = $("#color").value;
  return params;
}

/** The selected operation's spec fields. */
function stepParams(op) {
  return op === CONVOLVE ? convolveParams() : opParams(op);
}

/** A generated control's state for the URL (as typed; a checkbox as "true"/"false"). */
function fieldState(field) {
  return field.kind === "checkbox" ? String(field.control.checked) : field.control.value;
}

function setFieldState(field, value) {
  if (field.kind === "checkbox") field.control.checked = value === "true";
  else field.control.value = value;
}

// --- the setup in the URL ------------------------------------------------------------------

const FIELDS = {
  color: "auto",
  weight: null,
  mode: "standard",
  border: "reflect",
  cval: "0",
  scale: "clamp",
  "pool-method": "max",
  "pool-size": "2",
  "pool-stride": "",
  "pool-edge": "drop",
};
/** The convolution's own controls: in the URL only when convolve is the operation. */
const CONVOLVE_ONLY = ["weight", "mode", "border", "cval", "scale"];
/** A generated form's fields go in the URL as `op.<field>`, beside `op=<name>`. */
const OP_FIELD = "op.";

/** The form as URL parameters (only what differs from the defaults); uploads stay local. */
function setupParams() {
  const params = new URLSearchParams();
  const op = selectedOp();
  const preset = $("#preset").value;
  if (op !== CONVOLVE) {
    params.set("op", op);
    for (const field of opForm(op).fields.values()) {
      const state = fieldState(field);
      if (state !== field.initial) params.set(OP_FIELD + field.name, state);
    }
  } else if (preset) params.set("preset", preset);
  else params.set("kernel", readGridText().map((row) => row.join(",")).join(";"));
  for (const [id, initial] of Object.entries(FIELDS)) {
    if (op !== CONVOLVE && CONVOLVE_ONLY.includes(id)) continue;
    const value = $(`#${id}`).value;
    const presetWeight = id === "weight" && preset ? formatNumber(presets.get(preset).weight) : "1";
    if (value !== (initial === null ? presetWeight : initial)) params.set(id, value);
  }
  if ($("#pool-on").checked) params.set("pool", "1");
  return params;
}

function saveSetup() {
  history.replaceState(null, "", `#${setupParams()}`);
}

/** Apply the setup of the URL's fragment; false when there is none. */
function loadSetup() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (![...params.keys()].length) return false;
  const op = params.get("op") || CONVOLVE;
  if (op === CONVOLVE || operations.has(op)) {
    $("#op").value = op;
  } else {
    noteOperations(`This link's operation "${op}" is not offered here; convolve is shown instead.`);
  }
  showOperation();
  if (selectedOp() !== CONVOLVE) {
    for (const field of opForm(selectedOp()).fields.values()) {
      if (params.has(OP_FIELD + field.name)) setFieldState(field, params.get(OP_FIELD + field.name));
    }
  }
  const preset = params.get("preset");
  if (preset && presets.has(preset)) {
    $("#preset").value = preset;
    applyPreset(preset);
  } else if (params.has("kernel")) {
    $("#preset").value = "";
    const rows = params.get("kernel").split(";").map((row) => row.split(","));
    ensureSizeOption(rows.length);
    buildGrid(rows.length, rows);
  }
  for (const id of Object.keys(FIELDS)) {
    if (params.has(id)) $(`#${id}`).value = params.get(id);
  }
  $("#pool-on").checked = params.get("pool") === "1";
  return true;
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

/** POST `spec` to `path` as JSON (ascent) or multipart (a file); resolves to a PNG blob. */
async function post(path, spec, file, signal) {
  let init;
  if (file) {
    const form = new FormData();
    form.append("image", file, file.name);
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

/** Pixels of a decoded <img>: size, min/max over the colour channels, a 256-bin histogram. */
function imageStats(img) {
  const width = img.naturalWidth;
  const height = img.naturalHeight;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, width, height).data;
  const histogram = new Float64Array(256);
  let min = 255;
  let max = 0;
  let sum = 0;
  for (let i = 0; i < data.length; i += 4) {
    const r = data[i];
    const g = data[i + 1];
    const b = data[i + 2];
    min = Math.min(min, r, g, b);
    max = Math.max(max, r, g, b);
    // Gray images have r = g = b; colour ones are binned by their luma (ITU-R 601).
    const value = r === g && g === b ? r : Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    histogram[value] += 1;
    sum += value;
  }
  const count = width * height;
  return { width, height, min, max, mean: count ? sum / count : 0, histogram, count };
}

function revoke(id) {
  if (objectUrls.has(id)) URL.revokeObjectURL(objectUrls.get(id));
  objectUrls.delete(id);
}

/** Show `source` (a URL or a Blob) in figure `id`; resolves to its stats, or null if undecodable. */
async function showImage(id, source, bytes) {
  const figure = document.getElementById(id);
  const img = figure.querySelector("img");
  const meta = figure.querySelector(".meta");
  revoke(id);
  let url = source;
  if (source instanceof Blob) {
    url = URL.createObjectURL(source);
    objectUrls.set(id, url);
  }
  img.hidden = false;
  img.src = url;
  try {
    await img.decode();
  } catch {
    img.hidden = true;
    meta.textContent = "";
    return null;
  }
  const stats = imageStats(img);
  const size = bytes === undefined ? "" : `, ${(bytes / 1024).toFixed(1)} KiB`;
  meta.textContent = `${stats.width}\u00d7${stats.height}, min ${stats.min}, max ${stats.max}${size}`;
  figure.dataset.width = String(stats.width);
  figure.dataset.height = String(stats.height);
  return stats;
}

/** Scale the shown images by one common factor so they fit side by side (relative sizes kept). */
function layoutFigures() {
  const container = $("#side");
  const figures = [...container.querySelectorAll("figure")];
  const images = figures.map((f) => f.querySelector("img")).filter((img) => !img.hidden && img.naturalWidth);
  const total = images.reduce((sum, img) => sum + img.naturalWidth, 0);
  const available = container.clientWidth - figures.length * 24 - (figures.length - 1) * 16;
  const scale = total ? Math.min(1, available / total) : 1;
  for (const img of images) {
    // Too small to compare side by side: the stylesheet's widths (half each) take over.
    img.style.width = scale < 0.3 ? "" : `${Math.floor(img.naturalWidth * scale)}px`;
  }
}

function drawHistogram(result) {
  const canvas = $("#histogram");
  const context = canvas.getContext("2d");
  const style = getComputedStyle(document.body);
  context.clearRect(0, 0, canvas.width, canvas.height);
  const series = [
    [originalHistogram, style.getPropertyValue("--hist-original").trim()],
    [result && result.histogram, style.getPropertyValue("--accent").trim()],
  ].filter(([bins]) => bins);
  const peak = Math.max(1, ...series.map(([bins]) => Math.sqrt(Math.max(...bins))));
  const barWidth = canvas.width / 256;
  for (const [bins, color] of series) {
    context.fillStyle = color;
    for (let v = 0; v < 256; v += 1) {
      const h = (Math.sqrt(bins[v]) / peak) * (canvas.height - 2);
      context.fillRect(v * barWidth, canvas.height - h, Math.max(1, barWidth - 0.5), h);
    }
  }
  if (!result) {
    $("#histogram-meta").textContent = "";
    canvas.setAttribute("aria-label", "Histogram of the result: no result");
    return;
  }
  const share = (v) => ((100 * result.histogram[v]) / result.count).toFixed(1);
  const text = `min ${result.min}, max ${result.max}, mean ${result.mean.toFixed(1)}; ${share(0)}% of pixels at 0, ${share(255)}% at 255.`;
  $("#histogram-meta").textContent = text;
  canvas.setAttribute("aria-label", `Histogram of the result: ${text}`);
}

function setCompare(originalUrl, resultUrl) {
  $("#compare-before").src = originalUrl || "";
  $("#compare-after").src = resultUrl || "";
}

function syncView() {
  const compare = document.querySelector('input[name="view"]:checked').value === "compare";
  $("#side").hidden = compare;
  $("#compare").hidden = !compare;
  if (!compare) layoutFigures();
}

// --- errors next to their controls -----------------------------------------------------------

const CONVOLVE_FIELDS = ["preset", "weight", "mode", "border", "cval", "scale", "color"];
const POOL_FIELDS = { method: "pool-method", size: "pool-size", stride: "pool-stride", edge: "pool-edge" };

/** The control an API issue is about, and a name for it; null for a request-wide issue. */
function controlFor(loc, pooling) {
  let path = Array.isArray(loc) ? loc.slice() : [];
  if (path[0] === "body") path = path.slice(1);
  if (path[0] === "spec") path = path.slice(1);
  let step = 0;
  if (path[0] === "steps" && typeof path[1] === "number") {
    step = path[1];
    path = path.slice(2);
  } else if (path[0] === "steps") {
    return null;
  }
  const [field, row, col] = path;
  if (field === "image") return { control: $("#file"), errorId: "file-error", name: "Image" };
  if (step === 1 && pooling && POOL_FIELDS[field]) {
    return { control: $(`#${POOL_FIELDS[field]}`), errorId: `${POOL_FIELDS[field]}-error`, name: `Pooling ${field}` };
  }
  if (step !== 0) return null;
  const op = selectedOp();
  if (op !== CONVOLVE) {
    const generated = opForm(op).fields.get(field);
    if (generated) return { control: generated.control, errorId: generated.errorId, name: generated.title };
    if (field === "color") return { control: $("#color"), errorId: "color-error", name: "Color" };
    return null;
  }
  if (field === "kernel") {
    if (typeof row === "number" && typeof col === "number") {
      const cell = cells()[row * gridSize() + col];
      if (cell) return { control: cell, errorId: "kernel-error", name: `Kernel row ${row + 1}, column ${col + 1}` };
    }
    return { control: cells()[0], errorId: "kernel-error", name: "Kernel" };
  }
  if (CONVOLVE_FIELDS.includes(field)) {
    return { control: $(`#${field}`), errorId: `${field}-error`, name: field[0].toUpperCase() + field.slice(1) };
  }
  return null;
}

function clearErrors() {
  $("#error").hidden = true;
  $("#error").replaceChildren();
  for (const box of document.querySelectorAll(".field-error")) {
    box.hidden = true;
    box.textContent = "";
  }
  for (const control of document.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

function markField(target, text) {
  target.control.setAttribute("aria-invalid", "true");
  const box = document.getElementById(target.errorId);
  box.textContent = box.textContent ? `${box.textContent} ${text}` : text;
  box.hidden = false;
}

/** The API's message without the 1-based cell it names (the page says it in its own words). */
const issueText = (issue) =>
  (typeof issue.msg === "string" ? issue.msg : JSON.stringify(issue)).replace(/ \(row \d+, column \d+\)$/, "");

/**
 * Show `error`: each issue beside its control (highlighted), a summary above the results.
 * `moveFocus` (an explicit run) focuses the first control at fault; a live run only scrolls.
 */
function showError(error, pooling, explicit) {
  let moveFocus = explicit;
  clearErrors();
  const box = $("#error");
  const title = document.createElement("strong");
  const list = document.createElement("ul");
  let first = null;
  const add = (target, text) => {
    const item = document.createElement("li");
    item.textContent = target ? `${target.name}: ${text}` : text;
    list.append(item);
    if (target) {
      markField(target, target.errorId === "kernel-error" ? `${target.name}: ${text}` : text);
      first = first || target.control;
    }
  };
  if (error instanceof FormError) {
    title.textContent = "Not sent";
    add({ control: error.control, errorId: `${error.control.id}-error`, name: "Image" }, error.message);
  } else if (error instanceof ApiError) {
    title.textContent = `The API answered ${error.status} ${error.statusText}`.trim();
    const issues = Array.isArray(error.detail) ? error.detail : [{ msg: String(error.detail) }];
    for (const issue of issues) {
      let target = controlFor(issue.loc, pooling);
      if (!target && error.status === 400 && uploadWanted()) {
        target = { control: $("#file"), errorId: "file-error", name: "Image" };
      }
      add(target, issueText(issue));
    }
    if (error.status === 401) {
      $("#key-panel").open = true;
      const key = { control: $("#api-key"), errorId: "api-key-error", name: "API key" };
      markField(key, "This server needs an API key: enter it here, then Run.");
      first = $("#api-key");
      moveFocus = true; // nothing else can succeed until a key is entered
    } else if (error.status === 413 && uploadWanted()) {
      markField({ control: $("#file"), errorId: "file-error" }, "The file is larger than this server accepts.");
      first = first || $("#file");
    }
  } else {
    title.textContent = "The request did not complete";
    add(null, String(error && error.message ? error.message : error));
  }
  box.append(title, list);
  box.hidden = false;
  const target = first || box;
  if (moveFocus) {
    target.focus({ preventScroll: true });
    if (target.select && target.classList.contains("cell")) target.select();
  }
  const rect = (first || box).getBoundingClientRect();
  if (rect.top < 0 || rect.bottom > innerHeight) (first || box).scrollIntoView({ block: "center" });
}

/** The last result no longer matches the form: clear it, so nothing stale stays on screen. */
function clearResult() {
  revoke("result");
  const figure = $("#result");
  figure.querySelector("img").hidden = true;
  figure.querySelector("img").removeAttribute("src");
  figure.querySelector(".meta").textContent = "";
  figure.querySelector(".placeholder").hidden = false;
  $("#download").hidden = true;
  $("#download").removeAttribute("href");
  setCompare(objectUrls.get("original") || apiUrl("images/ascent"), "");
  drawHistogram(null);
}

// --- the equivalent curl command ---------------------------------------------------------------

const shellQuote = (text) => `'${String(text).replace(/'/g, "'\\''")}'`;

/** A shell word: as is when plain (a name, a number), else single-quoted. */
const shellWord = (text) => (/^[\w.,:/=+@%-]+$/.test(String(text)) ? String(text) : shellQuote(text));

function curlCommand(path, spec, file, output) {
  const lines = [`curl -sS --fail-with-body -X POST ${shellQuote(apiUrl(path))}`];
  if ($("#api-key").value.trim()) lines.push('-H "X-API-Key: $IMGFILTER_API_KEY"');
  if (file) {
    lines.push(`-F ${shellQuote(`image=@${file.name}`)}`);
    lines.push(`-F ${shellQuote(`spec=${JSON.stringify(spec)}`)}`);
  } else {
    lines.push("-H 'Content-Type: application/json'");
    lines.push(`-d ${shellQuote(JSON.stringify(spec))}`);
  }
  lines.push(`-o ${shellWord(output)}`);
  return lines.join(" \\\n  ");
}

/** A CLI option's value: a string as a word (JSON-quoted if it would read as JSON), else JSON. */
function cliValue(value) {
  if (typeof value !== "string") return shellWord(JSON.stringify(value));
  try {
    JSON.parse(value);
  } catch {
    return shellWord(value);
  }
  return shellQuote(JSON.stringify(value));
}

/**
 * The same run with the local CLI: `imgfilter <op> IMAGE --<field> <value> -o FILE` (a field's
 * `_` as `-`; `true` as a bare flag; `false`, the CLI's default for its flags, left out).
 */
function cliCommand(path, spec, file, output) {
  const words = ["imgfilter", shellWord(path), file ? shellWord(file.name) : "ascent"];
  for (const [name, value] of Object.entries(spec)) {
    if (value === false) continue;
    words.push(`--${name.replace(/_/g, "-")}`);
    if (value !== true) words.push(cliValue(value));
  }
  words.push("-o", shellWord(output));
  return words.join(" ");
}

/** Copy the command in `code` (a selector); `button` says so for a moment. */
async function copyCommand(code, button) {
  const text = $(code).textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const range = document.createRange();
    range.selectNodeContents($(code));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
  }
  $(button).textContent = "Copied";
  setTimeout(() => {
    $(button).textContent = "Copy";
  }, 1500);
}

// --- running ---------------------------------------------------------------------------------

function setStatus(status, words) {
  document.body.dataset.status = status;
  $("#run").disabled = status === "running";
  if (words !== undefined) $("#status").textContent = words;
}

let shownOriginal = null;

/** Show the original (once per source) and remember its histogram. */
async function showOriginal(file) {
  const key = file ? `${file.name}:${file.size}:${file.lastModified}` : "ascent";
  if (shownOriginal === key) return;
  shownOriginal = key;
  const stats = await showImage("original", file || apiUrl("images/ascent"), file ? file.size : undefined);
  originalHistogram = stats ? stats.histogram : null;
  if (!stats && file) $("#original .meta").textContent = `${file.name}: not shown (this browser cannot decode it)`;
}

function resultTitle(op, pooling) {
  const first = op === CONVOLVE ? "Convolved" : op[0].toUpperCase() + op.slice(1);
  if (!pooling) return first;
  const size = Array.isArray(pooling.size) ? pooling.size.join("\u00d7") : `${pooling.size}\u00d7${pooling.size}`;
  return `${first}, then ${size} ${pooling.method}-pooled`;
}

/** The result's file name: convolved.png and pooled.png for convolve; <op>(-pooled).png else. */
function resultFile(op, pooling) {
  if (op === CONVOLVE) return pooling ? "pooled.png" : "convolved.png";
  return `${op}${pooling ? "-pooled" : ""}.png`;
}

/** One run: one request; `explicit` (Run, Enter) moves the focus to a control at fault. */
async function run(explicit = false) {
  clearTimeout(debounce);
  const id = ++runId;
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const { signal } = inflight;
  const pooling = $("#pool-on").checked ? poolParams() : null;
  const op = selectedOp();
  const output = resultFile(op, pooling);
  setStatus("running", "Running\u2026");
  saveSetup();
  $("#result-title").textContent = resultTitle(op, pooling); // also over a failed run's placeholder
  try {
    const file = selectedFile();
    const { path, spec } = request(op, stepParams(op), pooling);
    $("#curl").textContent = curlCommand(path, spec, file, output);
    $("#cli").textContent = cliCommand(path, spec, file, output);
    await showOriginal(file);
    const blob = await post(path, spec, file, signal);
    if (id !== runId) return;
    clearErrors();
    $("#result .placeholder").hidden = true;
    const stats = await showImage("result", blob, blob.size);
    if (id !== runId) return;
    const download = $("#download");
    download.href = objectUrls.get("result");
    download.download = output;
    download.hidden = false;
    setCompare(objectUrls.get("original") || apiUrl("images/ascent"), objectUrls.get("result"));
    drawHistogram(stats);
    if (file && !originalHistogram) {
      $("#original .meta").textContent = `${file.name}: this browser cannot show it; the API read it`;
    }
    layoutFigures();
    setStatus("done", `Done: ${$("#result .meta").textContent}`);
  } catch (error) {
    if (id !== runId || (error && error.name === "AbortError")) return;
    clearResult();
    showError(error, pooling, explicit);
    setStatus("error", "The run failed; see the message.");
  }
}

/** Run shortly after the last change (several quick edits make one request). */
function schedule(delay = 250) {
  clearTimeout(debounce);
  setStatus("pending");
  debounce = setTimeout(() => run(false), delay);
}

function syncControls() {
  const codelab = $("#mode").value === "codelab";
  $("#border").disabled = codelab;
  $("#cval").disabled = codelab || $("#border").value !== "constant";
  $("#color").disabled = !opUsesColor(selectedOp());
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

/** The page as first opened: the default preset, every option at the API's default. */
function resetForm() {
  $("#controls").reset();
  $("#api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  shownOriginal = null;
  buildGrid(3, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]);
  if (presets.has(DEFAULT_PRESET)) {
    $("#preset").value = DEFAULT_PRESET;
    applyPreset(DEFAULT_PRESET);
  }
  showOperation();
  syncControls();
}

function forgetPreset() {
  if ($("#preset").value) {
    $("#preset").value = "";
    $("#preset-description").textContent = "";
  }
}

async function start() {
  buildGrid(3, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]);
  $("#api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  syncControls();
  const form = $("#controls");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run(true);
  });
  form.addEventListener("change", (event) => {
    const target = event.target;
    if (target.classList.contains("cell")) return; // cells run on input
    if (target.closest("#op-fields") && target.type === "text") return; // so do generated texts
    if (target.id === "op") showOperation();
    if (target.id === "preset") applyPreset(target.value);
    if (target.id === "kernel-size") {
      forgetPreset();
      buildGrid(gridSize());
    }
    if (target.id === "file" && target.files.length) {
      document.querySelector('input[name="source"][value="upload"]').checked = true;
    }
    if (target.name === "source" || target.id === "file") shownOriginal = null;
    syncControls();
    describeSum();
    schedule();
  });
  $("#grid").addEventListener("input", () => {
    forgetPreset();
    describeSum();
    schedule(LIVE_DELAY_MS);
  });
  $("#grid").addEventListener("keydown", gridKeys);
  $("#op-fields").addEventListener("input", (event) => {
    if (event.target.type === "text") schedule(LIVE_DELAY_MS);
  });
  for (const id of ["weight", "cval", "pool-size", "pool-stride"]) {
    $(`#${id}`).addEventListener("input", () => {
      if (id === "weight") describeSum();
      schedule(LIVE_DELAY_MS);
    });
  }
  $("#api-key").addEventListener("input", () => {
    const key = $("#api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  });
  $("#reset-button").addEventListener("click", () => {
    resetForm();
    describeSum();
    history.replaceState(null, "", location.pathname + location.search);
    run(false);
  });
  $("#copy").addEventListener("click", () => copyCommand("#curl", "#copy"));
  $("#copy-cli").addEventListener("click", () => copyCommand("#cli", "#copy-cli"));
  for (const radio of document.querySelectorAll('input[name="view"]')) radio.addEventListener("change", syncView);
  $("#compare-position").addEventListener("input", (event) => {
    $(".compare-frame").style.setProperty("--position", `${event.target.value}%`);
  });
  window.addEventListener("resize", layoutFigures);
  try {
    await Promise.all([loadPresets(), loadOperations()]);
    resetForm();
    loadSetup();
    syncControls();
    describeSum();
  } catch (error) {
    showError(error, null, false);
  }
  run(false);
}

document.addEventListener("DOMContentLoaded", start);
