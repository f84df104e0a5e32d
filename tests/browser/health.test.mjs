// Real-browser test of the dashboard's Health tab: headless Chromium (Debian's package)
// loads `/?tab=health` from a running `plotq standalone`, after known requests (404s on
// an unknown plot, 200s on the service list), and must show the version, role, uptime,
// no dependencies (standalone keeps everything in memory), the request totals, the 404
// in the status counts and the last errors, then refresh the figures by itself; it stops
// polling when the page is hidden or the Plots tab is shown; no horizontal scrolling at
// phone width. With tokens configured, it asks for one first. Screenshots go to
// target/tmp/ for a look.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startPlotq } from "./support.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const shots = path.join(root, "target/tmp");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const UNKNOWN_PLOT = "/api/v1/plots/00000000-0000-7000-8000-000000000000";
/** How long the page may take to show a change: one 5 s poll, with room to spare. */
const REFRESH_DEADLINE_MS = 15_000;
/** How long to watch for a request that must not come: more than one poll interval. */
const QUIET_WINDOW_MS = 6_500;

/** The workspace version, as the binary reports it. */
const VERSION = readFileSync(path.join(root, "Cargo.toml"), "utf8").match(/\[workspace\.package\][^[]*?\nversion\s*=\s*"([^"]+)"/)[1];

async function expectStatus(url, status, token = "") {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  await response.arrayBuffer();
  assert.equal(response.status, status, url);
}

const text = (page, name) => page.locator(`#health [data-field="${name}"]`).textContent();
const number = async (page, name) => Number((await text(page, name)).replace(/[^\d.]/g, ""));

/** Waits until the Health tab shows a report (the version is filled in). */
async function waitForReport(page) {
  await page.waitForFunction(
    (v) => document.querySelector('#health [data-field="version"]')?.textContent === v,
    VERSION, { timeout: REFRESH_DEADLINE_MS });
}

/** Rows of a health table as arrays of cell texts. */
function rows(page, id) {
  return page.locator(`#${id} tbody tr`).evaluateAll((trs) =>
    trs.map((tr) => [...tr.cells].map((td) => td.textContent.trim())));
}

test("the Health tab shows the role's figures, refreshes them, and stops when not shown", { timeout: 120_000 }, async () => {
  mkdirSync(shots, { recursive: true });
  const { child, base: basePromise } = startPlotq();
  let browser;
  try {
    const base = await basePromise;
    for (let i = 0; i < 3; i++) await expectStatus(`${base}${UNKNOWN_PLOT}`, 404);
    for (let i = 0; i < 2; i++) await expectStatus(`${base}/api/v1/services`, 200);

    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = [];
    page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
    page.on("pageerror", (e) => problems.push(String(e)));
    let healthRequests = 0;
    page.on("request", (r) => { if (new URL(r.url()).pathname === "/api/v1/health") healthRequests += 1; });

    await page.goto(`${base}/?tab=health&theme=light`);
    await waitForReport(page);
    assert.equal(await page.locator("#panels").isHidden(), true, "the plots are not shown");
    assert.equal(await page.locator('nav.tabs a[data-tab="health"]').getAttribute("aria-current"), "page");
    assert.match(page.url(), /tab=health/);
    assert.equal(await text(page, "role"), "standalone");
    assert.match(await text(page, "uptime"), /^\d+ (s|min \d+ s)$/);
    assert.match(await text(page, "status"), /ok/);
    assert.match(await text(page, "rss"), /^\d+(\.\d)? (KiB|MiB|GiB)$/);
    assert.ok(await number(page, "threads") > 0);

    // Standalone keeps everything in memory: no dependency to probe.
    const deps = await rows(page, "health-dependencies-table");
    assert.equal(deps.length, 1);
    assert.match(deps[0][0], /^None/);

    // At least the five requests made above (the page's own add more).
    const total = await number(page, "total");
    assert.ok(total >= 5, `total ${total}`);
    assert.ok(await number(page, "client-errors") >= 3);
    const statuses = await rows(page, "health-statuses-table");
    const notFound = statuses.find(([code]) => /\b404\b/.test(code));
    assert.ok(notFound && Number(notFound[1]) >= 3, JSON.stringify(statuses));
    assert.ok(statuses.some(([code]) => /\b200\b/.test(code)), JSON.stringify(statuses));
    const errors = await rows(page, "health-errors-table");
    const plotErrors = errors.filter(([, method, route, status]) => method === "GET" && route === "/api/v1/plots/{id}" && status === "404");
    assert.equal(plotErrors.length, 3, JSON.stringify(errors));
    assert.equal(plotErrors[0][4], "not_found");
    assert.match(plotErrors[0][5], /00000000-0000-7000-8000-000000000000/);
    assert.match(plotErrors[0][0], /^\d\d:\d\d:\d\d UTC$/);
    const routes = await rows(page, "health-routes-table");
    assert.ok(routes.some(([method, route, count]) => method === "GET" && route === "/api/v1/plots/{id}" && Number(count) === 3), JSON.stringify(routes));
    await page.screenshot({ path: path.join(shots, "health.png"), fullPage: true });

    // The figures refresh by themselves: one more request shows up without a reload.
    await page.evaluate(() => { window.__sameDocument = true; });
    const before = await number(page, "total");
    await expectStatus(`${base}${UNKNOWN_PLOT}`, 404);
    await page.waitForFunction(
      (n) => Number(document.querySelector('#health [data-field="total"]').textContent.replace(/\D/g, "")) > n,
      before, { timeout: REFRESH_DEADLINE_MS });
    assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was not reloaded");

    // Hidden page: no polling; shown again: a poll at once.
    await page.evaluate(() => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      document.dispatchEvent(new Event("visibilitychange"));
    });
    let seen = healthRequests;
    await page.waitForTimeout(QUIET_WINDOW_MS);
    assert.equal(healthRequests, seen, "no health requests while the page is hidden");
    const resumed = page.waitForRequest((r) => new URL(r.url()).pathname === "/api/v1/health", { timeout: 3_000 });
    await page.evaluate(() => {
      delete document.visibilityState; // back to the prototype's getter
      document.dispatchEvent(new Event("visibilitychange"));
    });
    await resumed;

    // The Plots tab: the health view is hidden and polling stops; the URL drops the tab.
    await page.click('nav.tabs a[data-tab="plots"]');
    await page.locator("#health").waitFor({ state: "hidden" });
    assert.doesNotMatch(page.url(), /tab=health/);
    assert.equal(await page.locator('nav.tabs a[data-tab="plots"]').getAttribute("aria-current"), "page");
    seen = healthRequests;
    await page.waitForTimeout(QUIET_WINDOW_MS);
    assert.equal(healthRequests, seen, "no health requests while the Plots tab is shown");

    // Back to Health, at phone width, in both themes: no horizontal page scrolling.
    await page.setViewportSize({ width: 375, height: 812 });
    await page.click('nav.tabs a[data-tab="health"]');
    await page.locator("#health").waitFor({ state: "visible" });
    await page.waitForFunction(() => new URL(location.href).searchParams.get("tab") === "health");
    for (const theme of ["light", "dark"]) {
      await page.selectOption("#theme", theme);
      await page.waitForFunction((t) => document.documentElement.dataset.theme === t, theme);
      await waitForReport(page);
      const overflow = await page.evaluate(() => {
        const s = document.scrollingElement;
        return { scrollWidth: s.scrollWidth, clientWidth: s.clientWidth };
      });
      assert.ok(overflow.scrollWidth <= overflow.clientWidth, `${theme}: ${JSON.stringify(overflow)}`);
      await page.screenshot({ path: path.join(shots, `health-phone-${theme}.png`), fullPage: true });
    }
    assert.match(page.url(), /tab=health/);
    assert.match(page.url(), /theme=dark/);

    assert.deepEqual(problems, [], "no console errors");
  } finally {
    if (browser) await browser.close();
    child.kill("SIGTERM");
  }
});

