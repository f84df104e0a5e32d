// plotq dashboard: panels of server-rendered plots, refreshed over Server-Sent Events.
// The browser never sees raw samples: each panel is a view the notifier keeps fresh
// while this page watches it, and the page swaps in each new image when it is ready.
//
// Authentication: EventSource and <img> cannot send an Authorization header, so the page
// exchanges its token (asked once, kept in sessionStorage for this tab only) for a
// short-lived read ticket (POST /api/v1/tickets) and adds `ticket=` to the event stream
// and image URLs, renewing it before it expires. With no tokens configured (standalone
// on loopback) the ticket is issued without asking.
//
// Tabs: Plots (the panels) and Health (health.js, polling GET /api/v1/health with the
// token itself, so that an admin token also sees why a dependency fails). The tab is
// part of the view in the URL (`tab=health`); the plots' event stream is closed while
// the Health tab is shown.
"use strict";

const KINDS = [
  ["histogram", "Latency distribution"],
  ["latency_timeseries", "Latency over time"],
  ["throughput", "Throughput"],
  ["status_codes", "Status codes"],
  ["error_rate", "Error rate"],
];
const WINDOWS = ["5m", "15m", "1h", "6h", "24h"];
const SIZE = "800x450";
const EVENTS_URL = document.querySelector('meta[name="plotq-events-url"]').content;

