// plotq dashboard: panels of server-rendered plots (all seven kinds) with their numbers
// as text, refreshed over Server-Sent Events while the range is live, rendered once
// through GET /api/v1/render for a fixed (custom or zoomed) range, and shareable as
// render links and <img> embeds. The browser never sees raw samples.
//
// Sharpness: each panel asks for an image of its displayed size × devicePixelRatio,
// snapped to a small grid of layout widths (so views stay shareable and cached) and
// drawn by the renderer at that scale (`dpr<N>` in the view key, `scale=` in a render
// URL). A debounced ResizeObserver re-lays panels out; a panel resubscribes only when its
// snapped size changes, and keeps its old image until the new one is decoded.
//
// Authentication: EventSource and <img> cannot send an Authorization header, so the page
// exchanges its token (asked once, kept in sessionStorage for this tab only) for a
// short-lived read ticket (POST /api/v1/tickets) and adds `ticket=` to the event stream
// and image URLs, renewing it before it expires. With no tokens configured (standalone
// on loopback) the ticket is issued without asking. Shared links are minted as signed
// grants (POST /api/v1/render/grants) with the token; in open mode they need none.
//
// The view is in the URL: service, metric (what every panel but the status ones plots;
// the picker lists the service's metrics, and a panel whose metric the service never
// sent says so), labels (a filter, `route=/pay,method=GET`) and group_by (one line per
// value of a label, in the kinds that compare, of one service), compare (more services
// for the kinds that compare),
// window (live) or from/until (fixed, RFC 3339), theme, per-panel options (histogram=,
// cdf=, latency_timeseries=) and tab. Tabs: Plots and Health (health.js, polling
// GET /api/v1/health with the token itself); the event stream is closed on Health.
"use strict";

/** The panels, in order; `time` kinds have a time axis (drag-to-zoom). */
const KINDS = [
  { kind: "histogram", title: "Latency distribution", generic: "Distribution", compares: true, log: true, bins: true, stats: "latency" },
  { kind: "latency_timeseries", title: "Latency over time", generic: "Over time", compares: true, max: true, time: true, stats: "latency" },
  { kind: "throughput", title: "Throughput", generic: "Throughput", compares: true, time: true, stats: "rate" },
  { kind: "status_codes", title: "Status codes", generic: "Status codes", compares: true, status: true, stats: "codes" },
  { kind: "error_rate", title: "Error rate", generic: "Error rate", compares: true, status: true, time: true, stats: "errors" },
  { kind: "heatmap", title: "Latency heatmap", generic: "Heatmap", compares: true, time: true, stats: "latency" },
  { kind: "cdf", title: "Latency CDF", generic: "CDF", compares: true, log: true, stats: "latency" },
];
/** The metric every kind but the status ones reads unless the view picks another. */
const DEFAULT_METRIC = "latency_ms";
/** What the status kinds read: the status codes of the requests. */
const STATUS_METRIC = "status_code";
const METRIC_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** The metric a panel plots: the view's, or the status codes for the status kinds. */
function metricOf(view, meta) {
  return meta.status ? STATUS_METRIC : view.metric;
}

/** The unit a metric's name says, by its suffix (`_ms`, `_seconds`, `_bytes`, …). */
function unitOf(metric) {
  const units = [[/(_ms|_millis(econds)?)$/, "ms"], [/(_s|_sec|_seconds)$/, "s"], [/(_us|_micros(econds)?)$/, "µs"],
    [/_ns$/, "ns"], [/_bytes$/, "bytes"], [/(_ratio|_percent|_pct)$/, "%"], [/^status_code$/, "HTTP status"]];
  const hit = units.find(([pattern]) => pattern.test(metric));
  return hit ? hit[1] : "";
}

/** A panel's title: what the kind shows, of which metric, in which unit. */
function panelTitle(view, meta) {
  const metric = metricOf(view, meta);
  const head = meta.status || metric === DEFAULT_METRIC ? meta.title : meta.generic;
  const unit = unitOf(metric);
  return `${head} · ${metric}${unit ? ` (${unit})` : ""}`;
}
const WINDOWS = ["5m", "15m", "1h", "6h", "24h"];
/** Layout widths an image may have (CSS pixels; height is width × 9/16): steps of 24 px,
 * so a panel's image is laid out at most 7.5 % wider than it is shown and its smallest
 * text (12 layout px) stays at least 11 CSS px on screen, while a resize re-renders only
 * every 24 px. */
