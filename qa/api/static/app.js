// The question page: asks POST /search, checks quotes with POST /verify, opens GET /documents/{id} at a citation.
//
// Every string that comes from a document or the service is written with textContent or as a Text node
// (never innerHTML), so a document containing markup shows that markup as text.
//
// The service counts offsets in Unicode code points (Python strings); JavaScript strings count UTF-16
// units, so every offset goes through unitIndex() before it slices a string.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("ask");
  const question = $("question");
  const askButton = $("ask-button");
  const mode = $("mode");
  const topK = $("top-k");
  const sourceInput = $("source");
  const afterInput = $("after");
  const beforeInput = $("before");
  const keyBox = $("key-box");
  const keyInput = $("api-key");
  const statusLine = $("status");
  const notice = $("notice");
  const errorLine = $("error");
  const results = $("results");
  const docPane = $("document");
  const docTitle = $("doc-title");
  const docMeta = $("doc-meta");
  const docText = $("doc-text");
  const docClose = $("doc-close");

  const KEY_STORAGE = "qa.apiKey";
  let searchSeq = 0; // only the latest search (and document) may write to the page
  let docSeq = 0;
  let openedFrom = null; // the citation button that opened the document, to return focus to

  // ------------------------------------------------------------------ small helpers

  /** An element with attributes and children; strings become Text nodes, never markup. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else node.setAttribute(name, value);
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  /** A function mapping code-point offsets of `text` (only those in `points`) to UTF-16 indexes. */
  function unitIndex(text, points) {
    const wanted = [...new Set(points)].sort((a, b) => a - b);
    const map = new Map();
    let codePoint = 0;
    let unit = 0;
    for (const point of wanted) {
      while (codePoint < point && unit < text.length) {
        const code = text.charCodeAt(unit);
        const pair = code >= 0xd800 && code <= 0xdbff && unit + 1 < text.length;
        unit += pair ? 2 : 1;
        codePoint += 1;
      }
      map.set(point, unit);
    }
    return (point) => map.get(point);
  }

  /** Sorted, merged [start, end) ranges clipped to [lo, hi]. */
  function mergeRanges(ranges, lo, hi) {
    const clipped = ranges
      .map((r) => [Math.max(lo, r.start), Math.min(hi, r.end)])
      .filter(([s, e]) => s < e)
      .sort((a, b) => a[0] - b[0]);
    const merged = [];
    for (const [s, e] of clipped) {
      const last = merged[merged.length - 1];
      if (last && s <= last[1]) last[1] = Math.max(last[1], e);
      else merged.push([s, e]);
    }
    return merged;
  }

  /**
   * `text` (whose first character is at code-point offset `base` of the document) as nodes, with the
   * supporting sentences `highlights` (document offsets) in <strong class="support">.
   */
  function withSupport(text, base, highlights) {
    const ranges = mergeRanges(highlights, base, base + [...text].length);
    const unit = unitIndex(text, ranges.flat().map((p) => p - base));
    const fragment = document.createDocumentFragment();
    let at = 0;
    for (const [s, e] of ranges) {
      const from = unit(s - base);
      const to = unit(e - base);
      fragment.append(text.slice(at, from), el("strong", { class: "support" }, text.slice(from, to)));
      at = to;
    }
    fragment.append(text.slice(at));
    return fragment;
  }

  function linesLabel(citation) {
    return citation.line_start === citation.line_end
      ? `line ${citation.line_start}`
      : `lines ${citation.line_start}\u2013${citation.line_end}`;
  }

  function dateLabel(citation) {
    if (!citation.date) return "undated";
    return citation.date_source === "file" ? `${citation.date} (file modified)` : citation.date;
  }

  function pageLabel(citation) {
    return citation.page_end == null || citation.page_end === citation.page
      ? `page ${citation.page}`
      : `pages ${citation.page}\u2013${citation.page_end}`;
  }

  function setStatus(text) {
    statusLine.textContent = text;
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.hidden = !text;
  }

  // ------------------------------------------------------------------ talking to the service

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** Human words for a failed request; the service's own message is kept where it says what was wrong. */
  function describe(status, message) {
    switch (status) {
      case 401:
        return "This service needs an API key. Enter it under \u201cAPI key\u201d and try again.";
      case 404:
        return `Not found: ${message}`;
      case 413:
      case 422:
        return `The request was not accepted: ${message}`;
      case 503:
        return `The service cannot answer right now: ${message}`;
      default:
        return `The service answered with an error (${status}): ${message}`;
    }
  }

  async function api(path, options) {
    const headers = new Headers((options && options.headers) || {});
    const key = keyInput.value.trim();
    if (key) headers.set("Authorization", `Bearer ${key}`);
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (error) {
      throw new ApiError(0, `Could not reach the service (${error.message}).`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const message = body && typeof body.message === "string" ? body.message : response.statusText;
      throw new ApiError(response.status, describe(response.status, message));
    }
    return body;
  }

  function failed(error) {
    if (!(error instanceof ApiError)) throw error;
    showError(error.message);
    if (error.status === 401) {
      keyBox.open = true;
      keyInput.focus();
    }
  }

  // ------------------------------------------------------------------ searching

  function searchRequest() {
    const body = { question: question.value };
    if (mode.value) body.mode = mode.value;
    const k = topK.value.trim();
    if (k !== "") body.top_k = Number(k);
    for (const [name, input] of [["source", sourceInput], ["after", afterInput], ["before", beforeInput]]) {
      const value = input.value.trim();
      if (value !== "") body[name] = value;
    }
    return body;
  }

  // The question, mode, number of passages and filters live in the URL (?q=...&mode=...&k=...), so a search can
  // be bookmarked, shared, reloaded, and revisited with Back and Forward.
  const URL_FIELDS = [["q", () => question], ["mode", () => mode], ["k", () => topK],
    ["source", () => sourceInput], ["after", () => afterInput], ["before", () => beforeInput]];

  function urlOfForm() {
    const params = new URLSearchParams();
    for (const [name, input] of URL_FIELDS) {
      const value = input().value.trim();
      if (value !== "") params.set(name, value);
    }
    const query = params.toString();
    return query ? `?${query}` : location.pathname;
  }

  function formFromUrl() {
    const params = new URLSearchParams(location.search);
    for (const [name, input] of URL_FIELDS) input().value = params.get(name) || "";
    if (sourceInput.value || afterInput.value || beforeInput.value) $("filter-box").open = true;
    return params.get("q") || "";
  }

  function submitted(event) {
    event.preventDefault();
    const url = urlOfForm();
    if (url !== location.search) history.pushState(null, "", url);
    search();
  }

  function clearResults() {
    searchSeq++;
    hideDocument();
    showError("");
    notice.hidden = true;
    results.replaceChildren();
    setStatus("");
  }

  function search() {
    return postToResults("search", searchRequest(), "Searching\u2026", renderAnswer);
  }

  // A search and a quote check share the results list: only the latest request writes to it.
  async function postToResults(path, body, status, render) {
    const seq = ++searchSeq;
    hideDocument(); // the open document belongs to the previous request; focus stays where it is
    showError("");
    notice.hidden = true;
    results.replaceChildren();
    results.setAttribute("aria-busy", "true");
    setStatus(status);
    try {
      const reply = await api(path, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      if (seq !== searchSeq) return;
      render(reply);
    } catch (error) {
      if (seq !== searchSeq) return;
      setStatus("");
      failed(error);
    } finally {
      if (seq === searchSeq) results.removeAttribute("aria-busy");
    }
  }

  function renderAnswer(answer) {
    const n = answer.results.length;
    const confidence = `confidence ${Math.round(answer.confidence * 100)}%`;
    setStatus(
      n === 0
        ? "No passages found."
        : `${n} passage${n === 1 ? "" : "s"} for \u201c${answer.question}\u201d (${confidence}).`,
    );
    if (!answer.answerable) {
      notice.textContent =
        `The documents don't seem to answer this (confidence ${Math.round(answer.confidence * 100)}%).` +
        (n ? " The closest passages follow." : "");
      notice.hidden = false;
    }
    if (answer.excluded_undated) {
      const m = answer.excluded_undated;
      notice.textContent =
        (notice.hidden ? "" : notice.textContent + " ") +
        `${m} undated document${m === 1 ? " was" : "s were"} left out by the date filter.`;
      notice.hidden = false;
    }
    results.replaceChildren(...answer.results.map(renderHit));
  }

  function renderHit(hit) {
    const c = hit.citation;
    const open = el(
      "button",
      { type: "button", class: "cite-open" },
      c.title || c.source,
      el("span", { class: "visually-hidden" }, " (open the document at this passage)"),
    );
    open.addEventListener("click", () => openDocument(hit, open));
    const facts = [
      c.section ? el("span", { class: "cite-section" }, c.section) : null,
      el("span", { class: "cite-date" }, dateLabel(c)),
      el("span", { class: "cite-source" }, c.anchor ? `${c.source}#${c.anchor}` : c.source),
      c.page != null ? el("span", { class: "cite-page" }, pageLabel(c)) : null,
      el("span", { class: "cite-lines" }, linesLabel(c)),
    ];
    const meta = el("span", { class: "cite-meta" }, ...facts.filter(Boolean));
    return el(
      "li",
      { class: "hit" },
      el("p", { class: "hit-text" }, withSupport(hit.text, c.start, c.highlight)),
      el("p", { class: "citation" }, open, meta),
    );
  }

  // ------------------------------------------------------------------ checking a quote

  const VERDICT_LABELS = { exact: "Found", approximate: "Close", supported: "Supported", not_found: "Not found" };

  function checkQuote(event) {
    event.preventDefault();
    return postToResults("verify", { text: $("quote").value }, "Checking\u2026", renderVerification);
  }

  function renderVerification(verification) {
    const counts = {};
    for (const piece of verification.pieces) counts[piece.verdict] = (counts[piece.verdict] || 0) + 1;
    const parts = Object.keys(VERDICT_LABELS)
      .filter((verdict) => counts[verdict])
      .map((verdict) => `${counts[verdict]} ${VERDICT_LABELS[verdict].toLowerCase()}`);
    const n = verification.pieces.length;
    setStatus(`Checked ${n} piece${n === 1 ? "" : "s"}: ${parts.join(", ")}.`);
    results.replaceChildren(...verification.pieces.map(renderPiece));
  }

  function renderPiece(piece) {
    const label = el("span", { class: `verdict verdict-${piece.verdict}` }, VERDICT_LABELS[piece.verdict]);
    const score = piece.verdict === "exact" ? null : el("span", { class: "verdict-score" },
      piece.verdict === "approximate" ? `similarity ${Math.round(piece.score * 100)}%`
        : `support ${Math.round(piece.score * 100)}%`);
    const head = el("p", { class: "piece-text" }, label, " ", el("q", {}, piece.text), score ? " " : null, score);
    const item = el("li", { class: `hit piece piece-${piece.verdict}` }, head);
    for (const match of piece.matches) {
      const c = match.citation;
      const open = el(
        "button",
        { type: "button", class: "cite-open" },
        c.title || c.source,
        el("span", { class: "visually-hidden" }, " (open the document at this place)"),
      );
      open.addEventListener("click", () => openDocument(match, open));
      const facts = [
        c.section ? el("span", { class: "cite-section" }, c.section) : null,
        el("span", { class: "cite-source" }, c.anchor ? `${c.source}#${c.anchor}` : c.source),
        c.page != null ? el("span", { class: "cite-page" }, pageLabel(c)) : null,
        el("span", { class: "cite-lines" }, linesLabel(c)),
      ];
      const body = piece.verdict === "supported" ? withSupport(match.text, c.start, c.highlight) : match.text;
      item.append(
        el("p", { class: "hit-text" }, body),
        el("p", { class: "citation" }, open, el("span", { class: "cite-meta" }, ...facts.filter(Boolean))),
      );
    }
    if (piece.differences.length) {
      item.append(el("p", { class: "differences" }, "Differs: ", ...piece.differences.flatMap((d, i) => [
        i ? "; " : "",
        el("del", {}, d.quote || "\u2014"),
        " \u2192 ",
        el("ins", {}, d.document || "\u2014"),
      ])));
    }
    return item;
  }

  // ------------------------------------------------------------------ the document at a citation

  function documentPath(id) {
    // Ids are corpus-relative paths: encode each segment, keep the slashes the route expects.
    return "documents/" + id.split("/").map(encodeURIComponent).join("/");
  }

  async function openDocument(hit, button) {
    const seq = ++docSeq;
    showError("");
    openedFrom = button;
    try {
      const doc = await api(documentPath(hit.citation.source));
      if (seq !== docSeq) return;
      renderDocument(doc, hit.citation);
    } catch (error) {
      if (seq !== docSeq) return;
      failed(error);
    }
  }

  function renderDocument(doc, citation) {
    const text = doc.text;
    const unit = unitIndex(text, [citation.start, citation.end]);
    const start = unit(citation.start);
    const end = unit(citation.end);
    const cited = el(
      "mark",
      { class: "passage", id: "cited", tabindex: "-1" },
      withSupport(text.slice(start, end), citation.start, citation.highlight),
    );
    docText.replaceChildren(text.slice(0, start), cited, text.slice(end));
    docTitle.textContent = doc.title || doc.id;
    const facts = [doc.date || "undated", doc.author, doc.source, doc.id, linesLabel(citation)];
    docMeta.textContent = facts.filter(Boolean).join(" \u00b7 ");
    docPane.hidden = false;
    document.body.classList.add("reading");
    // A span that fits is centred, with context around it; a longer one starts at the top.
    const room = Math.min(window.innerHeight, docText.clientHeight);
    cited.scrollIntoView({ block: cited.getBoundingClientRect().height < room ? "center" : "start" });
    cited.focus({ preventScroll: true });
  }

  function hideDocument() {
    docSeq += 1; // a document still on its way no longer opens
    docPane.hidden = true;
    docText.replaceChildren();
    document.body.classList.remove("reading");
  }

  function closeDocument() {
    hideDocument();
    if (openedFrom && openedFrom.isConnected) openedFrom.focus();
  }

  // ------------------------------------------------------------------ wiring

  keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";
  keyBox.open = false;
  keyInput.addEventListener("input", () => {
    const key = keyInput.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  });
  keyInput.addEventListener("change", () => describeIndex()); // with the key, the service names its index
  form.addEventListener("submit", submitted);
  $("check").addEventListener("submit", checkQuote);
  window.addEventListener("popstate", () => {
    if (formFromUrl()) search();
    else clearResults();
  });
  docClose.addEventListener("click", closeDocument);
  docPane.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDocument();
  });
  // Which index this page searches, from the service itself: its name (when the service shows it) and size.
  async function describeIndex() {
    let health;
    try {
      health = await api("health");
    } catch (error) {
      return; // searching reports what is wrong
    }
    if (!health || !health.index_loaded) return;
    const n = health.documents;
    const size = `${n} document${n === 1 ? "" : "s"}`;
    const line = $("index-line");
    line.textContent = health.index_name ? `Searching ${health.index_name}: ${size}.` : `Searching ${size}.`;
    line.hidden = false;
    if (health.index_name) document.title = `qa: ${health.index_name}`;
    question.placeholder = `Ask the ${size} a question in your own words`;
  }

  askButton.disabled = false;
  question.focus();
  describeIndex();
  if (formFromUrl()) search(); // a bookmarked or shared search runs as the page opens
})();
