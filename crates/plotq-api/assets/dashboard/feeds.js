// ---------------------------------------------------------------------------------------
// Live panels: views over Server-Sent Events

function onEvent(handler) {
  return (message) => {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    const panel = byKey.get(data.view);
    if (panel) handler(panel, data);
  };
}

function closeStream() {
  if (source) source.close();
  source = null;
  clearTimeout(reconnectTimer);
}

async function subscribe(view) {
  closeStream();
  try {
    await ensureTicket();
  } catch (e) {
    if (view !== current) return; // another view or tab was shown meanwhile
    if (e instanceof NeedsToken) return askForToken(e.message);
    setLive("cannot reach plotq — retrying…", false);
    reconnectTimer = setTimeout(() => subscribe(view), 3000);
    return;
  }
  if (view !== current || !isLive(view)) return;
  closeStream();
  const keys = [...byKey.keys()].join(",");
  if (!keys) return;
  const url = withTicket(`${EVENTS_URL}${EVENTS_URL.includes("?") ? "&" : "?"}views=${encodeURIComponent(keys)}`);
  setLive("connecting…", false);
  const stream = new EventSource(url);
  source = stream;
  let opened = false;
  stream.onopen = () => {
    opened = true;
    refusals = 0;
    setLive("live", true);
  };
  stream.onerror = () => {
    // EventSource retries by itself (sending Last-Event-ID); if it gave up, start over —
    // after a growing pause when the stream was refused outright (it never opened).
    if (stream !== source) return;
    if (stream.readyState !== EventSource.CLOSED) return setLive("connection lost — reconnecting…", false);
    if (!opened) refusals += 1;
    const pause = Math.min(60_000, 3000 * 2 ** Math.max(0, refusals - 1));
    setLive(opened ? "connection lost — reconnecting…" : `plotq refused the live views — retrying in ${pause / 1000} s`, false);
    reconnectTimer = setTimeout(() => subscribe(view), pause);
  };
  // The credential the stream was opened with lapsed (the ticket expired, the token was
  // revoked): start over with a fresh ticket, or ask for a token if that is refused.
  stream.addEventListener("stream.closed", () => {
    if (stream !== source) return;
    closeStream();
    auth.ticket = "";
    auth.expiresAt = 0;
    subscribe(view);
  });
  stream.addEventListener("plot.ready", onEvent((panel, d) => swapImage(panel, d.png_url || d.image_url, d.at_ms, d.view, d)));
  stream.addEventListener("plot.failed", onEvent((panel, d) => setFailed(panel, `failed: ${d.error || "unknown error"}`)));
  stream.addEventListener("plot.queued", onEvent((panel) => setState(panel, "queued", "queued")));
  stream.addEventListener("plot.rendering", onEvent((panel) => setState(panel, "rendering", "rendering")));
  stream.addEventListener("view.state", onEvent((panel, d) => {
    if (d.status === "failed") setFailed(panel, `failed: ${d.error || "unknown error"}`);
    else if (d.status === "queued" || d.status === "rendering") setState(panel, d.status, d.status);
  }));
}

// ---------------------------------------------------------------------------------------
// Fixed ranges: rendered once through GET /api/v1/render

const sleep = (msecs) => new Promise((resolve) => setTimeout(resolve, msecs));

async function problemText(response) {
  const problem = await response.json().catch(() => ({}));
  const fields = (problem.errors || []).map((e) => `${e.field}: ${e.problem}`).join("; ");
  return fields || problem.detail || problem.title || `HTTP ${response.status}`;
}

async function renderFixed(panel, gen) {
  const key = panel.key;
  const stale = () => gen !== generation || key !== panel.key;
  setState(panel, "rendering", "rendering");
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      await ensureTicket();
      if (stale()) return;
      response = await fetch(withTicket(`/api/v1/render?${renderQuery(current, panel.meta, panel.size)}`));
    } catch (e) {
      if (stale()) return;
      if (e instanceof NeedsToken) return askForToken(e.message);
      if (attempt >= RENDER_RETRIES) return setState(panel, "failed: cannot reach plotq", "failed");
      await sleep(2000);
      continue;
    }
    if (stale()) return;
    if (response.status === 503 && attempt < RENDER_RETRIES) {
      await response.arrayBuffer().catch(() => {});
      const after = Number(response.headers.get("Retry-After"));
      setState(panel, "rendering (plotq is busy; trying again)", "rendering");
      await sleep(Math.min(10, Number.isFinite(after) && after > 0 ? after : 2) * 1000);
      if (stale()) return;
      continue;
    }
    if (!response.ok) return setFailed(panel, `failed: ${await problemText(response)}`);
    const blob = await response.blob();
    const job = response.headers.get("X-Plotq-Job");
    let state = null;
    if (job) {
      try {
        const r = await fetch(withTicket(`/api/v1/plots/${encodeURIComponent(job)}`));
        if (r.ok) state = await r.json();
      } catch {
        // The picture is shown without its numbers.
      }
    }
    if (stale()) return;
    swapImage(panel, URL.createObjectURL(blob), Date.now(), key, state);
    return;
  }
}

