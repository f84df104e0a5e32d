// Real-browser test of plots embedded in other pages: a plain HTML page served from
// another origin (a node `http` server on 127.0.0.1:0) shows
// `<img src="http://<plotq>/api/v1/render?…">` from a plotq in open mode; with tokens
// configured, a link minted with POST /api/v1/render/grants shows while the same URL
// without its grant (or with a parameter changed) does not open the plot — it shows a
// card saying so, as an embed of a window with no data does (an SVG at the link's size,
// never a broken image; JSON clients still get problem+json). The dashboard's "Copy
// link" and "Copy embed" give a render URL (signed when the page has a token) that
// fetches as a PNG. Screenshots go to target/artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import path from "node:path";
import { artifacts, fetchRendered, ingest, launch, PNG_MAGIC, startPlotq, tokenEnv, watchProblems } from "./support.mjs";

const RENDER_DEADLINE_MS = 40_000;

/** Serves `html` at / from a new origin; resolves with { url, close }. */
async function serveHtml(html) {
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

const escapeAttr = (s) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;");

/** An HTML page with one <img> per entry of `images` ({id: url}); each records its outcome. */
function embedPage(images) {
  const imgs = Object.entries(images).map(([id, src]) =>
    `<img id="${id}" src="${escapeAttr(src)}" width="400" height="225" alt="plot ${id}" onload="this.dataset.outcome='load'" onerror="this.dataset.outcome='error'">`);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>embed</title></head><body>${imgs.join("\n")}</body></html>`;
}

/** Waits until the <img id> has loaded or failed; resolves with what it shows. */
async function imageOutcome(page, id) {
  await page.waitForFunction((i) => document.getElementById(i)?.dataset.outcome, id, { timeout: 20_000 });
  return page.evaluate((i) => {
    const img = document.getElementById(i);
    return { outcome: img.dataset.outcome, complete: img.complete, naturalWidth: img.naturalWidth };
  }, id);
}

/** Clicks a panel's copy button and resolves with the text it shows for copying. */
async function copied(page, kind, button) {
  const panel = page.locator(`section.panel[data-kind="${kind}"]`);
  await panel.locator(button).click();
  const field = panel.locator(".share-out input");
  await field.waitFor({ state: "visible", timeout: 10_000 });
  await page.waitForFunction((k) => {
    const p = document.querySelector(`section.panel[data-kind="${k}"]`);
    return p.querySelector(".share-out input").value && /copied|copy it/.test(p.querySelector(".share-state").textContent);
  }, kind, { timeout: 10_000 });
  return field.inputValue();
}

async function assertPng(url, label) {
  const { response, body } = await fetchRendered(url, { deadlineMs: RENDER_DEADLINE_MS });
  assert.equal(response.status, 200, `${label}: ${url} → ${response.status} ${body.toString().slice(0, 300)}`);
  assert.equal(response.headers.get("content-type"), "image/png", label);
  assert.ok(body.subarray(0, 8).equals(PNG_MAGIC), `${label}: a PNG`);
  return response;
}

test("open mode: another origin's <img> shows a render URL; the dashboard's copy link fetches as a PNG", { timeout: 120_000 }, async () => {
  mkdirSync(artifacts, { recursive: true });
  const { child, base: basePromise } = startPlotq();
  let browser;
  let site;
  try {
    const base = await basePromise;
    await ingest(base, "embed-svc", 1500);
    const render = `${base}/api/v1/render?kind=histogram&service=embed-svc&window=15m&width=800&height=450`;
    // Rendered once (the api waits a bounded time; 503 + Retry-After until then).
    const first = await assertPng(render, "render URL");
    const etag = first.headers.get("etag");
    assert.ok(etag, "an ETag");
    assert.match(first.headers.get("x-plotq-job") || "", /^[0-9a-f-]{36}$/);
    const again = await fetch(render, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304, "If-None-Match answers 304");

    // A window with no data: a card for image clients, problem+json for the others.
    const empty = `${base}/api/v1/render?kind=histogram&service=nothing-here&window=15m&width=500&height=300`;
    const asImage = await fetch(empty, { headers: { accept: "image/avif,image/webp,image/svg+xml,image/*,*/*;q=0.8" } });
    const card = await asImage.text();
    assert.equal(asImage.status, 409, card);
    assert.equal(asImage.headers.get("content-type"), "image/svg+xml");
    assert.equal(asImage.headers.get("cache-control"), "no-store");
    assert.equal(asImage.headers.get("x-plotq-problem"), "plot_failed");
    assert.match(card, /No data in this window/);
    assert.match(card, /nothing-here\/latency_ms/);
    const asJson = await fetch(empty);
    assert.equal(asJson.status, 409);
    assert.equal(asJson.headers.get("content-type"), "application/problem+json");

    site = await serveHtml(embedPage({ plot: render, empty }));
    assert.notEqual(new URL(site.url).origin, new URL(base).origin);
    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
    const problems = watchProblems(page, [/status of 409/]);
    await page.goto(site.url);
    assert.deepEqual(await imageOutcome(page, "plot"), { outcome: "load", complete: true, naturalWidth: 800 });
    assert.deepEqual(await imageOutcome(page, "empty"), { outcome: "load", complete: true, naturalWidth: 500 });
    await page.screenshot({ path: path.join(artifacts, "embed-open.png") });
    assert.deepEqual(problems, [], "no console errors on the embedding page");

    // The dashboard's copy link and copy embed.
    const dash = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const dashProblems = watchProblems(dash);
    await dash.goto(`${base}/?service=embed-svc&window=15m&theme=dark`);
    await dash.waitForFunction(() => {
      const p = document.querySelector('section.panel[data-kind="histogram"]');
      return p && p.dataset.shown && p.dataset.shown === p.dataset.view;
    }, null, { timeout: RENDER_DEADLINE_MS });
    const link = await copied(dash, "histogram", ".copy-link");
    const url = new URL(link);
    assert.equal(url.origin, new URL(base).origin, "an absolute URL");
    assert.equal(url.pathname, "/api/v1/render");
    assert.equal(url.searchParams.get("kind"), "histogram");
    assert.equal(url.searchParams.get("service"), "embed-svc");
    assert.equal(url.searchParams.get("window"), "15m");
    assert.equal(url.searchParams.get("theme"), "dark");
    assert.equal(url.searchParams.has("ticket"), false, "no ticket in a shared link");
    assert.equal(url.searchParams.has("grant"), false, "open mode needs no grant");
    const view = await dash.locator('section.panel[data-kind="histogram"]').getAttribute("data-view");
    const [w, h] = view.split("/")[4].split("x");
    assert.equal(url.searchParams.get("width"), w, "the panel's image size");
    assert.equal(url.searchParams.get("height"), h);
    await assertPng(link, "copied link");

    const embed = await copied(dash, "histogram", ".copy-embed");
    const m = embed.match(/^<img src="([^"]+)" width="(\d+)" height="(\d+)" alt="([^"]+)">$/);
    assert.ok(m, embed);
    assert.equal(m[1].replace(/&amp;/g, "&"), link);
    assert.match(m[4], /Latency distribution · latency_ms \(ms\) for embed-svc/);
    assert.deepEqual(dashProblems, [], "no console errors in the dashboard");
  } finally {
    if (browser) await browser.close();
    if (site) await site.close();
    child.kill("SIGTERM");
  }
});

test("with tokens: a granted link shows on another origin, the same URL without its grant does not", { timeout: 120_000 }, async () => {
  mkdirSync(artifacts, { recursive: true });
  const { token, env } = tokenEnv();
  const { child, base: basePromise } = startPlotq(env);
  let browser;
  let site;
  try {
    const base = await basePromise;
    await ingest(base, "grant-svc", 1500, token);
    const query = "kind=throughput&service=grant-svc&window=15m&width=640&height=360";
    assert.equal((await fetch(`${base}/api/v1/render/grants`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query }),
    })).status, 401, "minting needs a token");
    const minted = await fetch(`${base}/api/v1/render/grants`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, ttl_secs: 3600 }),
    });
    const grant = await minted.json();
    assert.equal(minted.status, 200, JSON.stringify(grant));
    assert.ok(grant.expires_at_ms > Date.now() + 3_000_000 && grant.expires_at_ms <= Date.now() + 3_700_000, JSON.stringify(grant));
    const granted = new URL(grant.url, base);
    assert.equal(granted.pathname, "/api/v1/render");
    assert.ok(granted.searchParams.get("grant"), grant.url);
    await assertPng(granted.href, "granted link");
    const bare = new URL(granted.href);
    bare.searchParams.delete("grant");
    assert.equal((await fetch(bare)).status, 401, "the same URL without the grant is refused");
    const widened = new URL(granted.href);
    widened.searchParams.set("width", "800");
    widened.searchParams.set("height", "450");
    assert.ok([401, 403].includes((await fetch(widened)).status), "a grant covers only its own parameters");

    site = await serveHtml(embedPage({ granted: granted.href, bare: bare.href }));
    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 900, height: 600 } });
    const problems = watchProblems(page, [/status of 401/]);
    await page.goto(site.url);
    assert.deepEqual(await imageOutcome(page, "granted"), { outcome: "load", complete: true, naturalWidth: 640 });
    // Not the plot: a card at the link's size saying the link does not open it.
    assert.deepEqual(await imageOutcome(page, "bare"), { outcome: "load", complete: true, naturalWidth: 640 });
    await page.screenshot({ path: path.join(artifacts, "embed-granted.png") });
    assert.deepEqual(problems, [], "no other console errors");

    // The dashboard signs its links with the page's token.
    const dash = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const dashProblems = watchProblems(dash, [/status of 401/]);
    await dash.goto(`${base}/?service=grant-svc&window=15m&theme=light`);
    await dash.locator("#login").waitFor({ state: "visible", timeout: 15_000 });
    await dash.fill("#token", token);
    await dash.click("#login button");
    await dash.waitForFunction(() => {
      const p = document.querySelector('section.panel[data-kind="error_rate"]');
      return p && p.dataset.shown && p.dataset.shown === p.dataset.view;
    }, null, { timeout: RENDER_DEADLINE_MS });
    const link = await copied(dash, "error_rate", ".copy-link");
    const url = new URL(link);
    assert.equal(url.origin, new URL(base).origin);
    assert.ok(url.searchParams.get("grant"), `a signed link: ${link}`);
    assert.equal(url.searchParams.has("ticket"), false, "no ticket in a shared link");
    await assertPng(link, "copied signed link");
    url.searchParams.delete("grant");
    assert.equal((await fetch(url)).status, 401);
    assert.deepEqual(dashProblems, [], "no console errors in the dashboard");
  } finally {
    if (browser) await browser.close();
    if (site) await site.close();
    child.kill("SIGTERM");
  }
});
