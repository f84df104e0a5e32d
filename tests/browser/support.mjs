// Shared helpers of the browser tests (not a test file itself): start `plotq standalone`,
// ingest samples, launch Debian's Chromium, fetch a render URL until it is ready, and
// collect console errors.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { createHash, randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../..");
export const bin = process.env.PLOTQ_BIN || path.join(root, "target/debug/plotq");
export const artifacts = path.join(root, "target/artifacts");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

/** Starts `plotq standalone` on port 0; `base` resolves with its base URL. */
export function startPlotq(extraEnv = {}) {
  const child = spawn(bin, ["standalone", "--no-demo"], {
    env: { ...process.env, PLOTQ_HTTP_ADDR: "127.0.0.1:0", PLOTQ_REFRESH_DEBOUNCE_SECS: "1", RUST_LOG: "warn", ...extraEnv },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const base = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("plotq did not start within 30 s")), 30_000);
    createInterface({ input: child.stdout }).on("line", (line) => {
      const m = line.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`plotq exited early (${code})`)));
  });
  return { child, base };
}

/** A fresh API token and the PLOTQ_TOKENS / PLOTQ_TICKET_SECRET that accept it. */
export function tokenEnv(scopes = "ingest,read") {
  const token = `pq_${randomBytes(32).toString("base64url")}`;
  const hash = createHash("sha256").update(token).digest("hex");
  return {
    token,
    env: { PLOTQ_TOKENS: `sha256:${hash} scopes=${scopes} name=browser`, PLOTQ_TICKET_SECRET: randomBytes(32).toString("hex") },
  };
}

/** `n` latency and status-code samples for `service`, spread over the last 10 minutes. */
export async function ingest(base, service, n, token = "", { scale = 1 } = {}) {
  const now = Date.now();
  const samples = [];
  for (let i = 0; i < n; i++) {
    const ts = now - 1000 - Math.floor((i * 600_000) / n);
    samples.push({ service, metric: "latency_ms", value: scale * (10 + ((i * 7919) % 100) * (1 + (i % 13 === 0 ? 4 : 0))), timestamp: ts });
    samples.push({ service, metric: "status_code", value: i % 17 === 0 ? 503 : 200, timestamp: ts });
  }
  const response = await fetch(`${base}/api/v1/metrics`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(samples),
  });
  assert.equal(response.status, 200);
}

export function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

/**
 * Console errors and page errors of `page`. A render answered 503 (not ready in time;
 * the page retries after Retry-After) is logged by Chromium as a failed resource: not a
 * problem. `allow` lists more patterns to ignore.
 */
export function watchProblems(page, allow = []) {
  const problems = [];
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const where = m.location()?.url || "";
    if (/status of 503/.test(m.text()) && /\/api\/v1\/render/.test(where)) return;
    if (allow.some((re) => re.test(m.text()))) return;
    problems.push(`${m.text()} (${where})`);
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  return problems;
}

/**
 * GETs `url` until it is not 503 (the render was not ready in time), honouring
 * Retry-After, for at most `deadlineMs`. Resolves with the last response and its body.
 */
export async function fetchRendered(url, { headers = {}, deadlineMs = 40_000 } = {}) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const response = await fetch(url, { headers });
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status !== 503 || Date.now() > deadline) return { response, body };
    const after = Number(response.headers.get("retry-after")) || 1;
    await new Promise((r) => setTimeout(r, Math.min(after, 5) * 1000));
  }
}

export const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
