#!/usr/bin/env bash
# Requests/s of a cached PNG served by `plotq standalone` (release build), in open mode or
# with a bearer token: the cost of authentication on the hottest read path; with extra
# settings, the cost of anything they switch (e.g. PLOTQ_REQUEST_METRICS=false: the
# request metrics, logs, statistics, Server-Timing and self-samples).
# Usage: bench/png_serve.sh PLOTQ_BINARY PORT open|token [VAR=VALUE ...]
#   (needs wrk, curl, python3)
# Compare two binaries or modes side by side by alternating calls in one run.
set -euo pipefail
BIN=$1; PORT=$2; MODE=$3
shift 3
TOKEN=pq_benchtoken_0123456789abcdefghijklmnopqrstuvwxyz
HASH=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
ENV=(PLOTQ_HTTP_ADDR=127.0.0.1:$PORT RUST_LOG=error PLOTQ_PLOT_REQUESTS_PER_SEC=100000 PLOTQ_PLOT_BURST=100000 "$@")
AUTH=()
if [ "$MODE" = token ]; then
  ENV+=(PLOTQ_TOKENS="sha256:$HASH scopes=ingest,read name=bench" PLOTQ_TICKET_SECRET=0123456789abcdef0123456789abcdef)
  AUTH=(-H "authorization: Bearer $TOKEN")
fi
env "${ENV[@]}" "$BIN" standalone --no-demo >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for i in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
python3 - "$PORT" "${AUTH[@]}" <<'PY' > /tmp/bench_id
import json, sys, time, urllib.request
port = sys.argv[1]; hdr = {"content-type": "application/json"}
if len(sys.argv) > 3: k, v = sys.argv[3].split(": ", 1); hdr[k] = v
now = int(time.time()*1000)
body = json.dumps([{"service":"bench","metric":"latency_ms","value":10+i%97,"timestamp":now-1000-i*10} for i in range(10000)]).encode()
urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/metrics", body, hdr))
r = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/plots", json.dumps({"kind":"histogram","service":"bench"}).encode(), hdr))
jid = json.load(r)["id"]
for _ in range(200):
    s = json.load(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/plots/{jid}", headers=hdr)))
    if s["status"] == "done": break
    time.sleep(0.05)
print(jid)
PY
ID=$(cat /tmp/bench_id)
curl -sf "${AUTH[@]}" -o /dev/null "http://127.0.0.1:$PORT/api/v1/plots/$ID/png"
wrk -t2 -c32 -d8s "${AUTH[@]}" "http://127.0.0.1:$PORT/api/v1/plots/$ID/png" | grep -E "Requests/sec|Non-2xx|Latency"