const GRID_WIDTHS = Array.from({ length: 67 }, (_, i) => 320 + 24 * i).concat([1920]);
const MAX_IMAGE_PX = 4000;
const BIN_CHOICES = [10, 20, 50, 100, 200];
const DEFAULT_BINS = 50;
const MAX_COMPARED = 8;
/** A fixed-range render answered 503 is retried this many times (with Retry-After). */
const RENDER_RETRIES = 6;
const MIN_RANGE_MS = 10_000;
const EVENTS_URL = document.querySelector('meta[name="plotq-events-url"]').content;

const ui = {
  login: document.getElementById("login"),
  token: document.getElementById("token"),
  loginError: document.getElementById("login-error"),
  controls: document.getElementById("controls"),
  service: document.getElementById("service"),
  metric: document.getElementById("metric"),
  labels: document.getElementById("labels"),
  groupBy: document.getElementById("group-by"),
  compare: document.getElementById("compare"),
  compareList: document.getElementById("compare-list"),
  compareCount: document.getElementById("compare-count"),
  window: document.getElementById("window"),
  from: document.getElementById("from"),
  until: document.getElementById("until"),
  zone: document.getElementById("zone"),
  applyRange: document.getElementById("apply-range"),
  backLive: document.getElementById("back-live"),
  rangeError: document.getElementById("range-error"),
  rangeBox: document.getElementById("range-box"),
  theme: document.getElementById("theme"),
  live: document.getElementById("live"),
  panels: document.getElementById("panels"),
  health: document.getElementById("health"),
  tabs: [...document.querySelectorAll("nav.tabs a[data-tab]")],
  template: document.getElementById("panel-template"),
};

const auth = { token: sessionStorage.getItem("plotq-token") || "", ticket: "", expiresAt: 0 };

class NeedsToken extends Error {}

/** A read ticket valid for at least another minute, fetched or renewed as needed. */
async function ensureTicket() {
  if (auth.ticket && auth.expiresAt - Date.now() > 60_000) return auth.ticket;
  const headers = auth.token ? { Authorization: `Bearer ${auth.token}` } : {};
  const response = await fetch("/api/v1/tickets", { method: "POST", headers });
  if (response.status === 401 || response.status === 403) {
    const problem = await response.json().catch(() => ({}));
    throw new NeedsToken(problem.detail || "a token with the read scope is needed");
  }
  if (!response.ok) throw new Error(`tickets: HTTP ${response.status}`);
  const body = await response.json();
  auth.ticket = body.ticket;
  auth.expiresAt = body.expires_at_ms;
  return auth.ticket;
}

function withTicket(url) {
  if (!auth.ticket || url.startsWith("blob:")) return url;
  return `${url}${url.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(auth.ticket)}`;
}

function askForToken(reason) {
  // Only a token that was tried and refused deserves an error message.
  ui.loginError.textContent = auth.token ? `That token was refused: ${reason}` : "";
  auth.token = "";
  sessionStorage.removeItem("plotq-token");
  ui.login.hidden = false;
  ui.panels.hidden = true;
  ui.health.hidden = true;
  PlotqHealth.stop();
  closeStream();
  setLive("sign in to see plots", false);
  ui.token.focus();
}

// ---------------------------------------------------------------------------------------
// The view and the URL

/** kind → panel (see buildPanels); view key → panel for the live events. */
const panels = new Map();
const byKey = new Map();
let current = null;
/** Bumped whenever the panels are rebuilt: late answers for older panels are dropped. */
let generation = 0;
let lastLiveWindow = "15m";
let source = null;
let reconnectTimer = null;
/** Event streams refused in a row (never opened): the pause before the next try grows. */
let refusals = 0;

