// Real-browser test of the dashboard on a phone (375×812, devicePixelRatio 3, touch), a
// desktop (1280×800) and a wall screen (2560×1440): every one of the seven panels gets an
// image at least as sharp as the screen (natural size ≥ displayed size × DPR) with its
// statistics as text and its plot text at least 11 CSS px tall as displayed, the page
// never scrolls sideways, a comparison of two services
// shows both in its statistics, drag-to-zoom on a time-axis panel turns into a fixed
// from/until range for every panel, a custom range picked with the from/until inputs
// re-renders every panel through GET /api/v1/render and lands in the URL, "Back to live"
// returns to the window, and nothing is logged as an error. Screenshots of each
// viewport go to target/artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { artifacts, ingest, launch, startPlotq, watchProblems } from "./support.mjs";

const KINDS = ["histogram", "latency_timeseries", "throughput", "status_codes", "error_rate", "heatmap", "cdf"];
const COMPARING = ["histogram", "latency_timeseries", "throughput", "status_codes", "error_rate", "heatmap", "cdf"];
/** How long a round of renders may take on a loaded 2-core machine. */
const RENDER_DEADLINE_MS = 40_000;

const VIEWPORTS = [
  { name: "phone", viewport: { width: 375, height: 812 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true, timezoneId: "America/New_York" },
  { name: "desktop", viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, timezoneId: "UTC" },
  { name: "wall", viewport: { width: 2560, height: 1440 }, deviceScaleFactor: 1, timezoneId: "Europe/Berlin" },
];

/** Waits until every panel shows the image of its current view (size, range, options). */
function waitForAllPanels(page, { fixed = false, notSrc = [] } = {}) {
  return page.waitForFunction(({ n, fixed, notSrc }) => {
    const all = [...document.querySelectorAll("section.panel")];
    return all.length === n && all.every((p) => {
      const img = p.querySelector("img");
      return p.classList.contains("has-image") && p.dataset.shown === p.dataset.view && img.complete && img.naturalWidth > 0
        && (!fixed || img.src.startsWith("blob:")) && !notSrc.includes(img.src);
    });
  }, { n: KINDS.length, fixed, notSrc }, { timeout: RENDER_DEADLINE_MS });
}

const sources = (page) => page.$$eval("section.panel img", (imgs) => imgs.map((i) => i.src));

/** Every panel's image has at least displayed size × devicePixelRatio pixels. */
async function assertSharp(page, label) {
  const sizes = await page.$$eval("section.panel", (all) => all.map((p) => {
    const img = p.querySelector("img");
    const box = img.getBoundingClientRect();
    return { kind: p.dataset.kind, nw: img.naturalWidth, nh: img.naturalHeight, cw: box.width, ch: box.height, dpr: devicePixelRatio };
  }));
  assert.equal(sizes.length, KINDS.length);
  for (const s of sizes) {
    assert.ok(s.cw > 100, `${label}: ${s.kind} is displayed (${s.cw} px wide)`);
    assert.ok(s.nw >= s.cw * s.dpr - 0.5 && s.nh >= s.ch * s.dpr - 0.5,
      `${label}: ${s.kind} image ${s.nw}×${s.nh} is at least ${s.cw}×${s.ch} × ${s.dpr}`);
  }
}

/** The smallest plot text, as displayed, in CSS pixels: each panel's image reports its
 * smallest type in image pixels (the job's `text_px`), shown at the image's displayed
 * width over its natural width. Text under 11 CSS px is not legible on a dashboard. */
const MIN_TEXT_CSS_PX = 11;
async function assertLegible(page, label) {
  const sizes = await page.$$eval("section.panel", (all) => all.map((p) => {
    const img = p.querySelector("img");
    return { kind: p.dataset.kind, textPx: Number(p.dataset.textPx), nw: img.naturalWidth, cw: img.getBoundingClientRect().width };
  }));
  for (const s of sizes) {
    assert.ok(s.textPx > 0, `${label}: ${s.kind} reports its text size`);
    const css = s.textPx * s.cw / s.nw;
    assert.ok(css >= MIN_TEXT_CSS_PX - 0.05, `${label}: ${s.kind} text is ${css.toFixed(1)} CSS px (image ${s.textPx} px at ${s.cw}/${s.nw})`);
  }
  return Math.min(...sizes.map((s) => s.textPx * s.cw / s.nw));
}

async function assertNoSideScroll(page, label) {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth }));
  assert.ok(scrollWidth <= innerWidth, `${label}: no horizontal scrolling (${scrollWidth} > ${innerWidth})`);
}

