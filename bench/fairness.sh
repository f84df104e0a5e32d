#!/usr/bin/env bash
# Fairness between tenants, side by side in one run: for each plotq binary given, starts
# `plotq standalone` (no demo, two tokens), then `plotq bench fairness` (of the first
# binary) drives it: a quiet tenant's cached and fresh images alone, then beside a busy
# tenant asking for distinct renders at its full plot rate (50/s, the default budget).
# Prints one JSON line per binary, then a table of the quiet tenant's p50/p99.
#
#   bench/fairness.sh NEW_PLOTQ [BASELINE_PLOTQ ...]     (release builds; needs curl)
#   e.g. bench/fairness.sh target/release/plotq /tmp/plotq-28363b9/target/release/plotq
#
# Extra settings for every server go in FAIRNESS_ENV (space-separated VAR=VALUE), the
# phases' lengths in ALONE_SECS / TOGETHER_SECS (default 10 / 30).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 NEW_PLOTQ [BASELINE_PLOTQ ...]" >&2; exit 2; }
DRIVER=$1
BUSY=pq_fairness_busy_0123456789abcdefghijklmnopqrstuvwxyzABCDEF
QUIET=pq_fairness_quiet_0123456789abcdefghijklmnopqrstuvwxyzABCDE
hash() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
TOKENS="sha256:$(hash "$BUSY") scopes=ingest,read name=busy; sha256:$(hash "$QUIET") scopes=read name=quiet"
PORT=18431
results=()
for BIN in "$@"; do
  env PLOTQ_HTTP_ADDR=127.0.0.1:$PORT RUST_LOG=error PLOTQ_TOKENS="$TOKENS" \
      PLOTQ_TICKET_SECRET=0123456789abcdef0123456789abcdef \
      PLOTQ_INGEST_SAMPLES_PER_SEC=100000000 PLOTQ_INGEST_BURST=100000000 ${FAIRNESS_ENV:-} \
      "$BIN" standalone --no-demo >/dev/null 2>&1 &
  PID=$!
  trap 'kill $PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  line=$("$DRIVER" bench fairness --url "http://127.0.0.1:$PORT" --busy-token "$BUSY" \
    --quiet-token "$QUIET" --alone-secs "${ALONE_SECS:-10}" --together-secs "${TOGETHER_SECS:-30}" ${FAIRNESS_ARGS:-})
  kill $PID; wait $PID 2>/dev/null || true
  echo "$BIN: $line"
  results+=("$BIN	$line")
  PORT=$((PORT + 1))
done
printf '%s\n' "${results[@]}" | python3 -c '
import json, sys
rows = [l.split("\t", 1) for l in sys.stdin.read().splitlines()]
def pair(r, phase, kind):
    s = r[phase][kind]
    return "%s/%s" % (s["p50_ms"], s["p99_ms"])
print("%-40s %-34s %-34s %s" % ("binary", "quiet cached p50/p99 ms", "quiet fresh p50/p99 ms", "busy statuses"))
print("%-40s %-34s %-34s" % ("", "(alone -> beside busy)", "(alone -> beside busy)"))
for binary, line in rows:
    r = json.loads(line)
    cached = pair(r, "alone", "cached") + " -> " + pair(r, "together", "cached")
    fresh = pair(r, "alone", "fresh") + " -> " + pair(r, "together", "fresh")
    print("%-40s %-34s %-34s %s" % (binary[-40:], cached, fresh, r["together"]["busy"]["statuses"]))
'
