#!/usr/bin/env python3
# Standalone memory per stored sample: starts `plotq standalone --no-demo` for each
# binary given, in turn, posts 12 M samples of one series through the HTTP API
# (lognormal latencies sent with two decimals, an hour of them, batches of 10,000), and
# prints the server's RSS before and after and the growth per sample, one JSON line per
# binary: give the build before a change and the build after to compare them side by
# side. Usage: bench/standalone_rss.py PLOTQ [PLOTQ ...]
import json, os, random, subprocess, sys, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capacity import rss_kb, wait_ready  # noqa: E402


def measure(B, port=18340, n=12_000_000, batch=10_000):
    env = dict(os.environ, PLOTQ_HTTP_ADDR=f"127.0.0.1:{port}", RUST_LOG="error",
               PLOTQ_INGEST_SAMPLES_PER_SEC="100000000", PLOTQ_INGEST_BURST="100000000")
    p = subprocess.Popen([B, "standalone", "--no-demo"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss = lambda: rss_kb(p.pid) * 1024
    try:
        wait_ready(f"http://127.0.0.1:{port}/healthz")
        time.sleep(1)
        before = rss()
        random.seed(7)
        now = int(time.time() * 1000) - 3_600_000 - 60_000
        step = 3_600_000 / n
        for b in range(n // batch):
            items = []
            for i in range(batch):
                k = b * batch + i
                items.append('{"service":"rss","metric":"latency_ms","value":%.2f,"timestamp":%d}' % (random.lognormvariate(3.7, 0.45), now + int(k * step)))
            body = ("[" + ",".join(items) + "]").encode()
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/metrics", body, {"content-type": "application/json"})).read()
        time.sleep(2)
        after = rss()
        return {"samples": n, "rss_before_mb": round(before / 1e6, 1),
                "rss_after_mb": round(after / 1e6, 1),
                "bytes_per_sample": round((after - before) / n, 2)}
    finally:
        p.terminate(); p.wait()


if __name__ == "__main__":
    for binary in sys.argv[1:]:
        print(json.dumps({"binary": binary, **measure(binary)}), flush=True)
