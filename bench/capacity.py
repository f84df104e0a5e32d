#!/usr/bin/env python3
# The figures of the capacity model (docs/scaling.md), measured on this machine:
#   render  - `plotq bench render` for every kind at three sizes: ms per render (median),
#             i.e. renders/s one core sustains for the drawing and encoding alone;
#   ingest  - a `plotq api` against the real RabbitMQ, Redis and MongoDB(-wire) server on
#             their default local addresses takes `plotq loadgen --backfill` batches; the
#             api's own CPU time (utime+stime from /proc) per accepted sample, i.e.
#             samples/s per api core whatever the store's speed;
#   sse     - a `plotq notifier` (real Redis) holds N idle SSE clients opened by this
#             script; its RSS growth per client;
#   fanout  - N SSE clients each receive all 200 `plot.ready` events of jobs an api and
#             two workers render; the notifier's CPU time per event delivered to one
#             client.
# Prints one JSON line per figure. Each run uses its own namespace, removed afterwards.
# bench/worker_scaling.py imports its process helpers (cpu_seconds, clean, stop).
# Usage: bench/capacity.py [render] [ingest] [sse] [fanout]   (all four by default)
#   PLOTQ_BIN: the binary (default target/release/plotq); SSE_CLIENTS (default 2000);
#   BATCH: samples per ingest request (default 1000).
import json, os, signal, socket, subprocess, sys, time, urllib.request

B = os.environ.get("PLOTQ_BIN", "target/release/plotq")
parts = sys.argv[1:] or ["render", "ingest", "sse", "fanout"]
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_ready(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} never became ready")