// ---------------------------------------------------------------------------------------
// Copy link / copy embed

function escapeAttr(text) {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

/** An absolute URL for a render query: signed (a grant) when the page has a token. */
async function shareUrl(query) {
  const plain = new URL(`/api/v1/render?${query}`, location.href).href;
  if (!auth.token) return plain;
  const response = await fetch("/api/v1/render/grants", {
    method: "POST",
    headers: { Authorization: `Bearer ${auth.token}`, "content-type": "application/json" },
    body: JSON.stringify({ query }),
  });
  if (!response.ok) throw new Error(await problemText(response));
  const body = await response.json();
  return new URL(body.url, location.href).href;
}

async function share(panel, what) {
  const { out, what: label, input, state } = panel.share;
  if (!panel.size) return;
  state.textContent = "making a link…";
  let url;
  try {
    url = await shareUrl(renderQuery(current, panel.meta, panel.size));
  } catch (e) {
    state.textContent = `no link: ${e.message}`;
    return;
  }
  const text = what === "embed"
    ? `<img src="${escapeAttr(url)}" width="${panel.size.layout}" height="${panel.size.layoutHeight}" alt="${escapeAttr(panel.img.alt)}">`
    : url;
  label.textContent = what === "embed" ? "Embed" : "Link";
  input.setAttribute("aria-label", `${what === "embed" ? "Embed snippet" : "Link"} for the ${panel.meta.title.toLowerCase()} plot`);
  input.value = text;
  panel.root.dataset.share = what;
  out.hidden = false;
  input.focus();
  input.select();
  try {
    if (!navigator.clipboard) throw new Error("no clipboard");
    await navigator.clipboard.writeText(text);
    state.textContent = "copied";
  } catch {
    state.textContent = "selected: copy it with Ctrl+C / ⌘C";
  }
}

// ---------------------------------------------------------------------------------------
// Services, controls, start

let knownServices = [];
/** Each service's metrics (service → names), as `GET /api/v1/services` lists them. */
let knownMetrics = {};

async function loadServices(view) {
  let services = [];
  try {
    await ensureTicket();
    const response = await fetch(withTicket("/api/v1/services"));
    if (response.ok) {
      const body = await response.json();
      services = body.services || [];
      knownMetrics = body.metrics || {};
    }
  } catch (e) {
    if (e instanceof NeedsToken) throw e;
    // The picker falls back to the services in the URL.
  }
  for (const s of [view.service, ...view.compare].filter(Boolean).reverse()) {
    if (!services.includes(s)) services.unshift(s);
  }
  knownServices = services;
  ui.service.replaceChildren(...services.map((s) => new Option(s, s)));
  if (!view.service && services.length) view.service = services[0];
  return view;
}

/**
 * The metric picker: the service's metrics (and the view's, if the service has not sent
 * it). A service without the view's metric gets latency_ms if it has it, else its first
 * metric that is not the status codes.
 */
function fillMetrics(view) {
  const known = knownMetrics[view.service] || [];
  if (known.length && !known.includes(view.metric) && !new URLSearchParams(location.search).has("metric")) {
    view.metric = pickMetric(known);
  }
  const names = known.includes(view.metric) ? known : [view.metric, ...known];
  ui.metric.replaceChildren(...names.map((m) => new Option(m, m)));
  ui.metric.value = view.metric;
}

function fillCompare(view) {
  const others = knownServices.filter((s) => s !== view.service);
  const full = view.compare.length >= MAX_COMPARED - 1;
  ui.compareList.replaceChildren(...others.map((s) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = s;
    box.name = "compare";
    box.checked = view.compare.includes(s);
    box.disabled = full && !box.checked;
    label.append(box, ` ${s}`);
    return label;
  }));
  if (!others.length) ui.compareList.textContent = "no other services";
  ui.compareCount.textContent = view.compare.length ? ` (${view.compare.length})` : "";
}

function fillRange(view) {
  const live = isLive(view);
  const until = live ? Date.now() : view.until;
  const from = live ? until - WINDOW_MS[view.window] : view.from;
  ui.from.value = localInputValue(from);
  ui.until.value = localInputValue(until);
  ui.window.value = live ? view.window : "custom";
  ui.backLive.hidden = live;
  // Open beside the other controls on a wide screen, and whenever a fixed range is shown;
  // folded away on a phone.
  if (!live || matchMedia("(min-width: 700px)").matches) ui.rangeBox.open = true;
  ui.zone.textContent = zoneLabel();
}

