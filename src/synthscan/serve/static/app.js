// The synthscan web page: upload images to /v1/scan, show a card per image, browse /v1/scans.
// Everything from the server or the user is put in the page as text (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
let decision = null;  // the loaded model's threshold and uncertain band, from /v1/models
let historyOffset = 0;
const PAGE = 25;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function headers() {
  const key = $("api-key").value.trim();
  sessionStorage.setItem("synthscan-key", key);
  return key ? { Authorization: "Bearer " + key } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers() });
  const body = await response.json().catch(() => ({ error: { code: "bad-response", message: response.statusText } }));
  if (!response.ok) {
    const err = body.error || { code: "http-" + response.status, message: response.statusText };
    throw Object.assign(new Error(err.message), { code: err.code, status: response.status });
  }
  return body;
}

async function connect() {
  try {
    const models = await api("/v1/models");
    if (models.loaded) {
      decision = models.loaded.decision;
      $("status").textContent = `model ${models.loaded.name} ${models.loaded.version} · threshold ${decision.threshold}`;
    } else {
      $("status").textContent = "the model is still loading…";
      setTimeout(connect, 1000);
    }
  } catch (err) {
    $("status").textContent = err.status === 401 ? "enter the API key to use this server" : `cannot reach the API: ${err.message}`;
  }
}

// --- scanning -------------------------------------------------------------------------------

function scanFiles(fileList) {
  for (const file of fileList) scanOne(file);
}

async function scanOne(file) {
  const card = el("article", { class: "card", "aria-busy": "true" },
    el("h2", {}, el("span", { class: "path", text: file.name })), el("p", { class: "state", text: "uploading…" }));
  $("cards").prepend(card);
  const form = new FormData();
  form.append("files", file, file.name);
  const query = new URLSearchParams({ explain: $("explain").checked, rescan: $("rescan").checked });
  const state = card.querySelector(".state");
  const timer = setTimeout(() => { state.textContent = "scanning…"; }, 300);
  try {
    const body = await api("/v1/scan?" + query, { method: "POST", body: form });
    fillCard(card, body.items[0], URL.createObjectURL(file));
  } catch (err) {
    fillError(card, file.name, err.code, err.message);
  } finally {
    clearTimeout(timer);
    card.removeAttribute("aria-busy");
  }
}

function fillError(card, name, code, message) {
  card.className = "card error";
  card.replaceChildren(
    el("h2", {}, el("span", { class: "badge error", text: "error" }), el("span", { class: "path", text: name })),
    el("p", {}, el("code", { text: code }), " " + message));
}

function fillCard(card, item, pictureUrl) {
  const r = item.result;
  if (r.status !== "ok") return fillError(card, r.path, r.error.code, r.error.message);
  card.className = "card " + r.verdict;
  card.dataset.verdict = r.verdict;
  const meta = `${r.width}×${r.height} ${r.format} · ${r.tiles} tile${r.tiles === 1 ? "" : "s"} · ${r.model} ${r.model_version}`
    + ` · sha256 ${r.sha256.slice(0, 12)}` + (item.cached ? " · from history (scanned before)" : "");
  const x = r.explanation;
  const left = el("div", {}, picture(pictureUrl, x));
  const right = el("div", {}, el("h3", { text: "probability of AI-generated" }), probability(r));
  // What decided the verdict: the pixels, or the file's own provenance (C2PA, metadata, watermark).
  if (r.verdict_source) right.append(el("p", { class: "source" }, el("strong", { text: "decided by " + r.verdict_source + ": " }),
    r.verdict_reason || ""));
  if (x && x.narrative) right.append(el("h3", { text: "narrative" }), el("p", { text: x.narrative.summary }));
  if (x && x.artifacts && x.artifacts.length) right.append(el("h3", { text: "artifacts" }), artifacts(x.artifacts));
  for (const w of r.warnings || []) right.append(el("p", { class: "muted" }, el("code", { text: w.code }), " " + w.message));
  const download = el("button", { type: "button", text: "Download JSON" });
  download.addEventListener("click", () => save(r));
  card.replaceChildren(
    el("h2", {}, el("span", { class: "badge " + r.verdict, text: r.verdict }), el("span", { class: "path", text: r.path }),
      el("span", { class: "muted", text: `p_fake ${r.p_fake.toFixed(3)}` }), download),
    el("div", { class: "meta", text: meta }),
    el("div", { class: "columns" }, left, right));
  if (x && x.maps && x.maps.length) card.append(el("h3", { text: "evidence maps" }), maps(x.maps));
}

function picture(url, x) {
  if (!url) return el("p", { class: "muted", text: "(the image is not kept on the server)" });
  const box = el("figure", { class: "thumb" }, el("img", { src: url, alt: "the scanned image" }));
  const heat = x && x.maps && x.maps.find((m) => m.png_base64 && m.kind !== "spectrum");
  if (heat) box.append(el("img", { class: "heat", src: "data:image/png;base64," + heat.png_base64, alt: heat.title + " overlay" }));
  return box;
}

