// plotq dashboard, Health tab: polls GET /api/v1/health every 5 s while the tab is shown
// and the page is visible, and fills the tables of the static skeleton in
// dashboard.html (#health). Everything from the server is set as text, never as HTML.
//
// dashboard.js owns the page: it calls PlotqHealth.start(options) when the Health tab is
// shown and PlotqHealth.stop() when another tab is (or a token is asked for).
"use strict";

const PlotqHealth = (() => {
  const INTERVAL_MS = 5000;
  const root = document.getElementById("health");
  const field = (name) => root.querySelector(`[data-field="${name}"]`);
  const body = (id) => document.getElementById(id).tBodies[0];

  let active = false;
  let options = null;
  let timer = null;
  let controller = null;
  // Each poll's generation: an answer to an older poll (before stop or restart) is dropped.
  let generation = 0;

  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  const fixed2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let value = n;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${unit === 0 ? integer.format(value) : value.toFixed(1)} ${units[unit]}`;
  }

  function duration(secs) {
    const d = Math.floor(secs / 86400);
    const h = Math.floor((secs % 86400) / 3600);
    const m = Math.floor((secs % 3600) / 60);
    const s = Math.floor(secs % 60);
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min ${s} s`;
    return `${s} s`;
  }

  const ms = (v) => `${fixed2.format(v)} ms`;
  const percent = (share) => `${decimal.format(share * 100)} %`;

  function clock(atMs) {
    const iso = new Date(atMs).toISOString();
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = `${iso.slice(11, 19)} UTC`;
    time.title = iso;
    return time;
  }

  /** A route template that may break only after its slashes. */
  function route(template) {
    const code = document.createElement("code");
    template.split("/").forEach((part, i) => {
      if (i > 0) code.append("/", document.createElement("wbr"));
      code.append(part);
    });
    return code;
  }

  function setText(name, text, title) {
    const node = field(name);
    node.textContent = text;
    if (title) node.title = title;
    else node.removeAttribute("title");
  }

  /** A state in words with a symbol, coloured by its `ok` class (never colour alone). */
  function badge(text, ok) {
    const span = document.createElement("span");
    span.className = `badge ${ok ? "ok" : "bad"}`;
    const mark = document.createElement("span");
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = ok ? "✓ " : "✗ ";
    span.append(mark, text);
    return span;
  }

  function cell(content, className) {
    const td = document.createElement("td");
    if (content instanceof Node) td.append(content);
    else td.textContent = String(content);
    if (className) td.className = className;
    return td;
  }

  function fill(tbody, rows, empty, columns) {
    if (!rows.length) {
      const td = cell(empty, "empty");
      td.colSpan = columns;
      const tr = document.createElement("tr");
      tr.append(td);
      tbody.replaceChildren(tr);
      return;
    }
    tbody.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      tr.append(...cells);
      return tr;
    }));
  }

  function render(report) {
    root.dataset.status = report.status;
    field("status").replaceChildren(badge(report.status, report.status === "ok"));
    setText("version", report.version);
    setText("role", report.role);
    setText("uptime", duration(report.uptime_secs), `${integer.format(report.uptime_secs)} s`);
    field("updated").replaceChildren(clock(Date.now()));

    // Process, host and requests are the whole process's: only for the admin scope.
    const detailed = Boolean(report.requests);
    for (const section of root.querySelectorAll("[data-admin]")) section.hidden = !detailed;
    document.getElementById("health-admin-note").hidden = detailed;
    fill(body("health-dependencies-table"), report.dependencies.map((d) => {
      const status = cell(badge(d.status, d.status === "ok"));
      if (d.problem) {
        const why = document.createElement("div");
        why.className = "problem";
        why.textContent = d.problem;
        status.append(why);
      }
      return [cell(d.name), status, cell(ms(d.rtt_ms), "num")];
    }), "None: this role keeps everything in memory", 3);
    if (!detailed) return;

    const r = report.requests;
    setText("total", integer.format(r.total));
    setText("client-errors", integer.format(r.client_errors));
    setText("server-errors", integer.format(r.server_errors));
    setText("error-rate", percent(r.error_rate));
    setText("mean", ms(r.mean_ms));
    setText("p95", ms(r.p95_ms));

    const p = report.process;
    setText("rss", bytes(p.rss_bytes), `${integer.format(p.rss_bytes)} bytes`);
    setText("virtual", bytes(p.virtual_bytes), `${integer.format(p.virtual_bytes)} bytes`);
    setText("threads", integer.format(p.threads));
    setText("open-files", integer.format(p.open_files));
    const h = report.host;
    setText("host-total", bytes(h.memory_total_bytes), `${integer.format(h.memory_total_bytes)} bytes`);
    setText("host-available", bytes(h.memory_available_bytes), `${integer.format(h.memory_available_bytes)} bytes`);
    if (h.memory_total_bytes) {
      const share = document.createElement("small");
      share.textContent = `${((100 * h.memory_available_bytes) / h.memory_total_bytes).toFixed(0)} % free`;
      field("host-available").append(" ", share);
    }
    setText("cpus", integer.format(h.cpus));

    const statuses = Object.entries(r.by_status);
    fill(body("health-statuses-table"), statuses.map(([code, count]) => [
      cell(badge(code, Number(code) < 400)),
      cell(integer.format(count), "num"),
      cell(percent(r.total ? count / r.total : 0), "num"),
    ]), "No requests yet", 3);

    fill(body("health-routes-table"), r.top_routes.map((t) => [
      cell(t.method),
      cell(route(t.route), "route"),
      cell(integer.format(t.count), "num"),
      cell(integer.format(t.errors), "num"),
      cell(ms(t.mean_ms), "num"),
    ]), "No requests yet", 5);

    fill(body("health-errors-table"), r.last_errors.map((e) => [
      cell(clock(e.at_ms), "time"),
      cell(e.method),
      cell(route(e.route), "route"),
      cell(String(e.status), "num"),
      cell(e.code || "—"),
      cell(e.detail || "—", "detail"),
    ]), "No errors since the start", 6);
  }

  async function poll() {
    clearTimeout(timer);
    timer = null;
    if (!active || document.visibilityState !== "visible") return;
    const mine = ++generation;
    if (controller) controller.abort();
    controller = new AbortController();
    try {
      const response = await fetch("/api/v1/health", {
        headers: options.headers(),
        signal: controller.signal,
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) {
        const problem = await response.json().catch(() => ({}));
        if (mine !== generation) return;
        stop();
        options.onNeedsToken(problem.detail || "a token with the read scope is needed");
        return;
      }
      if (!response.ok) throw new Error(`health: HTTP ${response.status}`);
      const report = await response.json();
      if (mine !== generation) return;
      render(report);
      options.onStatus("live", true);
    } catch (e) {
      if (mine !== generation || e.name === "AbortError") return;
      options.onStatus("cannot reach plotq — retrying…", false);
    }
    if (mine === generation && active && document.visibilityState === "visible") {
      timer = setTimeout(poll, INTERVAL_MS);
    }
  }

  /** Shows the tab's figures, refreshed every 5 s while the page is visible. */
  function start(opts) {
    options = opts;
    if (active) return;
    active = true;
    poll();
  }

  /** Stops polling (another tab is shown, or the page needs a token). */
  function stop() {
    active = false;
    generation += 1;
    clearTimeout(timer);
    timer = null;
    if (controller) controller.abort();
    controller = null;
  }

  document.addEventListener("visibilitychange", () => {
    if (!active) return;
    if (document.visibilityState === "visible") {
      poll();
    } else {
      // Paused, not stopped: polling resumes (at once) when the page is shown again.
      generation += 1;
      clearTimeout(timer);
      timer = null;
      if (controller) controller.abort();
      controller = null;
    }
  });

  return { start, stop };
})();