function apply(view) {
  current = view;
  document.documentElement.dataset.theme = view.theme;
  document.body.dataset.tab = view.tab;
  ui.service.value = view.service;
  ui.theme.value = view.theme;
  ui.labels.value = labelsText(view.labels);
  ui.labels.setCustomValidity("");
  ui.groupBy.value = view.groupBy;
  fillMetrics(view);
  fillCompare(view);
  fillRange(view);
  writeView(view);
  ui.panels.hidden = view.tab !== "plots";
  ui.health.hidden = view.tab !== "health";
  closeStream();
  if (view.tab === "health") {
    generation += 1;
    ui.panels.replaceChildren();
    panels.clear();
    byKey.clear();
    PlotqHealth.start({
      headers: () => (auth.token ? { Authorization: `Bearer ${auth.token}` } : {}),
      onNeedsToken: askForToken,
      onStatus: setLive,
    });
    return;
  }
  PlotqHealth.stop();
  buildPanels(view);
  if (!view.service) return setLive("no services have sent samples yet", false);
  if (!isLive(view)) setLive(`fixed range (not live): ${rangeLabel(view)}`, true);
  relayout();
}

/** The metric a service is shown with first: latency_ms, else its first non-status one. */
function pickMetric(known) {
  return known.includes(DEFAULT_METRIC) ? DEFAULT_METRIC : known.find((m) => m !== STATUS_METRIC) || DEFAULT_METRIC;
}

function controlsView() {
  const compare = [...ui.compareList.querySelectorAll("input:checked")].map((b) => b.value).filter((s) => s !== ui.service.value);
  const live = ui.window.value !== "custom";
  const serviceChanged = ui.service.value !== current.service;
  const known = knownMetrics[ui.service.value] || [];
  // Another service keeps the metric when it sends it; else fillMetrics picks one.
  const metric = serviceChanged && known.length && !known.includes(ui.metric.value) ? "" : ui.metric.value;
  const labels = parseLabels(ui.labels.value);
  const groupBy = ui.groupBy.value.trim();
  return {
    ...current,
    service: ui.service.value,
    metric: metric || pickMetric(known),
    labels: labels || current.labels,
    groupBy: LABEL_NAME.test(groupBy) ? groupBy : "",
    compare,
    window: live ? ui.window.value : current.window,
    from: live ? null : current.from,
    until: live ? null : current.until,
    theme: ui.theme.value,
  };
}

let started = false;

async function start() {
  let view;
  try {
    view = await loadServices(readView());
  } catch (e) {
    if (e instanceof NeedsToken) return askForToken(e.message);
    throw e;
  }
  ui.login.hidden = true;
  if (!isLive(view)) lastLiveWindow = "15m";
  apply(view);
  if (started) return;
  started = true;
  // A filter that is no label set is said at the input and changes nothing.
  const changed = () => {
    const valid = parseLabels(ui.labels.value) !== null;
    ui.labels.setCustomValidity(valid ? "" : "name=value pairs, comma-separated: names of letters, digits and _, at most 8");
    if (valid) apply(controlsView());
    else ui.labels.reportValidity();
  };
  for (const control of [ui.service, ui.metric, ui.labels, ui.groupBy, ui.window, ui.theme]) control.addEventListener("change", changed);
  ui.compareList.addEventListener("change", () => apply(controlsView()));
  ui.applyRange.addEventListener("click", applyRangeInputs);
  ui.controls.addEventListener("submit", (event) => {
    event.preventDefault();
    applyRangeInputs();
  });
  ui.backLive.addEventListener("click", () => apply({ ...current, window: lastLiveWindow, from: null, until: null }));
  for (const link of ui.tabs) {
    link.addEventListener("click", (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || event.button !== 0) return;
      event.preventDefault();
      if (link.dataset.tab !== current.tab) apply({ ...current, tab: link.dataset.tab });
    });
  }
  watchPixelRatio();
  setInterval(() => panels.forEach(showRendered), 1000);
  // Renew the ticket before it expires (the open stream keeps going; new image URLs and
  // the next reconnect use the new one).
  setInterval(() => ensureTicket().catch(() => {}), 30_000);
}

ui.login.addEventListener("submit", (event) => {
  event.preventDefault();
  auth.token = ui.token.value.trim();
  auth.ticket = "";
  sessionStorage.setItem("plotq-token", auth.token);
  ui.token.value = "";
  start();
});

start();