function parseTime(raw) {
  if (!raw) return null;
  const ms = /^\d{1,16}$/.test(raw) ? Number(raw) : Date.parse(raw);
  return Number.isFinite(ms) ? ms : null;
}

function isoTime(ms) {
  return new Date(ms).toISOString().replace(/\.000Z$/, "Z");
}

function parseOptions(raw, meta) {
  const opts = { log: false, max: false, bins: DEFAULT_BINS };
  for (const part of (raw || "").split(",")) {
    if (part === "log" && meta.log) opts.log = true;
    else if (part === "max" && meta.max) opts.max = true;
    else if (meta.bins && /^bins\d{1,4}$/.test(part)) {
      const n = Number(part.slice(4));
      if (n >= 1 && n <= 1000) opts.bins = n;
    }
  }
  return opts;
}

/** The options part of a view key (and of the URL): log, max, bins<N>, in that order. */
function optionParts(meta, opts) {
  const parts = [];
  if (meta.log && opts.log) parts.push("log");
  if (meta.max && opts.max) parts.push("max");
  if (meta.bins && opts.bins !== DEFAULT_BINS) parts.push(`bins${opts.bins}`);
  return parts;
}

/** A label name (`plotq_domain::labels`). */
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * A label filter typed as `name=value, name=value`: the object, or null when a pair is
 * not a label (a name's syntax, an empty or too long value, a control character, more
 * than 8, a name twice).
 */
function parseLabels(text) {
  const labels = {};
  const pairs = (text || "").split(",").map((p) => p.trim()).filter(Boolean);
  if (pairs.length > 8) return null;
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at < 0) return null;
    const [name, value] = [pair.slice(0, at).trim(), pair.slice(at + 1).trim()];
    const chars = [...value];
    if (!LABEL_NAME.test(name) || name in labels) return null;
    if (!chars.length || chars.length > 128 || /[\u0000-\u001f\u007f-\u009f]/.test(value)) return null;
    labels[name] = value;
  }
  return labels;
}

/** A label filter as typed (`name=value, …`, by name). */
function labelsText(labels) {
  return Object.keys(labels).sort().map((n) => `${n}=${labels[n]}`).join(", ");
}

/** The canonical text of a label set (`Labels::key`): JSON with the names in order. */
function labelsKey(labels) {
  const names = Object.keys(labels).sort();
  return names.length ? JSON.stringify(Object.fromEntries(names.map((n) => [n, labels[n]]))) : "";
}

/** `text` (UTF-8) in unpadded base64url, as a view key carries a label filter. */
function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Whether panel kind `meta` draws one line per value of the view's group_by label. */
function groups(view, meta) {
  return Boolean(view.groupBy && meta.compares && !view.compare.length);
}

function readView() {
  const params = new URLSearchParams(location.search);
  const [first = "", ...rest] = (params.get("service") || "").split(",").filter(Boolean);
  const compare = [...rest, ...(params.get("compare") || "").split(",")]
    .filter((s) => s && s !== first)
    .filter((s, i, all) => all.indexOf(s) === i)
    .slice(0, MAX_COMPARED - 1);
  const from = parseTime(params.get("from"));
  const until = parseTime(params.get("until"));
  const fixed = from !== null && until !== null && until > from;
  const opts = {};
  for (const meta of KINDS) opts[meta.kind] = parseOptions(params.get(meta.kind), meta);
  const metric = params.get("metric");
  const groupBy = params.get("group_by") || "";
  return {
    service: first,
    metric: metric && METRIC_NAME.test(metric) ? metric : DEFAULT_METRIC,
    labels: parseLabels(params.get("labels")) || {},
    groupBy: LABEL_NAME.test(groupBy) ? groupBy : "",
    compare,
    window: fixed ? "" : WINDOWS.includes(params.get("window")) ? params.get("window") : "15m",
    from: fixed ? from : null,
    until: fixed ? until : null,
    theme: params.get("theme") === "dark" ? "dark" : "light",
    tab: params.get("tab") === "health" ? "health" : "plots",
    opts,
  };
}

const isLive = (view) => view.from === null;

