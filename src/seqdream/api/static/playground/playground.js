// seqdream playground: a thin client of the public v3 API (the same calls the SDK makes).
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "seqdream.apiKey";
const MAX_REFS = 10;
const WITH_REFS = new Set([
  "bytedance/seedream-v4/edit", "bytedance/seedream-v4/edit-sequential", "bytedance/seedream-v4.5/edit-sequential",
]);
const WITH_GROUPS = new Set([
  "bytedance/seedream-v4/sequential", "bytedance/seedream-v4/edit-sequential",
  "bytedance/seedream-v4.5/sequential", "bytedance/seedream-v4.5/edit-sequential",
]);

const DEFAULT_PLACEHOLDER = "A series of 4 images of a paper boat drifting down a rainy street";
const state = { refs: [], timer: null, polling: null, nextRefId: 1, examples: [], startedAt: 0 };

// ---- API -------------------------------------------------------------------------------
async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${$("api-key").value.trim()}`, ...(options.headers || {}) };
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (err) {
    throw new Error(`Could not reach the service (${err.message})`);
  }
  let body = null;
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok || !body || body.code !== 200) {
    throw new Error(body && body.message ? body.message : `HTTP ${response.status}`);
  }
  return body.data;
}

// ---- form ------------------------------------------------------------------------------
function currentSize() {
  const preset = $("size-preset").value;
  return preset === "custom" ? `${$("width").value}*${$("height").value}` : preset;
}

function buildBody() {
  const model = $("model").value;
  const body = { prompt: $("prompt").value, size: currentSize() };
  const seed = Number($("seed").value);
  body.seed = Number.isFinite(seed) && $("seed").value !== "" ? seed : -1;
  if (WITH_GROUPS.has(model)) body.max_images = Number($("max-images").value);
  if (WITH_REFS.has(model)) body.images = state.refs.filter((r) => r.url).map((r) => r.url);
  return { model, body };
}

function curlFor() {
  const { model, body } = buildBody();
  return [
    `curl --location --request POST "${location.origin}/api/v3/${model}" \\`,
    `--header "Content-Type: application/json" \\`,
    `--header "Authorization: Bearer \${WAVESPEED_API_KEY}" \\`,
    `--data-raw '${JSON.stringify(body, null, 4).replace(/'/g, "'\\''")}'`,
  ].join("\n");
}

function refreshCurl() { $("curl").textContent = curlFor(); }

function syncModelFields() {
  const model = $("model").value;
  $("refs-field").hidden = !WITH_REFS.has(model);
  $("max-images-field").hidden = !WITH_GROUPS.has(model);
  // The placeholder speaks the loaded model's language when it ships examples.
  const example = state.examples.find((e) => e.model === model) || state.examples[0];
  $("prompt").placeholder = example ? example.prompt : DEFAULT_PLACEHOLDER;
  refreshCurl();
}

// ---- examples the loaded model ships ---------------------------------------------------------
async function loadExamples() {
  let data;
  try { data = await api("/api/v3/examples"); } catch { return; }  // no examples: keep the defaults
  state.examples = data.examples || [];
  $("examples").hidden = state.examples.length === 0;
  $("examples-about").textContent = data.about || "";
  $("grammar").hidden = !data.grammar;  // the prompt wordings the model was trained on, if it says
  $("grammar-text").textContent = data.grammar || "";
  $("examples-count").textContent = `(${state.examples.length})`;
  $("example-list").replaceChildren(...state.examples.map((example) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    const route = document.createElement("small");
    route.textContent = example.model.replace("bytedance/seedream-v4", "seedream-v4");
    button.append(route, example.prompt + ((example.images || []).length ? ` (${example.images.length} reference image${example.images.length > 1 ? "s" : ""})` : ""));
    button.addEventListener("click", () => useExample(example));
    item.append(button);
    return item;
  }));
  syncModelFields();
}