function probability(r) {
  const d = decision || { threshold: r.threshold, uncertain_low: r.threshold, uncertain_high: r.threshold };
  const pct = (v) => (100 * v).toFixed(1) + "%";
  const bar = el("div", { class: "probability", role: "img",
    "aria-label": `p_fake ${r.p_fake.toFixed(3)}; threshold ${r.threshold}; uncertain from ${d.uncertain_low} to ${d.uncertain_high}` });
  const band = el("div", { class: "band" });
  band.style.left = pct(d.uncertain_low);
  band.style.width = pct(d.uncertain_high - d.uncertain_low);
  const threshold = el("div", { class: "threshold" });
  threshold.style.left = pct(r.threshold);
  const marker = el("div", { class: "marker" });
  marker.style.left = pct(r.p_fake);
  bar.append(band, threshold, marker);
  for (const v of [0, 0.5, 1]) {
    const label = el("span", { class: "scale", text: String(v) });
    label.style.left = v === 1 ? "calc(100% - 8px)" : pct(v);
    bar.append(label);
  }
  return bar;
}

function artifacts(list) {
  const body = el("tbody");
  for (const a of list) body.append(el("tr", {}, el("td", { text: a.name }), el("td", { class: "number", text: a.score.toFixed(2) }),
    el("td", { text: a.explanation })));
  return el("table", { class: "artifacts" }, el("thead", {}, el("tr", {}, el("th", { text: "artifact" }),
    el("th", { text: "score" }), el("th", { text: "why" }))), body);
}

function maps(list) {
  const grid = el("div", { class: "maps" });
  for (const m of list) {
    if (!m.png_base64) continue;
    grid.append(el("figure", {}, el("img", { src: "data:image/png;base64," + m.png_base64, alt: m.title }),
      el("figcaption", {}, el("strong", { text: m.title }), " " + (m.note || ""))));
  }
  return grid;
}

function save(result) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(result, null, 2)], { type: "application/json" }));
  const link = el("a", { href: url, download: (result.path || "result") + ".json" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// --- history --------------------------------------------------------------------------------

async function loadHistory() {
  const query = new URLSearchParams({ limit: PAGE, offset: historyOffset });
  if ($("f-verdict").value) query.set("verdict", $("f-verdict").value);
  if ($("f-sha256").value.trim()) query.set("sha256", $("f-sha256").value.trim());
  if ($("f-since").value) query.set("since", $("f-since").value + "T00:00:00Z");
  if ($("f-until").value) query.set("until", $("f-until").value + "T23:59:59Z");
  const tbody = $("history-table").querySelector("tbody");
  try {
    const page = await api("/v1/scans?" + query);
    tbody.replaceChildren(...page.items.map(historyRow));
    const last = Math.min(page.total, historyOffset + page.items.length);
    $("history-caption").textContent = page.total ? `${historyOffset + 1}–${last} of ${page.total} scans, newest first` : "no scans match";
    $("prev").disabled = historyOffset === 0;
    $("next").disabled = last >= page.total;
  } catch (err) {
    $("history-caption").textContent = `cannot load the history: ${err.message}`;
  }
}

function historyRow(s) {
  const row = el("tr", { tabindex: "0" },
    el("td", { class: "number", text: s.id }), el("td", { text: s.created_at.slice(0, 19).replace("T", " ") }),
    el("td", { class: "path", text: s.filename }), el("td", {}, el("span", { class: "badge " + s.verdict, text: s.verdict })),
    el("td", { class: "number", text: s.p_fake.toFixed(3) }), el("td", { text: `${s.model} ${s.model_version}` }),
    el("td", {}, el("code", { text: s.sha256.slice(0, 12) })));
  const open = async () => {
    const record = await api("/v1/scans/" + s.id);
    const card = el("article", { class: "card" });
    $("history-card").replaceChildren(card);
    fillCard(card, { cached: true, result: { ...record.result, path: record.filename } }, null);
    card.scrollIntoView();
  };
  row.addEventListener("click", open);
  row.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
  return row;
}

function show(view) {
  const history = view === "history";
  $("view-scan").hidden = history;
  $("view-history").hidden = !history;
  $("tab-scan").setAttribute("aria-pressed", String(!history));
  $("tab-history").setAttribute("aria-pressed", String(history));
  if (history) loadHistory();
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem("synthscan-key") || "";
  $("api-key").addEventListener("change", connect);
  $("files").addEventListener("change", (e) => { scanFiles(e.target.files); e.target.value = ""; });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); scanFiles(e.dataTransfer.files); });
  $("scan-form").addEventListener("submit", (e) => e.preventDefault());
  $("history-form").addEventListener("submit", (e) => { e.preventDefault(); historyOffset = 0; loadHistory(); });
  $("prev").addEventListener("click", () => { historyOffset = Math.max(0, historyOffset - PAGE); loadHistory(); });
  $("next").addEventListener("click", () => { historyOffset += PAGE; loadHistory(); });
  $("tab-scan").addEventListener("click", () => show("scan"));
  $("tab-history").addEventListener("click", () => show("history"));
  connect();
});
