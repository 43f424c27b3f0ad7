// Pastiche web page: style gallery, upload, low-resolution preview, then the full result.
// Talks only to the public API (/v1/styles, /v1/jobs), with the API key as a Bearer token.
"use strict";

const PREVIEW_SIDE = 256;
const ACCEPTED = ["image/jpeg", "image/png", "image/webp"];
const KEY_STORAGE = "pastiche.apiKey";
const $ = (id) => document.getElementById(id);
let selectedStyle = null;
let run = 0;

function authHeaders() {
  const key = $("api-key").value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function apiError(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return `${body.error.message} (HTTP ${response.status})`;
  } catch (_) { /* not JSON: fall through */ }
  return `request failed with HTTP ${response.status}`;
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

function setStatus(text) { $("status").textContent = text; }

async function loadStyles() {
  const gallery = $("gallery");
  const response = await fetch("/v1/styles", { headers: authHeaders() });
  if (!response.ok) {
    gallery.innerHTML = "";
    showMessage(`Could not load styles: ${await apiError(response)}`);
    return;
  }
  const { styles } = await response.json();
  showMessage("");
  gallery.innerHTML = "";
  if (!styles.length) gallery.textContent = "No styles are being served yet.";
  for (const style of styles) gallery.appendChild(styleCard(style));
  // Reloading (e.g. after the key changes) keeps the user's pick when that style is still served.
  const kept = styles.find((style) => style.name === selectedStyle);
  if (styles.length) selectStyle((kept || styles[0]).name);
}

function styleCard(style) {
  const card = document.createElement("button");
  card.type = "button";
  card.className = "style-card";
  card.setAttribute("role", "radio");
  card.dataset.style = style.name;
  const picture = document.createElement("img");
  picture.alt = `${style.title || style.name}: before and after`;
  picture.src = `/v1/styles/${encodeURIComponent(style.name)}/preview`;
  picture.addEventListener("error", () => {
    const placeholder = document.createElement("div");
    placeholder.className = "no-preview";
    placeholder.textContent = "no preview yet";
    picture.replaceWith(placeholder);
  });
  const title = document.createElement("strong");
  title.textContent = style.title || style.name;
  const detail = document.createElement("small");
  detail.textContent = `${style.name} · ${style.architecture} · ${style.precision}`;
  card.append(picture, title, detail);
  card.title = style.description || style.name;
  card.addEventListener("click", () => selectStyle(style.name));
  return card;
}

function selectStyle(name) {
  selectedStyle = name;
  for (const card of document.querySelectorAll(".style-card")) {
    card.setAttribute("aria-checked", String(card.dataset.style === name));
  }
}

async function submitJob(file, fields) {
  const form = new FormData();
  form.append("image", file);
  form.append("style", selectedStyle);
  for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
  const response = await fetch("/v1/jobs", { method: "POST", body: form, headers: authHeaders() });
  if (!response.ok) throw new Error(await apiError(response));
  return response.json();
}

async function waitForJob(job, token) {
  let delay = 250;
  while (job.status === "queued" || job.status === "running") {
    await new Promise((resolve) => setTimeout(resolve, delay));
    if (token !== run) throw new Error("superseded");
    delay = Math.min(delay * 1.5, 2000);
    const response = await fetch(`/v1/jobs/${job.id}`, { headers: authHeaders() });
    if (!response.ok) throw new Error(await apiError(response));
    job = await response.json();
  }
  const item = job.items[0];
  if (job.status !== "succeeded" || item.status !== "succeeded") {
    const error = (item && item.error) || job.error || { message: "the job failed" };
    throw new Error(error.message);
  }
  const output = await fetch(`/v1/jobs/${job.id}/items/0/output`, { headers: authHeaders() });
  if (!output.ok) throw new Error(await apiError(output));
  return { blob: await output.blob(), item };
}

function showResult(blob, item, label) {
  const img = $("result");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  $("result-label").textContent = label;
  $("result-size").textContent = `${item.width}×${item.height}`;
  return img.src;
}

async function handleFile(file) {
  const token = ++run;
  showMessage("");
  $("download").hidden = true;
  $("result").hidden = true;
  $("result-size").textContent = "";
  if (!file) return;
  if (!ACCEPTED.includes(file.type)) {
    showMessage(`${file.name} is not a JPEG, PNG or WebP image.`);
    return;
  }
  if (!selectedStyle) {
    showMessage("Choose a style first.");
    return;
  }
  const original = $("original");
  if (original.src.startsWith("blob:")) URL.revokeObjectURL(original.src);
  $("original-size").textContent = "";
  original.onerror = () => { original.hidden = true; };
  original.src = URL.createObjectURL(file);
  original.hidden = false;
  original.onload = () => { $("original-size").textContent = `${original.naturalWidth}×${original.naturalHeight}`; };
  try {
    setStatus("Rendering a quick preview…");
    const preview = await waitForJob(await submitJob(file, { max_side: PREVIEW_SIDE }), token);
    if (token !== run) return;
    showResult(preview.blob, preview.item, `Preview (${PREVIEW_SIDE} px)`);
    const full = $("full-resolution").checked;
    setStatus(full ? "Rendering the full-resolution result…" : "Rendering the full result…");
    const result = await waitForJob(await submitJob(file, full ? { tile: true } : {}), token);
    if (token !== run) return;
    const url = showResult(result.blob, result.item, full ? "Full resolution" : "Result");
    const link = $("download");
    link.href = url;
    link.download = `${file.name.replace(/\.[^.]+$/, "")}-${selectedStyle}.png`;
    link.hidden = false;
    setStatus("Done.");
  } catch (error) {
    if (token !== run || error.message === "superseded") return;
    setStatus("");
    showMessage(error.message);
  }
}

function setUp() {
  const keyInput = $("api-key");
  keyInput.value = localStorage.getItem(KEY_STORAGE) || "";
  keyInput.addEventListener("change", () => {
    localStorage.setItem(KEY_STORAGE, keyInput.value.trim());
    loadStyles();
  });
  $("file-input").addEventListener("change", (event) => handleFile(event.target.files[0]));
  const zone = $("drop-zone");
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    handleFile(event.dataTransfer.files[0]);
  });
  loadStyles().catch((error) => showMessage(`Could not load styles: ${error.message}`));
}

document.addEventListener("DOMContentLoaded", setUp);