async function useExample(example) {
  hideError();
  $("model").value = example.model;
  $("prompt").value = example.prompt;
  if (example.size && [...$("size-preset").options].some((o) => o.value === example.size)) {
    $("size-preset").value = example.size;
    $("custom-size").hidden = true;
  }
  $("max-images").value = example.max_images || 1;
  $("max-images-value").textContent = $("max-images").value;
  for (const ref of state.refs) URL.revokeObjectURL(ref.preview);
  state.refs = [];
  renderRefs();
  syncModelFields();
  const files = [];
  for (const url of example.images || []) {
    const response = await fetch(url);
    if (!response.ok) { showError(`Could not load the example image ${url}`); return; }
    const blob = await response.blob();
    files.push(new File([blob], url.split("/").pop(), { type: blob.type }));
  }
  if (files.length) await addFiles(files);
}

// ---- reference images --------------------------------------------------------------------
function renderRefs() {
  const list = $("refs");
  list.replaceChildren(...state.refs.map((ref) => {
    const item = document.createElement("li");
    item.className = ref.status;
    item.title = ref.error || ref.name;
    const img = document.createElement("img");
    img.src = ref.preview;
    img.alt = ref.name;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove ${ref.name}`);
    remove.addEventListener("click", () => {
      URL.revokeObjectURL(ref.preview);
      state.refs = state.refs.filter((r) => r !== ref);
      renderRefs();
    });
    item.append(img, remove);
    return item;
  }));
  $("refs-count").textContent = `${state.refs.length} / ${MAX_REFS}`;
  refreshCurl();
}

async function addFiles(files) {
  hideError();
  for (const file of files) {
    if (state.refs.length >= MAX_REFS) { showError(`At most ${MAX_REFS} reference images.`); break; }
    const ref = { id: state.nextRefId++, name: file.name, preview: URL.createObjectURL(file), status: "uploading", url: null };
    state.refs.push(ref);
    renderRefs();
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      ref.url = (await api("/api/v3/media/upload/binary", { method: "POST", body: form })).download_url;
      ref.status = "ready";
    } catch (err) {
      ref.status = "failed";
      ref.error = err.message;
      showError(`${file.name}: ${err.message}`);
    }
    renderRefs();
  }
}

// ---- running a job -----------------------------------------------------------------------
const NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
  "eleven", "twelve", "thirteen", "fourteen"];
// The number of images a prompt asks for ("a series of 4 images", "six frames of"), or null: the
// service's planner reads the same wordings.
function askedCount(prompt) {
  const match = /\b(\d{1,2}|[a-z]+)\s+(?:images|frames|pictures|photos|shots)\b/i.exec(prompt);
  if (!match) return null;
  const word = match[1].toLowerCase();
  const count = /^\d+$/.test(word) ? Number(word) : NUMBER_WORDS.indexOf(word);
  return count >= 1 ? count : null;
}

function showError(message) { $("error").textContent = message; $("error").hidden = false; }
function hideError() { $("error").hidden = true; $("error").textContent = ""; }

function setStatus(status, id) {
  $("status-line").hidden = false;
  $("status").textContent = status;
  $("status").className = `badge ${status}`;
  if (id) $("task-id").textContent = id;
}

function startClock() {
  const started = performance.now();
  state.startedAt = started;
  $("progress").value = 0;
  $("preview").hidden = true;
  $("preview").removeAttribute("src");
  clearInterval(state.timer);
  state.timer = setInterval(() => { $("elapsed").textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`; }, 100);
}

function stopClock() { clearInterval(state.timer); state.timer = null; }

// Where a queued or running task stands (the result's extension fields): its place in the queue, the
// images and the current batch's step done, the estimated time left; a bar that only moves forward.
function showProgress(data) {
  const line = $("progress-line");
  if (!["created", "processing"].includes(data.status)) { line.hidden = true; return; }
  const parts = [];
  let done = 0;
  if (data.status === "created") {
    parts.push(data.queue_position ? `${data.queue_position} ahead in the queue` : "next in the queue");
  } else if (data.images_total) {
    const share = data.steps ? data.step / data.steps : 0;
    done = Math.min(1, (data.images_done + share * Math.max(1, data.images_total - data.images_done) / 2) / data.images_total);
    parts.push(`image ${Math.min(data.images_done + 1, data.images_total)} of ${data.images_total}`);
    if (data.steps) parts.push(`step ${data.step} of ${data.steps}`);
  }
  if (data.eta_s !== undefined) {
    parts.push(`about ${Math.max(1, Math.round(data.eta_s))} s left`);
    const elapsed = (performance.now() - state.startedAt) / 1000;
    if (data.status === "processing") done = Math.max(done, elapsed / (elapsed + data.eta_s));
  }
  const bar = $("progress");
  bar.value = Math.max(Number(bar.value), done);
  // A small picture of the image being drawn, where the model makes them (the built-in model does).
  if (data.preview) $("preview").src = data.preview;
  $("preview").hidden = data.status !== "processing" || !data.preview;
  $("progress-text").textContent = parts.join(" · ");
  line.hidden = false;
}

function figureFor(data, src, index) {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = src.startsWith("http") || src.startsWith("/") ? src : `data:image/jpeg;base64,${src}`;
    img.alt = `Output ${index + 1}`;
    const caption = document.createElement("figcaption");
    const label = document.createElement("span");
    label.textContent = `#${index + 1}`;
    if (data.has_nsfw_contents[index]) {
      const flag = document.createElement("span");
      flag.className = "nsfw";
      flag.textContent = " NSFW";
      label.append(flag);
    }
    const download = document.createElement("a");
    download.href = img.src;
    download.download = `seqdream-${data.seed}-${index + 1}.${(src.split(".").pop() || "jpeg").slice(0, 4)}`;
    download.textContent = "Download";
    download.className = "download";
    caption.append(label, download);
    figure.append(img, caption);
    return figure;
}

// A running group's images arrive one batch at a time: add the new ones, keep those shown.
function showResult(data, { keep = false } = {}) {
  setStatus(data.status, data.id);
  const gallery = $("gallery");
  const shown = keep ? gallery.children.length : 0;
  const fresh = data.outputs.slice(shown).map((src, offset) => figureFor(data, src, shown + offset));
  if (keep) gallery.append(...fresh); else gallery.replaceChildren(...fresh);
  $("meta").hidden = data.status !== "completed";
  $("meta-seed").textContent = data.seed;
  $("meta-inference").textContent = `${data.timings.inference} ms`;
  $("meta-nsfw").textContent = data.has_nsfw_contents.some(Boolean) ? "flagged" : "none detected";
  if (data.status === "failed") showError(data.error || "The job failed.");
  showWarnings(data);
}

// What the task says of itself (`warnings`): words the model does not know (it still runs), or, while
// queued, that it waits on a model that cannot be loaded. Shown from the first poll, kept up to date.
function showWarnings(data) {
  $("warnings").textContent = (data.warnings || []).join(" ");
  $("warnings").hidden = !(data.warnings || []).length;
}

async function poll(url) {
  const data = await api(`${new URL(url).pathname}?preview=true`);
  setStatus(data.status, data.id);
  showProgress(data);
  showWarnings(data);
  if (["completed", "failed", "deleted"].includes(data.status)) {
    stopClock();
    $("cancel").hidden = true;
    showResult(data, { keep: data.status === "completed" });
    loadHistory();
    return;
  }
  if (data.outputs.length > $("gallery").children.length) showResult(data, { keep: true });
  state.polling = setTimeout(() => poll(url).catch(fail), 400);
}

async function cancel() {
  const id = $("task-id").textContent;
  if (!id) return;
  clearTimeout(state.polling);
  const data = await api(`/api/v3/predictions/${id}`, { method: "DELETE" });
  stopClock();
  $("cancel").hidden = true;
  $("submit").disabled = false;
  showProgress(data);
  showResult(data);
  loadHistory();
}

function fail(err) {
  stopClock();
  $("progress-line").hidden = true;
  $("cancel").hidden = true;
  showError(err.message);
  $("submit").disabled = false;
}

async function submit(event) {
  event.preventDefault();
  hideError();
  clearTimeout(state.polling);
  sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim());
  if (state.refs.some((r) => r.status === "uploading")) { showError("Wait for the reference images to finish uploading."); return; }
  const { model, body } = buildBody();
  $("submit").disabled = true;
  $("gallery").replaceChildren();
  $("meta").hidden = true;
  try {
    const data = await api(`/api/v3/${model}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    setStatus(data.status, data.id);
    startClock();
    $("cancel").hidden = false;
    await poll(data.urls.get);
  } catch (err) {
    fail(err);
    $("status-line").hidden = true;
    return;
  }
  $("submit").disabled = false;
}

// ---- history -------------------------------------------------------------------------------
async function loadHistory() {
  if (!$("api-key").value.trim()) return;
  try {
    const data = await api("/api/v3/predictions?page_size=12");
    $("history").replaceChildren(...data.items.map((item) => {
      const li = document.createElement("li");
      const img = document.createElement("img");
      if (item.outputs[0]) img.src = item.outputs[0];
      img.alt = "";
      const prompt = document.createElement("p");
      prompt.textContent = item.prompt;
      const meta = document.createElement("span");
      meta.textContent = `${item.status} · ${item.outputs.length} image(s) · ${new Date(item.created_at).toLocaleTimeString()}`;
      li.append(img, prompt, meta);
      li.addEventListener("click", () => { hideError(); showResult(item); });
      return li;
    }));
  } catch (err) {
    showError(`History: ${err.message}`);
  }
}

// The model, as /health reports it: while it loads or could not be loaded, tasks wait in the queue and
// the page says why, until it is ready (looked at again every 5 s).
async function watchEngine() {
  let health = null;
  try { health = await (await fetch("/health")).json(); } catch { /* unreachable: a submit says so */ }
  const said = !health ? null : {
    unavailable: `The model could not be loaded, so tasks wait in the queue (the service keeps trying): ${health.engine_error}`,
    loading: "The model is loading: tasks wait in the queue until it is ready.",
  }[health.engine];
  $("engine-notice").textContent = said || "";
  $("engine-notice").hidden = !said;
  if (said) setTimeout(watchEngine, 5000);
}

// ---- wiring --------------------------------------------------------------------------------
function init() {
  $("api-key").value = sessionStorage.getItem(KEY_STORAGE) || "";
  $("api-key").addEventListener("change", () => { sessionStorage.setItem(KEY_STORAGE, $("api-key").value.trim()); loadHistory(); });
  $("model").addEventListener("change", syncModelFields);
  $("cancel").addEventListener("click", () => cancel().catch(fail));
  $("size-preset").addEventListener("change", () => { $("custom-size").hidden = $("size-preset").value !== "custom"; refreshCurl(); });
  $("max-images").addEventListener("input", () => {
    $("max-images-value").textContent = $("max-images").value;
    $("max-images-note").hidden = true;  // the user's own choice from now on
    state.maxImagesChosen = true;
    refreshCurl();
  });
  // "a series of 4 images of …" asks for 4: Max images follows the prompt until the user moves the slider.
  $("prompt").addEventListener("input", () => {
    const asked = askedCount($("prompt").value);
    if (asked === null || state.maxImagesChosen) return;
    $("max-images").value = Math.min(asked, 14);
    $("max-images-value").textContent = $("max-images").value;
    $("max-images-note").hidden = false;
    refreshCurl();
  });
  $("dice").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 2147483648); refreshCurl(); });
  for (const id of ["prompt", "seed", "width", "height"]) $(id).addEventListener("input", refreshCurl);
  $("pick").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", () => { addFiles([...$("file-input").files]); $("file-input").value = ""; });
  const zone = $("dropzone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); addFiles([...e.dataTransfer.files]); });
  $("copy-curl").addEventListener("click", async () => {
    refreshCurl();
    $("curl-box").open = true;
    try { await navigator.clipboard.writeText(curlFor()); $("copy-curl").textContent = "Copied!"; }
    catch { $("copy-curl").textContent = "Select the text below"; }
    setTimeout(() => { $("copy-curl").textContent = "Copy as curl"; }, 1500);
  });
  $("refresh-history").addEventListener("click", loadHistory);
  $("form").addEventListener("submit", submit);
  syncModelFields();
  loadExamples();
  loadHistory();
  watchEngine();
}

init();
