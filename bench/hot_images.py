#!/usr/bin/env python3
# Hot images: requests/s of one done plot's PNG through the distributed api (`plotq api`
# on the local Redis, RabbitMQ and MongoDB(-wire) server; one `plotq worker` renders the
# plot first) beside `redis-benchmark` GET of a value of the same size, side by side in
# one run, every load at 64 connections on this machine's cores (wrk and
# redis-benchmark share them with the server they load, alike). The api runs once per
# layer to price:
#   hot            - defaults, open mode: the image from the api's memory;
#   hot_token      - a bearer token on every request (authentication);
#   hot_no_metrics - PLOTQ_REQUEST_METRICS=false (request metrics, logs, Server-Timing);
#   hot_304        - `If-None-Match` with the image's ETag: 304, no body;
#   redis_each     - PLOTQ_HOT_IMAGE_BYTES=0: the state and image from Redis on every
#                    request (one MGET), as before the hot cache (then: two GETs).
# Prints one JSON line per figure and a last one with every ratio to Redis GET.
# Usage: bench/hot_images.py   (PLOTQ_BIN: default target/release/plotq; SECONDS_EACH: 8;
#   needs wrk, redis-benchmark, curl)
import json, os, re, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capacity import B, clean, stop, wait_ready  # noqa: E402

SECONDS_EACH = int(os.environ.get("SECONDS_EACH", "8"))
PORT = 18320
TOKEN = "pq_benchtoken_0123456789abcdefghijklmnopqrstuvwxyz"
RATES = {"PLOTQ_PLOT_REQUESTS_PER_SEC": "10000000", "PLOTQ_PLOT_BURST": "10000000"}


def start(role, port, ns, env_extra):
    env = dict(os.environ, RUST_LOG="warn", PLOTQ_NAMESPACE=ns, **RATES, **env_extra)
    return subprocess.Popen([B, role, "--http-addr", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def call(url, body=None, headers=None):
    req = urllib.request.Request(url, json.dumps(body).encode() if body is not None else None,
                                 {"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), dict(r.headers)


def wrk(url, headers):
    args = ["wrk", "-t2", "-c64", f"-d{SECONDS_EACH}s", url]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise SystemExit(f"{url}: {bad.group(1)} failed responses\n{out}")
    return rps


def redis_get(size):
    out = subprocess.run(["redis-benchmark", "-t", "set,get", "-d", str(size), "-c", "64",
                          "-n", str(40000 * SECONDS_EACH), "-q"],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"GET: ([\d.]+) requests per second", out).group(1))


def main():
    ns = f"hot{int(time.time())}"
    token_env = {
        "PLOTQ_TOKENS": "sha256:" + __import__("hashlib").sha256(TOKEN.encode()).hexdigest()
                        + " scopes=ingest,read name=bench",
        "PLOTQ_TICKET_SECRET": "0123456789abcdef0123456789abcdef",
    }
    base = f"http://127.0.0.1:{PORT}"
    api = start("api", PORT, ns, {})
    worker = start("worker", PORT + 1, ns, {})
    try:
        wait_ready(base + "/readyz")
        now = int(time.time() * 1000)
        call(base + "/api/v1/metrics", [
            {"service": "bench", "metric": "latency_ms", "value": 10 + (i * 37) % 97 + (i % 7) / 10,
             "timestamp": now - 1000 - i * 20} for i in range(10000)])
        job = json.loads(call(base + "/api/v1/plots", {"kind": "histogram", "service": "bench"})[0])
        for _ in range(600):
            state = json.loads(call(f"{base}/api/v1/plots/{job['id']}")[0])
            if state["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        if state["status"] != "done":
            raise SystemExit(f"the plot did not render: {state}")
        png, headers = call(f"{base}/api/v1/plots/{job['id']}/png")
        etag = headers.get("ETag") or headers.get("etag")
    finally:
        stop(api, worker)
    url = f"{base}/api/v1/plots/{job['id']}/png"
    figures = {"redis_get": redis_get(len(png))}
    print(json.dumps({"figure": "redis_get", "bytes": len(png), "requests_per_s": figures["redis_get"]}), flush=True)
    layers = [
        ("hot", {}, []),
        ("hot_token", token_env, [f"authorization: Bearer {TOKEN}"]),
        ("hot_no_metrics", {"PLOTQ_REQUEST_METRICS": "false"}, []),
        ("hot_304", {}, [f"if-none-match: {etag}"]),
        ("redis_each", {"PLOTQ_HOT_IMAGE_BYTES": "0"}, []),
    ]
    try:
        for name, env, hdrs in layers:
            api = start("api", PORT, ns, env)
            try:
                wait_ready(base + "/readyz")
                figures[name] = wrk(url, hdrs)
            finally:
                stop(api)
            print(json.dumps({"figure": name, "requests_per_s": figures[name],
                              "of_redis_get": round(figures[name] / figures["redis_get"], 3)}),
                  flush=True)
    finally:
        clean(ns)
    print(json.dumps({"figure": "summary", "png_bytes": len(png), "etag": etag,
                      **{k: round(v / figures["redis_get"], 3) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