const ui = {
  login: document.getElementById("login"),
  token: document.getElementById("token"),
  loginError: document.getElementById("login-error"),
  service: document.getElementById("service"),
  window: document.getElementById("window"),
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
  if (!auth.ticket) return url;
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

/** view key → { root, img, state, rendered, renderedAt } */
const panels = new Map();
let source = null;
let reconnectTimer = null;

function readView() {
  const params = new URLSearchParams(location.search);
  return {
    service: params.get("service") || "",
    window: WINDOWS.includes(params.get("window")) ? params.get("window") : "15m",
    theme: params.get("theme") === "dark" ? "dark" : "light",
    tab: params.get("tab") === "health" ? "health" : "plots",
  };
}

function viewQuery(view, tab) {
  const params = new URLSearchParams({ service: view.service, window: view.window, theme: view.theme });
  if (tab === "health") params.set("tab", "health");
  return `?${params}`;
}

function writeView(view) {
  history.replaceState(null, "", `${location.pathname}${viewQuery(view, view.tab)}`);
  for (const link of ui.tabs) {
    link.href = viewQuery(view, link.dataset.tab);
    if (link.dataset.tab === view.tab) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function viewKey(view, kind) {
  return `${view.service}/${kind}/${view.window}/${view.theme}/${SIZE}`;
}

function setLive(text, ok) {
  // Unchanged text is not set again: the element is a live region.
  if (ui.live.textContent !== text) ui.live.textContent = text;
  ui.live.classList.toggle("down", !ok);
}

function setState(panel, text, kind) {
  panel.state.textContent = text;
  panel.root.dataset.state = kind;
}

function showRendered(panel) {
  if (!panel.renderedAt) return;
  const at = new Date(panel.renderedAt);
  const ago = Math.max(0, Math.round((Date.now() - panel.renderedAt) / 1000));
  panel.rendered.textContent = ` · rendered ${at.toISOString().slice(11, 19)} UTC (${ago}s ago)`;
}

function buildPanels(view) {
  ui.panels.replaceChildren();
  panels.clear();
  for (const [kind, title] of KINDS) {
    const node = ui.template.content.firstElementChild.cloneNode(true);
    const key = viewKey(view, kind);
    node.querySelector("h2").textContent = title;
    node.dataset.view = key;
    node.setAttribute("aria-label", `${title} for ${view.service}`);
    const panel = {
      root: node,
      img: node.querySelector("img"),
      state: node.querySelector(".state"),
      rendered: node.querySelector(".rendered"),
      renderedAt: 0,
    };
    panel.img.alt = `${title} for ${view.service}, last ${view.window}`;
    setState(panel, "waiting", "waiting");
    panels.set(key, panel);
    ui.panels.append(node);
  }
}

/** Loads the new image off-screen and swaps it in only once decoded: no flicker. */
function swapImage(panel, url, atMs) {
  if (atMs < panel.renderedAt) return; // an older render arriving late
  const next = new Image();
  next.onload = () => {
    if (atMs < panel.renderedAt) return;
    panel.img.src = next.src;
    panel.root.classList.add("has-image");
    panel.renderedAt = atMs;
    setState(panel, "ready", "ready");
    showRendered(panel);
  };
  next.onerror = () => setState(panel, "image expired; waiting for the next render", "failed");
  next.src = withTicket(url);
}

function onEvent(handler) {
  return (message) => {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    const panel = panels.get(data.view);
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
  if (view !== current) return;
  const keys = [...panels.keys()].join(",");
  const url = withTicket(`${EVENTS_URL}${EVENTS_URL.includes("?") ? "&" : "?"}views=${encodeURIComponent(keys)}`);
  setLive("connecting…", false);
  source = new EventSource(url);
  source.onopen = () => setLive("live", true);
  source.onerror = () => {
    // EventSource retries by itself (sending Last-Event-ID); if it gave up, start over.
    setLive("connection lost — reconnecting…", false);
    if (source.readyState === EventSource.CLOSED) {
      reconnectTimer = setTimeout(() => subscribe(view), 3000);
    }
  };
  source.addEventListener("plot.ready", onEvent((panel, d) => swapImage(panel, d.png_url || d.image_url, d.at_ms)));
  source.addEventListener("plot.failed", onEvent((panel, d) => setState(panel, `failed: ${d.error || "unknown error"}`, "failed")));
  source.addEventListener("plot.queued", onEvent((panel) => setState(panel, "queued", "queued")));
  source.addEventListener("plot.rendering", onEvent((panel) => setState(panel, "rendering", "rendering")));
  source.addEventListener("view.state", onEvent((panel, d) => {
    if (d.status === "failed") setState(panel, `failed: ${d.error || "unknown error"}`, "failed");
    else if (d.status === "queued" || d.status === "rendering") setState(panel, d.status, d.status);
  }));
}

async function loadServices(view) {
  let services = [];
  try {
    await ensureTicket();
    const response = await fetch(withTicket("/api/v1/services"));
    if (response.ok) services = (await response.json()).services || [];
  } catch (e) {
    if (e instanceof NeedsToken) throw e;
    // The picker falls back to the service in the URL.
  }
  if (view.service && !services.includes(view.service)) services.unshift(view.service);
  ui.service.replaceChildren(...services.map((s) => new Option(s, s)));
  if (!view.service && services.length) view.service = services[0];
  return view;
}

let current = null;

function apply(view) {
  current = view;
  document.documentElement.dataset.theme = view.theme;
  document.body.dataset.tab = view.tab;
  ui.service.value = view.service;
  ui.window.value = view.window;
  ui.theme.value = view.theme;
  writeView(view);
  ui.panels.hidden = view.tab !== "plots";
  ui.health.hidden = view.tab !== "health";
  if (view.tab === "health") {
    closeStream();
    ui.panels.replaceChildren();
    panels.clear();
    PlotqHealth.start({
      headers: () => (auth.token ? { Authorization: `Bearer ${auth.token}` } : {}),
      onNeedsToken: askForToken,
      onStatus: setLive,
    });
    return;
  }
  PlotqHealth.stop();
  buildPanels(view);
  if (view.service) subscribe(view);
  else setLive("no services have sent samples yet", false);
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
  apply(view);
  if (started) return;
  started = true;
  for (const control of [ui.service, ui.window, ui.theme]) {
    control.addEventListener("change", () =>
      apply({ service: ui.service.value, window: ui.window.value, theme: ui.theme.value, tab: current.tab }));
  }
  for (const link of ui.tabs) {
    link.addEventListener("click", (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || event.button !== 0) return;
      event.preventDefault();
      if (link.dataset.tab !== current.tab) apply({ ...current, tab: link.dataset.tab });
    });
  }
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