def start(role, port, ns, *extra):
    env = dict(os.environ, RUST_LOG="warn", PLOTQ_NAMESPACE=ns)
    return subprocess.Popen([B, role, "--http-addr", f"127.0.0.1:{port}", *extra], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(*procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


def clean(ns):
    queues = subprocess.run(["rabbitmqctl", "list_queues", "name", "-q"],
                            capture_output=True, text=True).stdout.split()
    for q in queues:
        if q.startswith(ns + "."):
            subprocess.run(["rabbitmqctl", "delete_queue", q, "-q"], capture_output=True)
    keys = subprocess.run(["redis-cli", "--scan", "--pattern", ns + ":*"],
                          capture_output=True, text=True).stdout.split()
    for i in range(0, len(keys), 500):
        subprocess.run(["redis-cli", "del", *keys[i:i + 500]], capture_output=True)


def render():
    sizes = [(800, 450, 1), (1200, 675, 3), (1920, 1080, 1)]
    kinds = ["histogram", "cdf", "latency_timeseries", "throughput", "status_codes",
             "error_rate", "heatmap"]
    for kind in kinds:
        for (w, h, s) in sizes:
            out = subprocess.run([B, "bench", "render", "--kind", kind, "--n", "100000",
                                  "--reps", "15", "--width", str(w), "--height", str(h),
                                  "--scale", str(s)], capture_output=True, text=True, check=True)
            line = json.loads(out.stdout.strip().splitlines()[-1])
            ms = line.get("median_ms") or line.get("p50_ms")
            print(json.dumps({"figure": "render", "kind": kind, "size": f"{w}x{h}@{s}",
                              "median_ms": ms, "min_ms": line.get("min_ms"),
                              "renders_per_core_s": round(1000 / ms, 1) if ms else None}),
                  flush=True)


def ingest():
    ns = f"cap{int(time.time())}i"
    api = start("api", 18300, ns, "--ingest-samples-per-sec", "100000000",
                "--ingest-burst", "100000000")
    try:
        wait_ready("http://127.0.0.1:18300/readyz")
        before, t0 = cpu_seconds(api.pid), time.time()
        out = subprocess.run([B, "loadgen", "--url", "http://127.0.0.1:18300", "--backfill", "10m",
                              "--rate", "1000", "--batch", os.environ.get("BATCH", "1000"), "--concurrency", "4",
                              "--services", "4", "--quiet"],
                             capture_output=True, text=True, check=True)
        used, wall = cpu_seconds(api.pid) - before, time.time() - t0
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        accepted = summary.get("accepted", 0)
        print(json.dumps({"figure": "ingest", "accepted": accepted, "wall_s": round(wall, 2),
                          "api_cpu_s": round(used, 2),
                          "samples_per_api_core_s": round(accepted / used) if used else None,
                          "samples_per_s_end_to_end": round(accepted / wall)}), flush=True)
    finally:
        stop(api)
        clean(ns)


def sse():
    n = int(os.environ.get("SSE_CLIENTS", "2000"))
    ns = f"cap{int(time.time())}s"
    notifier = start("notifier", 18301, ns, "--sse-connections-per-caller", str(n + 10),
                     "--max-connections", str(n + 100))
    socks = []
    try:
        wait_ready("http://127.0.0.1:18301/readyz")
        time.sleep(1)
        base = rss_kb(notifier.pid)
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", 18301))
            s.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            socks.append(s)
        for s in socks:  # every stream answered (headers and the first bytes)
            s.settimeout(30)
            if b"200" not in s.recv(4096):
                raise SystemExit("an SSE client was refused")
        time.sleep(12)  # past one keep-alive comment to every client
        held = rss_kb(notifier.pid)
        print(json.dumps({"figure": "sse", "clients": n, "rss_idle_mb": round(base / 1024, 1),
                          "rss_with_clients_mb": round(held / 1024, 1),
                          "kb_per_client": round((held - base) / n, 1)}), flush=True)
    finally:
        for s in socks:
            s.close()
        stop(notifier)
        clean(ns)


def fanout():
    """N SSE clients each receive every plot.ready of J jobs (an api and two workers
    render them): the notifier's CPU time per event delivered to one client."""
    import selectors
    n, jobs = int(os.environ.get("SSE_CLIENTS", "2000")), 200
    ns = f"cap{int(time.time())}f"
    api = start("api", 18302, ns, "--dedupe-secs", "0", "--plot-requests-per-sec", "100000",
                "--plot-burst", "100000")
    notifier = start("notifier", 18303, ns, "--sse-connections-per-caller", str(n + 10),
                     "--max-connections", str(n + 100))
    workers = [start("worker", 18304 + i, ns) for i in range(2)]
    socks = []
    try:
        for port in (18302, 18303):
            wait_ready(f"http://127.0.0.1:{port}/readyz")
        now = int(time.time() * 1000)
        samples = [{"service": "f", "metric": "latency_ms", "value": 5 + (i * 7919) % 200,
                    "timestamp": now - 1000 - i * 30} for i in range(5000)]
        urllib.request.urlopen(urllib.request.Request(
            "http://127.0.0.1:18302/api/v1/metrics", data=json.dumps(samples).encode(),
            headers={"content-type": "application/json"}))
        sel = selectors.DefaultSelector()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", 18303))
            s.sendall(b"GET /api/v1/events?service=f HTTP/1.1\r\nHost: x\r\n\r\n")
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, [0, b""])
            socks.append(s)
        time.sleep(2)
        before, t0 = cpu_seconds(notifier.pid), time.time()
        for i in range(jobs):
            body = {"kind": "histogram", "service": "f", "window": "5m", "width": 400 + i,
                    "height": 300}
            urllib.request.urlopen(urllib.request.Request(
                "http://127.0.0.1:18302/api/v1/plots", data=json.dumps(body).encode(),
                headers={"content-type": "application/json"}))
        done = 0
        while done < n and time.time() - t0 < 300:
            for key, _ in sel.select(timeout=1):
                state = key.data
                try:
                    chunk = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                state[0] += chunk.count(b"event: plot.ready")
                if state[0] >= jobs and not state[1]:
                    state[1] = b"done"
                    done += 1
        used, wall = cpu_seconds(notifier.pid) - before, time.time() - t0
        delivered = sum(k.data[0] for k in sel.get_map().values())
        print(json.dumps({"figure": "fanout", "clients": n, "events": jobs,
                          "clients_with_every_event": done, "delivered": delivered,
                          "wall_s": round(wall, 2), "notifier_cpu_s": round(used, 2),
                          "us_per_delivery": round(1e6 * used / delivered, 2) if delivered else None,
                          "deliveries_per_core_s": round(delivered / used) if used else None}),
              flush=True)
    finally:
        for s in socks:
            s.close()
        stop(api, notifier, *workers)
        clean(ns)


if __name__ == "__main__":
    for part in parts:
        {"render": render, "ingest": ingest, "sse": sse, "fanout": fanout}[part]()
