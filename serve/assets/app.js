// flowood dashboard: reads /api/run and draws the run's views as SVG;
// the upload box posts images to /v1/score. No libraries, no CDN.
"use strict";

const SVGNS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
let summary = null;
let marks = []; // per-dimension scores of uploaded images

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

function fmt(v, d) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toFixed(d === undefined ? 3 : d);
}

// chart returns an SVG with axes for x in [x0, x1], y in [y0, y1] and a
// function mapping data to pixels.
function chart(container, x0, x1, y0, y1, xlabel, ylabel) {
  container.textContent = "";
  const W = 900, H = 300, L = 60, R = 20, T = 10, B = 40;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img" }, container);
  const px = x => L + (x - x0) / (x1 - x0 || 1) * (W - L - R);
  const py = y => H - B - (y - y0) / (y1 - y0 || 1) * (H - T - B);
  el("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }, svg);
  el("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }, svg);
  for (let i = 0; i <= 5; i++) {
    const xv = x0 + (x1 - x0) * i / 5, yv = y0 + (y1 - y0) * i / 5;
    el("text", { x: px(xv), y: H - B + 15, "text-anchor": "middle" }, svg).textContent = fmt(xv, 2);
    el("text", { x: L - 5, y: py(yv) + 4, "text-anchor": "end" }, svg).textContent = fmt(yv, 2);
  }
  el("text", { x: (L + W - R) / 2, y: H - 5, "text-anchor": "middle" }, svg).textContent = xlabel;
  const yl = el("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(T + H - B) / 2})` }, svg);
  yl.textContent = ylabel;
  return { svg, px, py };
}

function legend(container, names) {
  const div = document.createElement("div");
  div.className = "legend";
  names.forEach((n, i) => {
    const s = document.createElement("span");
    const sw = document.createElement("i");
    sw.style.background = COLORS[i % COLORS.length];
    s.appendChild(sw);
    s.appendChild(document.createTextNode(n));
    div.appendChild(s);
  });
  container.appendChild(div);
}

function drawHistogram() {
  const h = summary && summary.histogram;
  const box = document.getElementById("histogram");
  if (!h) return;
  const e = h.edges;
  let ymax = 0;
  const dens = h.series.map(s => s.counts.map(c => c / Math.max(1, s.n)));
  dens.forEach(d => d.forEach(v => { ymax = Math.max(ymax, v); }));
  const c = chart(box, e[0], e[e.length - 1], 0, ymax * 1.05, h.unit, "fraction of the set");
  c.svg.setAttribute("id", "histogram-svg");
  dens.forEach((d, k) => {
    let p = `M ${c.px(e[0])} ${c.py(0)}`;
    d.forEach((v, i) => { p += ` L ${c.px(e[i])} ${c.py(v)} L ${c.px(e[i + 1])} ${c.py(v)}`; });
    p += ` L ${c.px(e[e.length - 1])} ${c.py(0)}`;
    el("path", { d: p, fill: "none", stroke: COLORS[k % COLORS.length], "stroke-width": 2, class: "hist-series" }, c.svg);
  });
  marks.forEach(m => {
    const x = c.px(Math.min(Math.max(m.value, e[0]), e[e.length - 1]));
    el("line", { x1: x, x2: x, y1: c.py(0), y2: c.py(ymax), stroke: "#000", "stroke-dasharray": "4 3", class: "upload-mark" }, c.svg);
    el("text", { x: x + 3, y: c.py(ymax) + 10 }, c.svg).textContent = m.name;
  });
  legend(box, h.series.map(s => `${s.name} (n=${s.n})`));
}

function drawROC() {
  const box = document.getElementById("roc");
  const rocs = (summary && summary.roc) || [];
  if (!rocs.length) return;
  const c = chart(box, 0, 1, 0, 1, "false positive rate (OOD accepted)", "true positive rate (in-distribution kept)");
  el("line", { x1: c.px(0), y1: c.py(0), x2: c.px(1), y2: c.py(1), stroke: "#bbb", "stroke-dasharray": "3 3" }, c.svg);
  rocs.forEach((r, k) => {
    const p = r.fpr.map((f, i) => `${i ? "L" : "M"} ${c.px(f)} ${c.py(r.tpr[i])}`).join(" ");
    el("path", { d: p, fill: "none", stroke: COLORS[k % COLORS.length], "stroke-width": 2 }, c.svg);
  });
  legend(box, rocs.map(r => `${r.ood}: AUROC ${fmt(r.auroc)}`));
}

function drawAUROC() {
  const m = summary && summary.metrics;
  const body = document.querySelector("#auroc-table tbody");
  body.textContent = "";
  if (!m || !m.ood) {
    const tr = body.insertRow();
    const td = tr.insertCell();
    td.colSpan = 6;
    td.className = "empty";
    td.textContent = "No evaluation yet.";
    return;
  }
  const ci = (o, k) => {
    const iv = o[k + "_ci"];
    return iv ? ` [${fmt(iv[0])}, ${fmt(iv[1])}]` : "";
  };
  for (const name of Object.keys(m.ood).sort()) {
    const scores = m.ood[name];
    for (const score of Object.keys(scores).sort((a, b) => (a === "loglik" ? -1 : b === "loglik" ? 1 : a < b ? -1 : 1))) {
      const o = scores[score];
      const tr = body.insertRow();
      tr.className = "auroc-row";
      [`${name}: ${score}`, fmt(o.auroc) + ci(o, "auroc"), fmt(o.aupr_in) + ci(o, "aupr_in"), fmt(o.aupr_out) + ci(o, "aupr_out"),
        fmt(o.fpr_at_95_tpr) + ci(o, "fpr_at_95_tpr"), `${o.n_in} / ${o.n_out}`].forEach(v => { tr.insertCell().textContent = v; });
    }
  }
  document.getElementById("convention").textContent = m.convention || "";
}

function drawTraining() {
  const t = summary && summary.train_log;
  const box = document.getElementById("training");
  if (!t || !t.rows.length) return;
  const col = n => t.columns.indexOf(n);
  const xs = col("step");
  const series = ["train_bpd", "test_bpd"].filter(n => col(n) >= 0);
  let y0 = Infinity, y1 = -Infinity, x1 = 0;
  t.rows.forEach(r => {
    x1 = Math.max(x1, r[xs] || 0);
    series.forEach(n => { const v = r[col(n)]; if (v !== null) { y0 = Math.min(y0, v); y1 = Math.max(y1, v); } });
  });
  if (!Number.isFinite(y0)) return;
  const c = chart(box, 0, x1 || 1, y0, y1 === y0 ? y0 + 1 : y1, "step", "per-dimension loss");
  series.forEach((n, k) => {
    const pts = t.rows.filter(r => r[col(n)] !== null && r[xs] !== null);
    const p = pts.map((r, i) => `${i ? "L" : "M"} ${c.px(r[xs])} ${c.py(r[col(n)])}`).join(" ");
    el("path", { d: p, fill: "none", stroke: COLORS[k], "stroke-width": 2 }, c.svg);
    pts.forEach(r => el("circle", { cx: c.px(r[xs]), cy: c.py(r[col(n)]), r: 2.5, fill: COLORS[k] }, c.svg));
  });
  legend(box, series);
}

function drawFigures() {
  const box = document.getElementById("figures");
  const figs = (summary && summary.figures) || [];
  if (!figs.length) return;
  box.textContent = "";
  figs.forEach(f => {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = "/run/" + f;
    img.alt = f;
    const cap = document.createElement("figcaption");
    cap.textContent = f;
    fig.appendChild(img);
    fig.appendChild(cap);
    box.appendChild(fig);
  });
}

function render() {
  document.getElementById("run-name").textContent = summary.run;
  const [h, w, c] = summary.shape;
  document.getElementById("run-line").textContent =
    `model ${summary.model}, checkpoint ${summary.checkpoint}, ${h}x${w}x${c} images; OOD below log-likelihood ` +
    `${fmt(summary.threshold, 1)} nats (${summary.calibrated ? "calibrated at 95% TPR" : "not calibrated: run flowood eval"}); ` +
    `scores ${(summary.scores || ["loglik"]).join(", ")}, ood decided by ${summary.primary || "loglik"}`;
  document.getElementById("config").textContent = JSON.stringify(summary.config, null, 2);
  setupScoreColumns();
  drawHistogram();
  drawAUROC();
  drawROC();
  drawTraining();
  drawFigures();
  document.body.dataset.loaded = "true";
}

async function upload(files) {
  const err = document.getElementById("upload-error");
  err.hidden = true;
  const form = new FormData();
  for (const f of files) form.append("image", f, f.name);
  const resp = await fetch("/v1/score", { method: "POST", body: form });
  const body = await resp.json();
  if (!resp.ok) {
    err.textContent = `${resp.status}: ${body.error}`;
    err.hidden = false;
    return;
  }
  const table = document.getElementById("upload-results");
  const tbody = table.querySelector("tbody");
  const unit = summary && summary.histogram ? summary.histogram.unit : "bits_per_dim";
  for (const r of body.results) {
    const tr = tbody.insertRow();
    tr.className = "upload-row";
    tr.insertCell().textContent = r.name;
    tr.insertCell().textContent = fmt(r.log_likelihood, 2);
    tr.insertCell().textContent = fmt(r.bits_per_dim, 4);
    const v = tr.insertCell();
    v.textContent = r.ood ? "OOD" : "in-distribution";
    v.className = r.ood ? "ood" : "in";
    for (const name of extraScores()) {
      const c = tr.insertCell();
      const by = r.ood_by || {};
      c.textContent = fmt((r.scores || {})[name], 2) + (name in by ? (by[name] ? " OOD" : " in") : "");
      c.className = "score " + (by[name] ? "ood" : name in by ? "in" : "");
    }
    if (unit === "bits_per_dim") marks.push({ name: r.name, value: r.bits_per_dim });
  }
  table.hidden = false;
  drawHistogram();
}

// extraScores are the scores shown in their own upload columns: every
// score the detector computes but loglik (which has its own).
function extraScores() {
  return ((summary && summary.scores) || []).filter(s => s !== "loglik");
}

// setupScoreColumns adds a column per score to the upload table, and a
// footer row with each score's threshold.
function setupScoreColumns() {
  const table = document.getElementById("upload-results");
  const head = table.querySelector("thead tr");
  const thr = summary.thresholds || {};
  document.getElementById("verdict-head").textContent = `verdict (${summary.primary || "loglik"})`;
  const foot = table.querySelector("tfoot");
  foot.textContent = "";
  const fr = foot.insertRow();
  fr.className = "threshold-row";
  const label = fr.insertCell();
  label.textContent = "OOD below";
  fr.insertCell().textContent = fmt(thr.loglik, 2);
  fr.insertCell();
  fr.insertCell();
  for (const name of extraScores()) {
    const th = document.createElement("th");
    th.textContent = name;
    th.className = "score-head";
    head.appendChild(th);
    fr.insertCell().textContent = name in thr ? fmt(thr[name], 2) : "–";
  }
  document.getElementById("score-note").textContent =
    "Every score is higher = more in-distribution; a score marked OOD is below its threshold " +
    "(calibrated by flowood eval to keep 95% of held-out in-distribution data).";
}

function setupUpload() {
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  input.addEventListener("change", () => upload(input.files));
  drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", e => { e.preventDefault(); drop.classList.remove("over"); upload(e.dataTransfer.files); });
}

async function main() {
  setupUpload();
  const resp = await fetch("/api/run");
  summary = await resp.json();
  if (!resp.ok) {
    document.getElementById("run-line").textContent = "error: " + summary.error;
    return;
  }
  render();
}

main();
