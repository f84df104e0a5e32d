// Real-browser test of the live dashboard: headless Chromium (Debian's package) loads
// the page from a running `plotq standalone`, samples are ingested, and a panel's image
// must change to a newer render without a page reload, with no console errors. Panels
// are found by kind (data-kind): their view keys depend on the displayed size.
// Screenshots are kept in target/artifacts/ for a look.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { ingest, startPlotq } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const artifacts = path.join(root, "target/artifacts");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

test("a panel swaps in a newer render without reloading, with no console errors", { timeout: 120_000 }, async () => {
  mkdirSync(artifacts, { recursive: true });
  const { child, base: basePromise } = startPlotq();
  let browser;
  try {
    const base = await basePromise;
    await ingest(base, "browser-svc", 2000);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const problems = [];
    page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(`${base}/?service=browser-svc&window=15m&theme=light`);
    // A marker that a reload would wipe.
    await page.evaluate(() => { window.__sameDocument = true; });

    const panel = page.locator('section.panel[data-kind="histogram"]');
    await panel.locator("img").waitFor({ state: "attached" });
    await page.waitForFunction(
      () => document.querySelector('section.panel[data-kind="histogram"]')?.classList.contains("has-image"),
      null, { timeout: 30_000 });
    // 1280 px wide, devicePixelRatio 1: two columns of panels about 580 px wide, shown
    // from 584×329 images (the smallest grid width, in steps of 24 px from 320, at
    // least as wide as the panel).
    const key = await panel.getAttribute("data-view");
    assert.equal(key, "browser-svc/histogram/15m/light/584x329");
    const first = await panel.locator("img").getAttribute("src");
    assert.match(first, /\/api\/v1\/plots\/[0-9a-f-]{36}\/png\?ticket=[\w.-]+$/);
    assert.equal(await page.locator("#live").textContent(), "live");

    await ingest(base, "browser-svc", 500);
    await page.waitForFunction(
      (before) => {
        const img = document.querySelector('section.panel[data-kind="histogram"] img');
        return img && img.getAttribute("src") !== before && img.complete && img.naturalWidth === 584;
      },
      first, { timeout: 30_000 });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was not reloaded");
    const second = await panel.locator("img").getAttribute("src");
    assert.notEqual(second, first);

    // Every panel ends with an image; the URL carries the view.
    await page.waitForFunction(() => document.querySelectorAll("section.panel.has-image").length === 7, null, { timeout: 30_000 });
    assert.match(page.url(), /service=browser-svc&window=15m&theme=light/);
    await page.screenshot({ path: path.join(artifacts, "dashboard-1280x720.png") });

    // Switching theme re-subscribes and renders the dark views.
    await page.selectOption("#theme", "dark");
    await page.waitForFunction(() => document.querySelectorAll("section.panel.has-image").length === 7, null, { timeout: 30_000 });
    assert.match(page.url(), /theme=dark/);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(artifacts, "dashboard-phone-dark.png"), fullPage: true });

    assert.deepEqual(problems, [], "no console errors");
  } finally {
    if (browser) await browser.close();
    child.kill("SIGTERM");
  }
});

const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