function viewQuery(view, tab) {
  const params = new URLSearchParams();
  params.set("service", view.service);
  if (view.metric !== DEFAULT_METRIC) params.set("metric", view.metric);
  if (Object.keys(view.labels).length) params.set("labels", labelsText(view.labels).replace(/, /g, ","));
  if (view.groupBy) params.set("group_by", view.groupBy);
  if (view.compare.length) params.set("compare", view.compare.join(","));
  if (isLive(view)) params.set("window", view.window);
  else {
    params.set("from", isoTime(view.from));
    params.set("until", isoTime(view.until));
  }
  params.set("theme", view.theme);
  for (const meta of KINDS) {
    const parts = optionParts(meta, view.opts[meta.kind]);
    if (parts.length) params.set(meta.kind, parts.join(","));
  }
  if (tab === "health") params.set("tab", "health");
  return `?${params}`.replace(/%2C/g, ",").replace(/%3A/g, ":");
}

function writeView(view) {
  history.replaceState(null, "", `${location.pathname}${viewQuery(view, view.tab)}`);
  for (const link of ui.tabs) {
    link.href = viewQuery(view, link.dataset.tab);
    if (link.dataset.tab === view.tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function servicesOf(view, meta) {
  return meta.compares && view.compare.length ? [view.service, ...view.compare] : [view.service];
}

/** The image size for a panel displayed `cssWidth` CSS pixels wide on this screen. */
function snapSize(cssWidth, dpr = window.devicePixelRatio || 1) {
  const layout = GRID_WIDTHS.find((w) => w >= cssWidth) ?? GRID_WIDTHS[GRID_WIDTHS.length - 1];
  const layoutHeight = Math.round((layout * 9) / 16);
  let scale = Math.min(4, Math.max(1, Math.ceil(dpr - 1e-6)));
  while (scale > 1 && (layout * scale > MAX_IMAGE_PX || layoutHeight * scale > MAX_IMAGE_PX)) scale -= 1;
  return { layout, layoutHeight, scale, width: layout * scale, height: layoutHeight * scale };
}

function viewKey(view, meta, size) {
  const parts = optionParts(meta, view.opts[meta.kind]);
  if (size.scale > 1) parts.push(`dpr${size.scale}`);
  if (groups(view, meta)) parts.push(`by${view.groupBy}`);
  const labels = labelsKey(view.labels);
  if (labels) parts.push(`lb${base64url(labels)}`);
  // A fixed range is not a view the notifier knows: its key (the panel's data-view) only
  // names the plot, with the range as from..until in epoch ms.
  const range = isLive(view) ? view.window : `${view.from}..${view.until}`;
  // Services are joined by `~` and options by `.`: keys never hold a comma, which
  // separates the views of one event stream.
  // A metric other than the kind's default follows the kind after a `:`.
  const metric = metricOf(view, meta);
  const kind = metric === (meta.status ? STATUS_METRIC : DEFAULT_METRIC) ? meta.kind : `${meta.kind}:${metric}`;
  const base = `${servicesOf(view, meta).join("~")}/${kind}/${range}/${view.theme}/${size.width}x${size.height}`;
  return parts.length ? `${base}/${parts.join(".")}` : base;
}

/** The render query of a panel's plot (no ticket): every option as a parameter. */
function renderQuery(view, meta, size) {
  const params = new URLSearchParams();
  params.set("kind", meta.kind);
  const services = servicesOf(view, meta);
  if (services.length > 1) params.set("services", services.join(","));
  else params.set("service", services[0]);
  params.set("metric", metricOf(view, meta));
  if (isLive(view)) params.set("window", view.window);
  else {
    params.set("from", String(view.from));
    params.set("until", String(view.until));
  }
  params.set("width", String(size.width));
  params.set("height", String(size.height));
  if (size.scale > 1) params.set("scale", String(size.scale));
  const opts = view.opts[meta.kind];
  if (meta.bins && opts.bins !== DEFAULT_BINS) params.set("bins", String(opts.bins));
  if (meta.log && opts.log) params.set("log_x", "true");
  if (meta.max && opts.max) params.set("show_max", "true");
  const labels = labelsKey(view.labels);
  if (labels) params.set("labels", labels);
  if (groups(view, meta)) params.set("group_by", view.groupBy);
  params.set("theme", view.theme);
  return params.toString().replace(/%2C/g, ",");
}

function rangeLabel(view) {
  if (isLive(view)) return `last ${view.window}`;
  const from = isoTime(view.from).replace("T", " ").replace("Z", "");
  const until = isoTime(view.until).replace("T", " ").replace("Z", "");
  return `${from} to ${until} UTC`;
}

// ---------------------------------------------------------------------------------------
// Status line and panels

function setLive(text, ok) {
  // Unchanged text is not set again: the element is a live region.
  if (ui.live.textContent !== text) ui.live.textContent = text;
  ui.live.classList.toggle("down", !ok);
}

/**
 * Why a panel cannot show its plot for this service, when the service's metrics are
 * known and lack the one it reads (status codes of a service that sends none, say), so
 * it says so instead of "no data"; empty otherwise.
 */
function unfitReason(view, meta) {
  const known = knownMetrics[view.service];
  const metric = metricOf(view, meta);
  if (!known || known.includes(metric)) return "";
  return meta.status
    ? `${view.service} sends no ${STATUS_METRIC}: status codes and error rates need the requests' status codes`
    : `${view.service} sends no ${metric}`;
}

/** A failure, or the panel's reason it cannot fit when it has one. */
function setFailed(panel, text) {
  if (panel.unfit) setState(panel, panel.unfit, "unfit");
  else setState(panel, text, "failed");
}

function setState(panel, text, kind) {
  panel.state.textContent = text;
  panel.root.dataset.state = kind;
}

function showRendered(panel) {
  if (!panel.renderedAt) return;
  const at = new Date(panel.renderedAt);
  if (!isLive(current)) {
    panel.rendered.textContent = ` · rendered ${at.toISOString().slice(11, 19)} UTC`;
    return;
  }
  const ago = Math.max(0, Math.round((Date.now() - panel.renderedAt) / 1000));
  panel.rendered.textContent = ` · rendered ${at.toISOString().slice(11, 19)} UTC (${ago}s ago)`;
}

function optionControl(panel, meta) {
  const box = panel.root.querySelector(".options");
  const opts = current.opts[meta.kind];
  const id = (name) => `opt-${meta.kind}-${name}`;
  const onChange = (update) => {
    current.opts[meta.kind] = { ...current.opts[meta.kind], ...update };
    writeView(current);
    relayout();
  };
  const checkbox = (name, label, checked, update) => {
    const wrap = document.createElement("label");
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = id(name);
    input.checked = checked;
    input.addEventListener("change", () => onChange(update(input.checked)));
    wrap.append(input, ` ${label}`);
    box.append(wrap);
  };
  if (meta.log) checkbox("log", "Log axis", opts.log, (v) => ({ log: v }));
  if (meta.max) checkbox("max", "Show max", opts.max, (v) => ({ max: v }));
  if (meta.bins) {
    const wrap = document.createElement("label");
    const select = document.createElement("select");
    select.id = id("bins");
    const choices = BIN_CHOICES.includes(opts.bins) ? BIN_CHOICES : [...BIN_CHOICES, opts.bins].sort((a, b) => a - b);
    select.replaceChildren(...choices.map((n) => new Option(String(n), String(n))));
    select.value = String(opts.bins);
    select.addEventListener("change", () => onChange({ bins: Number(select.value) }));
    wrap.append("Bins ", select);
    box.append(wrap);
  }
}

function buildPanels(view) {
  generation += 1;
  for (const panel of panels.values()) if (panel.objectUrl) URL.revokeObjectURL(panel.objectUrl);
  resizeObserver.disconnect();
  ui.panels.replaceChildren();
  panels.clear();
  byKey.clear();
  for (const meta of KINDS) {
    const node = ui.template.content.firstElementChild.cloneNode(true);
    const services = servicesOf(view, meta).join(" vs ");
    const title = panelTitle(view, meta);
    node.querySelector("h2").textContent = title;
    node.querySelector("h2").id = `title-${meta.kind}`;
    node.dataset.kind = meta.kind;
    node.setAttribute("aria-label", `${title} for ${services}`);
    const panel = {
      meta,
      root: node,
      frame: node.querySelector(".frame"),
      img: node.querySelector("img"),
      selection: node.querySelector(".selection"),
      state: node.querySelector(".state"),
      rendered: node.querySelector(".rendered"),
      stats: node.querySelector(".stats"),
      share: {
        out: node.querySelector(".share-out"),
        what: node.querySelector(".share-what"),
        input: node.querySelector(".share-out input"),
        state: node.querySelector(".share-state"),
      },
      key: "",
      size: null,
      shownKey: "",
      shownUrl: "",
      renderedAt: 0,
      timeAxis: null,
      objectUrl: "",
      unfit: unfitReason(view, meta),
    };
    panel.img.alt = `${title} for ${services}, ${rangeLabel(view)}`;
    panel.img.draggable = false;
    panel.stats.setAttribute("aria-label", `Statistics: ${title}`);
    panel.share.input.setAttribute("aria-label", `Link to the ${title} plot`);
    optionControl(panel, meta);
    if (meta.time) enableZoom(panel);
    node.querySelector(".copy-link").addEventListener("click", () => share(panel, "link"));
    node.querySelector(".copy-embed").addEventListener("click", () => share(panel, "embed"));
    showStats(panel, null);
    if (panel.unfit) setState(panel, panel.unfit, "unfit");
    else setState(panel, "waiting", "waiting");
    panels.set(meta.kind, panel);
    ui.panels.append(node);
    resizeObserver.observe(panel.frame);
  }
}

/**
 * Recomputes each panel's snapped size and view key; panels whose key changed get a new
 * plot (live: the stream is reopened with the new keys; fixed: rendered again). The old
 * image stays until the new one is decoded.
 */
function relayout() {
  if (!current || current.tab !== "plots" || !current.service || ui.panels.hidden) return;
  const changed = [];
  for (const panel of panels.values()) {
    const width = panel.frame.clientWidth;
    if (!width) continue;
    const size = snapSize(width);
    const key = viewKey(current, panel.meta, size);
    if (key === panel.key) continue;
    panel.size = size;
    panel.key = key;
    panel.root.dataset.view = key;
    changed.push(panel);
  }
  if (!changed.length) return;
  byKey.clear();
  for (const panel of panels.values()) if (panel.key) byKey.set(panel.key, panel);
  if (isLive(current)) subscribe(current);
  else for (const panel of changed) renderFixed(panel, generation);
}

let relayoutTimer = null;
const resizeObserver = new ResizeObserver(() => {
  clearTimeout(relayoutTimer);
  relayoutTimer = setTimeout(relayout, 200);
});

/** A change of devicePixelRatio (browser zoom, another screen) re-lays out too. */
function watchPixelRatio() {
  const query = matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
  query.addEventListener("change", () => {
    clearTimeout(relayoutTimer);
    relayoutTimer = setTimeout(relayout, 200);
    watchPixelRatio();
  }, { once: true });
}

/**
 * Loads the new image off-screen and swaps it in only once decoded: no flicker. `key` is
 * the view the image shows; `state` the job (or event) carrying stats and time_axis.
 */
function swapImage(panel, url, atMs, key, state) {
  if (key !== panel.key) return; // a render for a size or option no longer shown
  if (key === panel.shownKey && (atMs < panel.renderedAt || url === panel.shownUrl)) return;
  const next = new Image();
  next.onload = () => {
    if (key !== panel.key) return;
    if (key === panel.shownKey && atMs < panel.renderedAt) return;
    const previousObjectUrl = panel.objectUrl;
    panel.img.src = next.src;
    panel.objectUrl = next.src.startsWith("blob:") ? next.src : "";
    if (previousObjectUrl && previousObjectUrl !== panel.objectUrl) URL.revokeObjectURL(previousObjectUrl);
    panel.root.classList.add("has-image");
    panel.shownKey = key;
    panel.root.dataset.shown = key;
    panel.shownUrl = url;
    panel.renderedAt = atMs;
    panel.timeAxis = panel.meta.time && state && state.time_axis ? state.time_axis : null;
    // The image's smallest text, image pixels: what it is on screen is measured from it.
    panel.root.dataset.textPx = state && state.text_px ? String(state.text_px) : "";
    panel.root.querySelector(".zoom-hint").hidden = !panel.timeAxis;
    panel.frame.classList.toggle("zoomable", Boolean(panel.timeAxis));
    showStats(panel, state && state.stats);
    setState(panel, "ready", "ready");
    showRendered(panel);
  };
  next.onerror = () => {
    if (key === panel.key) setState(panel, "image expired; waiting for the next render", "failed");
  };
  next.src = withTicket(url);
}

// ---------------------------------------------------------------------------------------
// Statistics as text

const countFormat = new Intl.NumberFormat("en-US");
function ms(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–";
  const digits = Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0;
  return v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
function rate(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–";
  return v.toLocaleString("en-US", { maximumFractionDigits: v < 10 ? 2 : 1 });
}
function count(v) {
  return typeof v === "number" && Number.isFinite(v) ? countFormat.format(v) : "–";
}
function percent(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–";
  return `${(v * 100).toLocaleString("en-US", { maximumFractionDigits: 2 })} %`;
}

/** A statistics row's series: its label value (group_by), "other", or its service. */
function seriesName(s) {
  return s.group ?? (s.other ? "other" : s.service);
}

const STAT_COLUMNS = {
  latency: [
    ["Service", seriesName],
    ["Count", (s) => count(s.count)],
    ["Mean", (s) => ms(s.mean)],
    ["p50", (s) => ms(s.p50)],
    ["p95", (s) => ms(s.p95)],
    ["p99", (s) => ms(s.p99)],
    ["Max", (s) => ms(s.max)],
  ],
  rate: [
    ["Service", seriesName],
    ["Samples", (s) => count(s.count)],
    ["Rate (/s)", (s) => rate(s.rate_per_s)],
    ["Peak (/s)", (s) => rate(s.peak_rate_per_s)],
  ],
  errors: [
    ["Service", seriesName],
    ["Requests", (s) => count(s.count)],
    ["5xx", (s) => count(Object.entries(s.codes || {}).reduce((n, [code, c]) => (code >= "500" && code < "600" ? n + c : n), 0))],
    ["Error rate", (s) => percent(s.error_ratio)],
  ],
};

function cell(tag, text, numeric) {
  const node = document.createElement(tag);
  node.textContent = text;
  if (numeric) node.className = "num";
  if (tag === "th") node.scope = "col";
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach(([text, numeric], i) => {
    const node = cell(i === 0 ? "th" : "td", text, numeric);
    if (i === 0) node.scope = "row";
    tr.append(node);
  });
  return tr;
}

function showStats(panel, stats) {
  const table = panel.stats.querySelector("table");
  const { meta } = panel;
  const unit = meta.stats === "latency" ? " · latencies in ms" : meta.stats === "rate" ? " · samples per second" : "";
  table.caption.textContent = `${meta.title} of ${servicesOf(current, meta).join(" vs ")}, ${rangeLabel(current)}${unit}`;
  const head = table.tHead;
  const body = table.tBodies[0];
  const list = Array.isArray(stats) ? stats : [];
  let columns;
  let rows;
  if (meta.stats === "codes") {
    // One service is named in the caption; compared ones (or label values) head their
    // rows, each code's share of that series' responses.
    const named = list.length > 1;
    columns = named ? ["Service", "Code", "Responses", "Share"] : ["Code", "Responses", "Share"];
    rows = [];
    for (const s of list) {
      const codes = Object.entries(s.codes || {}).sort(([a], [b]) => a.localeCompare(b));
      const total = codes.reduce((n, [, c]) => n + c, 0) || 1;
      for (const [code, c] of codes) {
        const cells = [[code, named], [count(c), true], [percent(c / total), true]];
        rows.push(named ? [[seriesName(s)], ...cells] : cells);
      }
    }
  } else {
    const spec = STAT_COLUMNS[meta.stats];
    columns = spec.map(([name]) => name);
    rows = list.map((s) => spec.map(([, value], i) => [value(s), i > 0]));
  }
  const headRow = document.createElement("tr");
  columns.forEach((name, i) => headRow.append(cell("th", name, i > 0)));
  head.replaceChildren(headRow);
  if (!rows.length) {
    const tr = document.createElement("tr");
    const td = cell("td", stats ? "no samples in this range" : "statistics come with the plot", false);
    td.colSpan = columns.length;
    td.className = "empty";
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...rows.map(row));
}

// ---------------------------------------------------------------------------------------
// Drag-to-zoom on time-axis panels

/** The plot area's time axis in CSS pixels from the frame's left edge, if known. */
function timeBox(panel) {
  const axis = panel.timeAxis;
  const img = panel.img;
  if (!axis || !img.naturalWidth || !img.clientWidth || !(axis.right_px > axis.left_px)) return null;
  const scale = img.clientWidth / img.naturalWidth;
  return { left: axis.left_px * scale, right: axis.right_px * scale, axis };
}

function enableZoom(panel) {
  const { frame, selection } = panel;
  let drag = null;
  const x = (event) => event.clientX - frame.getBoundingClientRect().left;
  const clamp = (v, box) => Math.min(box.right, Math.max(box.left, v));
  const draw = (a, b) => {
    selection.style.left = `${Math.min(a, b)}px`;
    selection.style.width = `${Math.abs(b - a)}px`;
  };
  frame.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 || !panel.root.classList.contains("has-image")) return;
    const box = timeBox(panel);
    const at = x(event);
    if (!box || at < box.left || at > box.right) return;
    event.preventDefault();
    frame.setPointerCapture(event.pointerId);
    drag = { start: at, end: at, box };
    draw(at, at);
    selection.hidden = false;
  });
  frame.addEventListener("pointermove", (event) => {
    if (!drag) return;
    drag.end = clamp(x(event), drag.box);
    draw(drag.start, drag.end);
  });
  const finish = (event, apply) => {
    if (!drag) return;
    const { start, end, box } = drag;
    drag = null;
    selection.hidden = true;
    if (frame.hasPointerCapture(event.pointerId)) frame.releasePointerCapture(event.pointerId);
    if (!apply || Math.abs(end - start) < 4) return;
    const span = box.axis.until_ms - box.axis.from_ms;
    const time = (px) => box.axis.from_ms + ((px - box.left) / (box.right - box.left)) * span;
    showRange(Math.floor(time(Math.min(start, end)) / 1000) * 1000, Math.ceil(time(Math.max(start, end)) / 1000) * 1000);
  };
  frame.addEventListener("pointerup", (event) => finish(event, true));
  frame.addEventListener("pointercancel", (event) => finish(event, false));
}

// ---------------------------------------------------------------------------------------
// Custom ranges

const pad = (n) => String(n).padStart(2, "0");
function localInputValue(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function zoneLabel() {
  const offset = -new Date().getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  const abs = Math.abs(offset);
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  return `(times in ${name}, UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)})`;
}

const WINDOW_MS = { "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "6h": 21_600_000, "24h": 86_400_000 };

/** Shows the fixed range from..until (epoch ms) on every panel. */
function showRange(from, until) {
  if (until - from < MIN_RANGE_MS) {
    const middle = (from + until) / 2;
    from = Math.floor(middle - MIN_RANGE_MS / 2);
    until = from + MIN_RANGE_MS;
  }
  if (isLive(current)) lastLiveWindow = current.window;
  apply({ ...current, window: "", from, until });
}

function applyRangeInputs() {
  const from = ui.from.value ? new Date(ui.from.value).getTime() : NaN;
  const until = ui.until.value ? new Date(ui.until.value).getTime() : NaN;
  if (!Number.isFinite(from) || !Number.isFinite(until)) {
    ui.rangeError.textContent = "Pick both a start and an end.";
    return;
  }
  if (until <= from) {
    ui.rangeError.textContent = "The end must come after the start.";
    return;
  }
  ui.rangeError.textContent = "";
  showRange(from, until);
}

