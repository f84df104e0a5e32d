#!/usr/bin/env bash
# The suite's local Redis Cluster: three masters on 127.0.0.1:7101-7103 (no replicas,
# nothing kept on disk but each node's cluster config), for the tests that run plotq on
# a cluster (crates/plotq-redis/tests/redis/cluster.rs, the `…_on_a_redis_cluster` tests of
# tests/e2e_pipeline.rs, the cluster restart test of tests/e2e_restarts.rs).
# `tests/redis-cluster.sh` starts it unless it is already up and healthy (idempotent);
# `tests/redis-cluster.sh stop` stops it and removes its files.
# Each node runs from its own config file under ~/.cache/plotq/redis-cluster/<port>/,
# which is what the restart test starts a node from again (`INFO server` names it).
set -euo pipefail

PORTS=(7101 7102 7103)
ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/plotq/redis-cluster"

cli() { redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }
up() { [ "$(cli "$1" ping 2>/dev/null)" = "PONG" ]; }
state_ok() { cli "${PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
masters() { cli "${PORTS[0]}" cluster nodes 2>/dev/null | grep -c 'master' || true; }

stop() {
  for port in "${PORTS[@]}"; do
    up "$port" && cli "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$ROOT"
}

start_node() {
  local port=$1 dir="$ROOT/$1"
  mkdir -p "$dir"
  cat >"$dir/redis.conf" <<EOF
port $port
bind 127.0.0.1
protected-mode yes
daemonize yes
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
save ""
appendonly no
EOF
  redis-server "$dir/redis.conf"
}

if [ "${1:-start}" = "stop" ]; then
  stop
  exit 0
fi

healthy=1
for port in "${PORTS[@]}"; do up "$port" || healthy=0; done
if [ "$healthy" = 1 ] && state_ok && [ "$(masters)" -ge 3 ]; then
  exit 0
fi

echo "starting a 3-master Redis Cluster on 127.0.0.1:${PORTS[0]}-${PORTS[-1]}"
stop
for port in "${PORTS[@]}"; do start_node "$port"; done
for port in "${PORTS[@]}"; do
  for _ in $(seq 1 100); do up "$port" && break; sleep 0.1; done
  up "$port" || { echo "error: redis node $port did not start" >&2; exit 1; }
done
nodes=()
for port in "${PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 1 150); do
  if state_ok; then
    # Every node must agree before a client asks any of them for the slot map.
    all=1
    for port in "${PORTS[@]}"; do
      cli "$port" cluster info | grep -q '^cluster_state:ok' || all=0
    done
    [ "$all" = 1 ] && exit 0
  fi
  sleep 0.2
done
echo "error: the Redis Cluster did not reach cluster_state:ok" >&2
exit 1
