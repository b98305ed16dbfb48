// Attention explorer: POST /predict, then draw each text with its tokens shaded by attention.
"use strict";

const form = document.getElementById("form");
const textsEl = document.getElementById("texts");
const keyEl = document.getElementById("key");
const button = document.getElementById("predict");
const statusEl = document.getElementById("status");
const errorEl = document.getElementById("error");
const resultsEl = document.getElementById("results");
const modelEl = document.getElementById("model");

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Light amber to deep red; the text turns white where the background gets dark. A token at or
// below the uniform share (1/n) stays unshaded and the most-attended one is darkest, so a text
// whose attention is spread evenly shows no false highlights.
function shade(weight, maxWeight, n) {
  const uniform = 1 / n;
  const t = maxWeight - uniform > 1e-6 ? Math.min(1, Math.max(0, (weight - uniform) / (maxWeight - uniform))) : 0;
  const hue = 45 - 45 * t, light = 96 - 56 * t;
  return { background: `hsl(${hue.toFixed(1)}, 90%, ${light.toFixed(1)}%)`, color: light < 55 ? "#fff" : "inherit", level: t };
}

function renderText(text, tokens) {
  const box = el("p", { class: "text" });
  const maxW = Math.max(...tokens.map((t) => t.attention));
  let pos = 0;
  for (const tok of tokens) {
    if (tok.start > pos) box.append(document.createTextNode(text.slice(pos, tok.start)));
    const s = shade(tok.attention, maxW, tokens.length);
    const mark = el("mark", {
      class: "tok",
      title: `${tok.piece}: ${tok.attention.toFixed(4)}`,
      "data-attention": String(tok.attention),
      "data-level": s.level.toFixed(4),
      tabindex: "0",
      "aria-label": `${tok.text}, attention ${tok.attention.toFixed(4)}`,
    }, text.slice(tok.start, tok.end));
    mark.style.background = s.background;
    mark.style.color = s.color;
    box.append(mark);
    pos = tok.end;
  }
  if (pos < text.length) box.append(document.createTextNode(text.slice(pos)));
  return box;
}

function renderPrediction(text, pred) {
  const card = el("article", { class: "card" });
  const h = el("h2");
  h.append(el("span", { class: `label label-${pred.label}` }, pred.label), el("span", { class: "hint" }, `score ${pred.score.toFixed(3)}`));
  card.append(h);
  const bars = el("div", { class: "bars" });
  for (const [label, p] of Object.entries(pred.probabilities)) {
    const bar = el("div", { class: "bar", role: "img", "aria-label": `${label} ${(100 * p).toFixed(1)}%` });
    const fill = el("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    bar.append(fill);
    bars.append(el("span", {}, label), bar, el("span", {}, `${(100 * p).toFixed(1)}%`));
  }
  card.append(bars, renderText(text, pred.tokens));
  if (pred.truncated) card.append(el("p", { class: "truncated" }, "Truncated: only the first tokens were read."));
  return card;
}

function showError(body, status) {
  const err = body && body.error;
  const message = err ? `${err.message}${err.fix ? "\nFix: " + err.fix : ""}` : `HTTP ${status}`;
  errorEl.textContent = `Error ${status}: ${message}`;
  errorEl.hidden = false;
}

async function predict(event) {
  event.preventDefault();
  const texts = textsEl.value.split("\n").filter((t) => t.trim() !== "");
  errorEl.hidden = true;
  resultsEl.replaceChildren();
  if (texts.length === 0) {
    showError({ error: { message: "Type at least one text.", fix: "" } }, "—");
    return;
  }
  const headers = { "Content-Type": "application/json" };
  if (keyEl.value) headers.Authorization = `Bearer ${keyEl.value}`;
  button.disabled = true;
  statusEl.textContent = "Predicting…";
  try {
    const response = await fetch("/predict", { method: "POST", headers, body: JSON.stringify({ texts }) });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      showError(body, response.status);
      return;
    }
    body.predictions.forEach((pred, i) => resultsEl.append(renderPrediction(texts[i], pred)));
    modelEl.textContent = `Model ${body.model.name}, version ${body.model.version}.`;
  } catch (e) {
    showError(null, `network: ${e}`);
  } finally {
    button.disabled = false;
    statusEl.textContent = "";
  }
}

form.addEventListener("submit", predict);
textsEl.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
});
