#!/usr/bin/env python3
# Worker scaling: the same pre-filled queue drained by W `plotq worker` processes with
# prefetch P, against the real RabbitMQ, Redis and MongoDB(-wire) server on their default
# local addresses. An api (dedupe off) takes 5,000 samples and N plot requests (four
# kinds, distinct sizes) with no worker running; then W workers start and the time to
# the last `plotq_jobs_total{outcome="done"}` on their /metrics is the drain time, and
# the workers' CPU time per job (from /proc) is what a job costs a worker core.
# Prints one JSON line; the run's namespace (queues, Redis keys) is removed afterwards.
# Usage: bench/worker_scaling.py W P N   (PLOTQ_BIN: the binary, default
#   target/release/plotq). Alternate configurations in one session to compare them.
import json, os, subprocess, sys, time, urllib.request
from capacity import clean, cpu_seconds, stop
B = os.environ.get("PLOTQ_BIN", "target/release/plotq")
W, P, N = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ns = f"scale{int(time.time())}w{W}p{P}"
env = dict(os.environ, RUST_LOG="warn", PLOTQ_NAMESPACE=ns)
api = subprocess.Popen([B, "api", "--http-addr", "127.0.0.1:18200", "--dedupe-secs", "0",
                        "--plot-requests-per-sec", "100000", "--plot-burst", "100000"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def get(u):
    return urllib.request.urlopen(u, timeout=10).read()
for _ in range(100):
    try:
        get("http://127.0.0.1:18200/readyz"); break
    except Exception: time.sleep(0.3)
now = int(time.time() * 1000)
samples = [{"service": "s", "metric": "latency_ms", "value": 5 + (i * 7919) % 200, "timestamp": now - 1000 - i * 30} for i in range(5000)]
urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:18200/api/v1/metrics", data=json.dumps(samples).encode(), headers={"content-type": "application/json"}))
kinds = ["histogram", "latency_timeseries", "throughput", "cdf"]
for i in range(N):
    body = {"kind": kinds[i % 4], "service": "s", "window": "5m", "width": 800 + (i % 50), "height": 450}
    urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:18200/api/v1/plots", data=json.dumps(body).encode(), headers={"content-type": "application/json"}))
workers = []
t0 = time.time()
for w in range(W):
    workers.append(subprocess.Popen([B, "worker", "--http-addr", f"127.0.0.1:{18210 + w}", "--prefetch", str(P)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
def done():
    total = 0
    for w in range(W):
        try:
            text = get(f"http://127.0.0.1:{18210 + w}/metrics").decode()
        except Exception:
            continue
        for line in text.splitlines():
            if line.startswith("plotq_jobs_total") and 'outcome="done"' in line:
                total += float(line.split()[-1])
    return total
while done() < N and time.time() - t0 < 600:
    time.sleep(0.2)
elapsed = time.time() - t0
# The workers' own CPU (start-up included): what one job costs a worker core, whatever
# the store's speed.
worker_cpu = sum(cpu_seconds(p.pid) for p in workers)
print(json.dumps({"workers": W, "prefetch": P, "jobs": N, "done": done(), "seconds": round(elapsed, 2),
                  "jobs_per_s": round(N / elapsed, 2), "worker_cpu_s": round(worker_cpu, 2),
                  "worker_cpu_ms_per_job": round(1000 * worker_cpu / N, 2)}))
stop(*workers, api)
# Remove the run's namespace: its queues (durable) and Redis keys (the stream has no TTL).
clean(ns)