/** The service names in the first column of a panel's statistics table. */
const statServices = (page, kind) =>
  page.$$eval(`section.panel[data-kind="${kind}"] .stats tbody th`, (ths) => [...new Set(ths.map((th) => th.textContent))]);

/** Drags across the middle of a panel's image (35 % → 65 % of its width). */
async function dragAcross(page, kind) {
  const frame = page.locator(`section.panel[data-kind="${kind}"] .frame`);
  await frame.scrollIntoViewIfNeeded();
  const box = await frame.boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.35, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, y, { steps: 4 });
  assert.equal(await page.locator(`section.panel[data-kind="${kind}"] .selection`).isVisible(), true, "the selection is drawn");
  await page.mouse.move(box.x + box.width * 0.65, y, { steps: 4 });
  await page.mouse.up();
}

function rangeOf(url) {
  const params = new URL(url).searchParams;
  return { from: Date.parse(params.get("from")), until: Date.parse(params.get("until")), window: params.get("window") };
}

test("the dashboard is sharp, fits and works on a phone, a desktop and a wall screen", { timeout: 240_000 }, async (t) => {
  mkdirSync(artifacts, { recursive: true });
  const { child, base: basePromise } = startPlotq();
  let browser;
  try {
    const base = await basePromise;
    await ingest(base, "svc-a", 1500);
    await ingest(base, "svc-b", 1500, "", { scale: 2 });
    browser = await launch();

    for (const { name, ...options } of VIEWPORTS) {
      await t.test(name, async () => {
        const context = await browser.newContext(options);
        try {
          const page = await context.newPage();
          const problems = watchProblems(page);
          await page.goto(`${base}/?service=svc-a&window=15m&theme=light`);

          // Live: every panel gets a sharp image and its numbers.
          await waitForAllPanels(page);
          await assertSharp(page, `${name} live`);
          const smallest = await assertLegible(page, `${name} live`);
          console.log(`${name}: smallest plot text ${smallest.toFixed(1)} CSS px`);
          await assertNoSideScroll(page, `${name} live`);
          assert.deepEqual(await statServices(page, "histogram"), ["svc-a"]);
          const count = await page.locator('section.panel[data-kind="histogram"] .stats tbody td').first().textContent();
          assert.equal(count, "1,500", "the histogram's sample count");
          assert.ok((await page.$$eval('section.panel[data-kind="status_codes"] .stats tbody tr', (trs) => trs.length)) >= 2, "a row per status code");
          assert.match(await page.locator('section.panel[data-kind="error_rate"] .stats tbody').textContent(), /\d %/);
          assert.match(await page.locator('section.panel[data-kind="throughput"] .stats tbody').textContent(), /\d/);
          await page.screenshot({ path: path.join(artifacts, `responsive-${name}.png`), scale: "css" });

          // A custom range through the pickers (local time of the page's time zone).
          const beforeRange = await sources(page);
          const until = Math.floor((Date.now() - 60_000) / 1000) * 1000;
          const from = until - 8 * 60_000;
          const local = (ms) => page.evaluate((v) => {
            const d = new Date(v);
            const p = (n) => String(n).padStart(2, "0");
            return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
          }, ms);
          // Folded away on a phone while live.
          if (!(await page.locator("#from").isVisible())) await page.click("#range-box summary");
          await page.fill("#from", await local(from));
          await page.fill("#until", await local(until));
          await page.click("#apply-range");
          await page.waitForFunction((f) => new URLSearchParams(location.search).get("from") === f,
            new Date(from).toISOString().replace(".000Z", "Z"), { timeout: 5_000 });
          assert.deepEqual(rangeOf(page.url()), { from, until, window: null });
          await waitForAllPanels(page, { fixed: true, notSrc: beforeRange });
          await assertSharp(page, `${name} custom range`);
          await assertNoSideScroll(page, `${name} custom range`);
          assert.match(await page.locator('section.panel[data-kind="histogram"] .stats caption').textContent(), /UTC/);
          await page.evaluate(() => scrollTo(0, 0));
          await page.screenshot({ path: path.join(artifacts, `responsive-${name}-range.png`), scale: "css" });

          // The URL restores the view.
          const restored = await context.newPage();
          const restoredProblems = watchProblems(restored);
          await restored.goto(page.url());
          await waitForAllPanels(restored, { fixed: true });
          assert.deepEqual(rangeOf(restored.url()), { from, until, window: null });
          await restored.close();
          assert.deepEqual(restoredProblems, [], "no console errors on the restored page");

          // A comparison over the fixed range: the second service picked in the picker.
          const beforeCompare = await sources(page);
          await page.click("#compare summary");
          await page.check('#compare-list input[value="svc-b"]');
          await page.waitForFunction(({ kinds, notSrc }) => kinds.every((k) => {
            const p = document.querySelector(`section.panel[data-kind="${k}"]`);
            const img = p?.querySelector("img");
            return p && p.dataset.view.startsWith("svc-a~svc-b/") && p.dataset.shown === p.dataset.view && !notSrc.includes(img.src);
          }), { kinds: COMPARING, notSrc: beforeCompare }, { timeout: RENDER_DEADLINE_MS });
          for (const kind of COMPARING) assert.deepEqual(await statServices(page, kind), ["svc-a", "svc-b"], kind);
          assert.match(page.url(), /compare=svc-b/);
          await page.click("#compare summary"); // close the picker
          await waitForAllPanels(page, { fixed: true });
          await assertSharp(page, `${name} comparison`);
          await assertLegible(page, `${name} comparison`);
          await assertNoSideScroll(page, `${name} comparison`);
          await page.evaluate(() => scrollTo(0, 0));
          await page.screenshot({ path: path.join(artifacts, `responsive-${name}-compare.png`), scale: "css" });

          // Drag-to-zoom across the middle of the latency-over-time plot (the comparison).
          const before = await sources(page);
          await dragAcross(page, "latency_timeseries");
          await page.waitForFunction((f) => new URLSearchParams(location.search).get("from") !== f,
            new Date(from).toISOString().replace(".000Z", "Z"), { timeout: 5_000 });
          const zoomed = rangeOf(page.url());
          assert.equal(zoomed.window, null);
          assert.ok(zoomed.from > from && zoomed.until < until && zoomed.until - zoomed.from < 0.6 * (until - from),
            `the zoomed range is part of the 8 minutes: ${JSON.stringify(zoomed)}`);
          await waitForAllPanels(page, { fixed: true, notSrc: before });
          await assertSharp(page, `${name} zoomed`);
          assert.equal(await page.locator("#back-live").isVisible(), true);
          for (const kind of COMPARING) assert.deepEqual(await statServices(page, kind), ["svc-a", "svc-b"], `zoomed ${kind}`);

          // Back to live; the comparison stays, now watched over the event stream.
          await page.click("#back-live");
          await page.waitForFunction(() => new URLSearchParams(location.search).get("window") === "15m"
            && !new URLSearchParams(location.search).has("from"), null, { timeout: 5_000 });
          await waitForAllPanels(page);
          await page.waitForFunction(() => document.getElementById("live").textContent === "live", null, { timeout: 10_000 });
          for (const kind of COMPARING) assert.deepEqual(await statServices(page, kind), ["svc-a", "svc-b"], `live ${kind}`);
          await assertSharp(page, `${name} live comparison`);

          // Drag-to-zoom on a live panel: the last 15 minutes become a fixed range.
          const live = await sources(page);
          const startedAt = Date.now();
          await dragAcross(page, "throughput");
          await page.waitForFunction(() => new URLSearchParams(location.search).has("from"), null, { timeout: 5_000 });
          const fromLive = rangeOf(page.url());
          assert.equal(fromLive.window, null);
          assert.ok(fromLive.from >= startedAt - 20 * 60_000 && fromLive.until <= Date.now() + 60_000
            && fromLive.until > fromLive.from && fromLive.until - fromLive.from < 0.6 * 900_000, JSON.stringify(fromLive));
          await waitForAllPanels(page, { fixed: true, notSrc: live });
          assert.deepEqual(problems, [], "no console errors");
        } finally {
          await context.close();
        }
      });
    }
  } finally {
    if (browser) await browser.close();
    child.kill("SIGTERM");
  }
});