test("with tokens configured, the Health tab asks for a token and then shows the report", { timeout: 60_000 }, async () => {
  mkdirSync(shots, { recursive: true });
  const token = `pq_${randomBytes(32).toString("base64url")}`;
  const hash = createHash("sha256").update(token).digest("hex");
  const viewer = `pq_${randomBytes(32).toString("base64url")}`;
  const viewerHash = createHash("sha256").update(viewer).digest("hex");
  const { child, base: basePromise } = startPlotq({
    PLOTQ_TOKENS: `sha256:${hash} scopes=read,admin name=operator; sha256:${viewerHash} scopes=read name=viewer`,
    PLOTQ_TICKET_SECRET: randomBytes(32).toString("hex"),
  });
  let browser;
  try {
    const base = await basePromise;
    await expectStatus(`${base}/api/v1/health`, 401);
    await expectStatus(`${base}${UNKNOWN_PLOT}`, 404, token);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = [];
    page.on("console", (m) => {
      // The first ticket request is refused (401) before the user gives a token: expected.
      if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(m.text());
    });
    page.on("pageerror", (e) => problems.push(String(e)));
    await page.goto(`${base}/?tab=health`);
    await page.locator("#login").waitFor({ state: "visible", timeout: 15_000 });
    assert.equal(await page.locator("#health").isHidden(), true);
    await page.fill("#token", token);
    await page.click("#login button");
    await waitForReport(page);
    assert.equal(await page.locator("#login").isHidden(), true);
    assert.ok(await number(page, "total") >= 2, "the 404, and the page's own requests");
    const errors = await rows(page, "health-errors-table");
    assert.ok(errors.some(([, , route, status]) => route === "/api/v1/plots/{id}" && status === "404"), JSON.stringify(errors));
    assert.equal(await page.locator("#health-admin-note").isHidden(), true);
    assert.deepEqual(problems, [], "no console errors");
    // A token with only `read` sees the dependencies, not every caller's traffic.
    const report = await (await fetch(`${base}/api/v1/health`, { headers: { authorization: `Bearer ${viewer}` } })).json();
    assert.equal(report.status, "ok");
    assert.equal(report.requests, undefined, JSON.stringify(report));
    assert.equal(report.process, undefined);
    const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await other.goto(`${base}/?tab=health`);
    await other.locator("#login").waitFor({ state: "visible", timeout: 15_000 });
    await other.fill("#token", viewer);
    await other.click("#login button");
    await other.locator("#health-admin-note").waitFor({ state: "visible", timeout: 15_000 });
    assert.equal(await other.locator("[aria-labelledby=health-requests]").isHidden(), true);
  } finally {
    if (browser) await browser.close();
    child.kill("SIGTERM");
  }
});