test("with tokens configured, the page asks for a token once and then shows live plots", { timeout: 120_000 }, async () => {
  mkdirSync(artifacts, { recursive: true });
  const token = `pq_${randomBytes(32).toString("base64url")}`;
  const hash = createHash("sha256").update(token).digest("hex");
  const { child, base: basePromise } = startPlotq({
    PLOTQ_TOKENS: `sha256:${hash} scopes=ingest,read name=browser`,
    PLOTQ_TICKET_SECRET: randomBytes(32).toString("hex"),
  });
  let browser;
  try {
    const base = await basePromise;
    // Without the token nothing is readable or writable.
    assert.equal((await fetch(`${base}/api/v1/services`)).status, 401);
    await ingest(base, "secure-svc", 1000, token);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    const problems = [];
    page.on("console", (m) => {
      // The first ticket request is refused (401) before the user gives a token: expected.
      if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(`${base}/?service=secure-svc&window=15m&theme=light`);
    await page.locator("#login").waitFor({ state: "visible", timeout: 15_000 });
    await page.screenshot({ path: path.join(artifacts, "dashboard-login.png") });
    await page.fill("#token", token);
    await page.click("#login button");
    await page.waitForFunction(() => document.querySelectorAll("section.panel.has-image").length === 7, null, { timeout: 45_000 });
    assert.equal(await page.locator("#login").isHidden(), true);
    assert.equal(await page.locator("#live").textContent(), "live");
    const src = await page.locator('section.panel[data-kind="histogram"] img').getAttribute("src");
    assert.match(src, /\?ticket=/);
    // The image needs the ticket: the bare URL is refused.
    assert.equal((await fetch(new URL(src, base).href.replace(/\?ticket=.*$/, ""))).status, 401);
    await page.screenshot({ path: path.join(artifacts, "dashboard-auth.png") });
    assert.deepEqual(problems, [], "no console errors");
  } finally {
    if (browser) await browser.close();
    child.kill("SIGTERM");
  }
});

/**
 * Posts `samples` to the plotq at `base`, then opens `url` of it in a new Chromium page
 * (1280×720) that collects console errors and page errors into `problems`.
 */
async function postAndOpen(base, samples, url) {
  const response = await fetch(`${base}/api/v1/metrics`, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(samples),
  });
  assert.equal(response.status, 200);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${base}${url}`);
  return { browser, page, problems };
}

/**
 * Starts plotq, posts `samples`, opens `url` in Chromium and runs `body` with the page;
 * then closes the browser and stops plotq, whatever `body` did.
 */
async function onDashboard(samples, url, body) {
  mkdirSync(artifacts, { recursive: true });
  const { child, base: basePromise } = startPlotq();
  let browser;
  try {
    const base = await basePromise;
    const opened = await postAndOpen(base, samples, url);
    browser = opened.browser;
    await body({ base, page: opened.page, problems: opened.problems });
  } finally {
    if (browser) await browser.close();
    child.kill("SIGTERM");
  }
}

test("any metric: the picker lists the service's metrics, panels name the metric and unit, and kinds that do not fit say so", { timeout: 120_000 }, async () => {
  // A service that sends a gauge and a request duration, but no latency_ms and no
  // status codes (as a Caddy-fed or OpenTelemetry-fed service may).
  const now = Date.now();
  const samples = [];
  for (let i = 0; i < 600; i++) {
    const timestamp = now - 1000 - i * 500;
    samples.push({ service: "gauge-svc", metric: "queue.depth", value: i % 40, timestamp });
    samples.push({ service: "gauge-svc", metric: "request_duration_ms", value: 5 + (i % 90), timestamp });
  }
  await onDashboard(samples, "/?service=gauge-svc&window=15m&theme=light", async ({ base, page, problems }) => {
    const listed = await (await fetch(`${base}/api/v1/services`)).json();
    assert.deepEqual(listed.metrics["gauge-svc"], ["queue.depth", "request_duration_ms"]);
    // Without latency_ms the first metric that is not a status is shown.
    await page.waitForFunction(() => document.querySelector("#metric")?.value === "queue.depth", null, { timeout: 15_000 });
    assert.deepEqual(await page.locator("#metric option").allTextContents(), ["queue.depth", "request_duration_ms"]);
    const histogram = page.locator('section.panel[data-kind="histogram"]');
    await page.waitForFunction(() => document.querySelector('section.panel[data-kind="histogram"]')?.classList.contains("has-image"), null, { timeout: 45_000 });
    assert.equal(await histogram.locator("h2").textContent(), "Distribution · queue.depth");
    assert.match(await histogram.getAttribute("data-view"), /^gauge-svc\/histogram:queue\.depth\/15m\//);
    // The status kinds read status codes, which this service never sent: said, not "no data".
    const codes = page.locator('section.panel[data-kind="status_codes"]');
    assert.equal(await codes.getAttribute("data-state"), "unfit");
    assert.match(await codes.locator(".state").textContent(), /gauge-svc sends no status_code/);

    // Another metric: titles name it with its unit, the URL keeps it, and it renders.
    await page.selectOption("#metric", "request_duration_ms");
    await page.waitForFunction(() => {
      const panel = document.querySelector('section.panel[data-kind="cdf"]');
      return panel?.classList.contains("has-image") && panel.dataset.shown?.includes("cdf:request_duration_ms");
    }, null, { timeout: 45_000 });
    assert.equal(await page.locator('section.panel[data-kind="cdf"] h2').textContent(), "CDF · request_duration_ms (ms)");
    assert.equal(new URL(page.url()).searchParams.get("metric"), "request_duration_ms");
    await page.screenshot({ path: path.join(artifacts, "dashboard-any-metric.png") });
    assert.deepEqual(problems, [], "no console errors");
  });
});

test("labels: a filter and a group-by from the controls reach every panel's plot and the URL", { timeout: 120_000 }, async () => {
  // Requests of two routes (the /pay ones slower), two methods each.
  const now = Date.now();
  const samples = [];
  for (let i = 0; i < 800; i++) {
    const timestamp = now - 1000 - i * 400;
    const route = i % 4 === 0 ? "/pay" : "/cart";
    const labels = { route, method: i % 2 ? "GET" : "POST" };
    samples.push({ service: "shop", metric: "latency_ms", value: route === "/pay" ? 80 + (i % 40) : 10 + (i % 20), timestamp, labels });
    samples.push({ service: "shop", metric: "status_code", value: 200, timestamp, labels });
  }
  await onDashboard(samples, "/?service=shop&window=15m&theme=light", async ({ base, page, problems }) => {
    await page.waitForFunction(() => document.querySelector('section.panel[data-kind="cdf"]')?.classList.contains("has-image"), null, { timeout: 45_000 });

    // Group by route: every panel splits by it (the heatmap as small multiples).
    await page.fill("#group-by", "route");
    await page.locator("#group-by").dispatchEvent("change");
    await page.waitForFunction(() => {
      const panel = document.querySelector('section.panel[data-kind="cdf"]');
      return panel?.classList.contains("has-image") && panel.dataset.shown?.includes("/byroute");
    }, null, { timeout: 45_000 });
    assert.match(await page.locator('section.panel[data-kind="heatmap"]').getAttribute("data-view"), /^shop\/heatmap\/15m\/light\/\d+x\d+\/(dpr\d\.)?byroute$/);
    assert.equal(new URL(page.url()).searchParams.get("group_by"), "route");

    // A filter: every panel's key carries it, and the plot shows only those samples.
    await page.fill("#labels", "method=GET");
    await page.locator("#labels").dispatchEvent("change");
    const filtered = (kind) => page.waitForFunction((k) => {
      const panel = document.querySelector(`section.panel[data-kind="${k}"]`);
      return panel?.classList.contains("has-image") && /[/.]lb[A-Za-z0-9_-]+$/.test(panel.dataset.shown || "");
    }, kind, { timeout: 45_000 });
    await filtered("cdf");
    await filtered("status_codes");
    const key = await page.locator('section.panel[data-kind="cdf"]').getAttribute("data-view");
    const encoded = key.split("/").pop().split(".").find((o) => o.startsWith("lb")).slice(2);
    assert.equal(Buffer.from(encoded, "base64url").toString(), '{"method":"GET"}');
    assert.equal(new URL(page.url()).searchParams.get("labels"), "method=GET");
    // The numbers under the plot are those of GET requests only: 400 of the 800.
    const stats = await (await fetch(`${base}/api/v1/stats?service=shop&window=15m&labels=${encodeURIComponent('{"method":"GET"}')}`)).json();
    assert.equal(stats.stats[0].count, 400);
    // A filter that is no label set is said at the input and changes nothing.
    await page.fill("#labels", "9bad=x");
    await page.locator("#labels").dispatchEvent("change");
    assert.equal(await page.locator("#labels").evaluate((el) => el.validity.valid), false);
    assert.equal(new URL(page.url()).searchParams.get("labels"), "method=GET");
    await page.screenshot({ path: path.join(artifacts, "dashboard-labels.png") });
    assert.deepEqual(problems, [], "no console errors");
  });
});
