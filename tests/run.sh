#!/usr/bin/env bash
# The README's test command. Installs and starts what the suite needs if it is missing
# (the MongoDB-wire test server nx-27017, pinned; Redis, and a 3-master Redis Cluster;
# RabbitMQ; schemathesis, pinned), then runs every test of the workspace through
# cargo-nextest, the browser tests and the validation of the deployment files. Idempotent: running it again reuses
# what is already up.
# Services are required: if one cannot be started, this fails instead of skipping tests.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's wall time, printed as it ends (`.ci/run` adds its own phases around this).
phase_started=$SECONDS
phase_done() { echo "phase $1: $((SECONDS - phase_started)) s"; phase_started=$SECONDS; }

NX_VERSION=0.8.1
mkdir -p target

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local port=$1 seconds=$2 name=$3
  for _ in $(seq 1 "$seconds"); do
    port_open "$port" && return 0
    sleep 1
  done
  echo "error: $name did not come up on 127.0.0.1:$port within ${seconds}s" >&2
  return 1
}
apt_install() {
  command -v apt-get >/dev/null || { echo "error: $1 is missing and apt-get is unavailable" >&2; return 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# MongoDB-wire server (tests only; production uses MongoDB).
if ! python3 -m pip show nx-27017 2>/dev/null | grep -qx "Version: $NX_VERSION"; then
  python3 -m pip install --quiet --disable-pip-version-check "nx-27017==$NX_VERSION"
fi
if ! port_open 27017; then
  echo "starting nx-27017 on 127.0.0.1:27017"
  setsid nohup nx-27017 --db memory -p 27017 >target/nx-27017.log 2>&1 < /dev/null &
  wait_port 27017 60 "nx-27017"
fi

# schemathesis, the contract fuzzer of tests/e2e_contract.rs (pinned in its requirements file).
ST_VERSION=$(sed -n 's/^schemathesis==//p' tests/schemathesis/requirements.txt)
if ! python3 -m pip show schemathesis 2>/dev/null | grep -qx "Version: $ST_VERSION"; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt
fi

# prometheus_client, whose parser tests/e2e_observe.rs reads every role's /metrics with.
PC_VERSION=$(sed -n 's/^prometheus_client==//p' tests/prometheus/requirements.txt)
if ! python3 -m pip show prometheus_client 2>/dev/null | grep -qx "Version: $PC_VERSION"; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/prometheus/requirements.txt
fi

# The OpenTelemetry Python SDK and its OTLP/HTTP exporter, the client tests/e2e/otlp.rs
# exports spans and metrics to plotq with.
OT_VERSION=$(sed -n 's/^opentelemetry-sdk==//p' tests/otlp/requirements.txt)
if ! python3 -m pip show opentelemetry-exporter-otlp-proto-http 2>/dev/null | grep -qx "Version: $OT_VERSION"; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/otlp/requirements.txt
fi

# Redis.
if ! port_open 6379; then
  command -v redis-server >/dev/null || apt_install redis-server
  echo "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no
  wait_port 6379 30 "redis"
fi

# A local 3-master Redis Cluster on 7101-7103, for the tests that run plotq on a cluster.
tests/redis-cluster.sh

# Chromium and the browser-test driver (playwright-core, pinned in the lock file).
if ! command -v chromium >/dev/null; then
  echo "installing chromium (browser test)"
  apt_install chromium
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# RabbitMQ.
if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  echo "starting rabbitmq-server on 127.0.0.1:5672"
  rabbitmq-server -detached
  wait_port 5672 180 "rabbitmq"
fi

phase_done "services and tools"

log=target/test-output.log
status=0
# One build of every test binary and of the plotq binary the end-to-end suite and the
# browser tests start; then every test of the workspace through cargo-nextest, a
# process per test, the tests of all binaries sharing the cores (the restart suite,
# which stops the shared services, runs alone: .config/nextest.toml).
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
cargo nextest run --workspace --locked --no-run "$@" 2>&1 | tee "$log" || status=$?
phase_done "build tests"
cargo nextest run --workspace --locked "$@" 2>&1 | tee -a "$log" || status=$?
phase_done "run tests"
# The real-browser test drives the dashboard of the plotq binary cargo just built.
PLOTQ_BIN="$PWD/target/debug/plotq" node --test tests/browser/ 2>&1 | tee -a "$log" || status=$?
phase_done "browser tests"
# Deployment files (deploy/k8s overlays against the Kubernetes and KEDA schemas,
# docker-compose.yml against the compose specification, plotq's own rules), offline;
# then the validator's self-test: deliberately broken copies must be rejected.
{ tests/deploy/validate.sh && tests/deploy/validate.sh --self-test; } 2>&1 | tee -a "$log" || status=$?
phase_done "deployment files"
# One closing line for the whole suite (nextest prints its summary, node its own).
awk '/ Summary \[/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     /^# pass / { p += $3 }
     /^# fail / { f += $3 }
     /^self-test: / { p += $2; f += $4 }
     END { printf "suite: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
