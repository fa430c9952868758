#!/usr/bin/env bash
# `npm run test:cluster [-- <jest arguments>]`: the Redis-facing integration and end-to-end suites
# against a real Redis Cluster, then the primary-failover drill (tests/cluster/).
#
# 1. Six redis-server processes on free loopback ports (each port and its cluster bus port,
#    port + 10000, free), cluster-enabled, AOF everysec, noeviction, a 2 s cluster-node-timeout
#    so a dead primary's replica is promoted within seconds. Everything lives in one temporary
#    directory: a config, data and log per node.
# 2. `redis-cli --cluster create … --cluster-replicas 1`: three primaries, one replica each. The
#    run starts once every node reports cluster_state:ok and every replica's link is up.
# 3. jest, first the suites of jest.cluster.config.js (the `integration` project minus the
#    suites that never touch Redis), then, on its own so that no other suite shares the
#    outage, the failover drill (`failover` project). TEST_REDIS_URL points the test helpers,
#    and through them every process the end-to-end tests start, at the cluster;
#    CLIPLINE_TEST_CLUSTER_DIR tells the drill where the nodes' configs are.
# 4. The nodes are stopped and the directory removed when the script ends, however it ends.
#
# `--json --outputFile=FILE` (as .ci/run passes to every suite) writes the two runs' counts,
# added up, to FILE in jest's field names. `--run CMD…` runs CMD with the cluster up instead of
# the suites (e.g. `bash scripts/test-cluster.sh --run npm start`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

for tool in redis-server redis-cli; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test:cluster: $tool is missing (sudo apt-get install -y redis-server)" >&2; exit 1; }
done

report=""
run_command=()
jest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --json) ;;
    --outputFile=*) report="${1#--outputFile=}" ;;
    --run) shift; run_command=("$@"); break ;;
    *) jest_args+=("$1") ;;
  esac
  shift
done

CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/clipline-cluster.XXXXXX")"
# The command running now (jest, the build, --run's command), in a process group of its own: a
# signal to this script ends it and everything it started (jest workers, the apps under test).
child=""
run() {
  setsid "$@" &
  child=$!
  local code=0
  wait "$child" || code=$?
  child=""
  return "$code"
}
stop_cluster() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$child" ]; then
    kill -TERM -- "-$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  local pids=() pidfile pid
  for pidfile in "$CLUSTER_DIR"/*/redis.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    # Only a redis-server this run started: the pid file is ours, and the process must be one.
    if [ -n "$pid" ] && grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  # A node removes its pid file as it shuts down but still writes its AOF: wait for the process.
  for pid in ${pids[@]+"${pids[@]}"}; do
    for _ in $(seq 1 50); do grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null || break; sleep 0.1; done
    if grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  done
  rm -rf "$CLUSTER_DIR"
  exit "$status"
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Six ports whose bus ports (port + 10000) are free too, from the ephemeral-free 20000-29999 range.
mapfile -t PORTS < <(node -e '
  const net = require("node:net");
  const free = (port) => new Promise((resolve) => {
    const server = net.createServer().once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
  (async () => {
    const found = [];
    for (let port = 20000 + Math.floor(Math.random() * 9000); found.length < 6 && port < 30000; port++) {
      if ((await free(port)) && (await free(port + 10000))) found.push(port);
    }
    if (found.length < 6) process.exit(1);
    console.log(found.join("\n"));
  })();
')
[ "${#PORTS[@]}" -eq 6 ] || { echo "test:cluster: found no six free loopback ports" >&2; exit 1; }

for port in "${PORTS[@]}"; do
  dir="$CLUSTER_DIR/$port"
  mkdir -p "$dir"
  cat >"$dir/redis.conf" <<EOF
port $port
bind 127.0.0.1
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
daemonize yes
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
appendonly yes
appendfsync everysec
save ""
maxmemory-policy noeviction
EOF
  redis-server "$dir/redis.conf"
done

nodes=()
for port in "${PORTS[@]}"; do
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  nodes+=("127.0.0.1:$port")
done
echo "== test:cluster: creating a cluster of ${nodes[*]} in $CLUSTER_DIR"
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 || {
  cat "$CLUSTER_DIR/create.log" >&2
  exit 1
}

cluster_ready() {
  local port
  for port in "${PORTS[@]}"; do
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    [ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | grep -c connected)" -eq 6 ] || return 1
    if redis-cli -p "$port" info replication | grep -q '^role:slave'; then
      redis-cli -p "$port" info replication | grep -q '^master_link_status:up' || return 1
    fi
  done
}
for _ in $(seq 1 300); do cluster_ready && break; sleep 0.1; done
cluster_ready || { echo "test:cluster: the cluster did not reach cluster_state:ok with every replica in sync" >&2; exit 1; }
redis-cli -p "${PORTS[0]}" cluster nodes | awk '{ sub(/@.*/, "", $2); print "   ", $2, ($3 ~ /master/ ? "primary" : "replica"), $9 }'

export TEST_REDIS_URL="redis+cluster://$(IFS=,; echo "${nodes[*]}")"
export CLIPLINE_TEST_CLUSTER_DIR="$CLUSTER_DIR"
echo "== test:cluster: TEST_REDIS_URL=$TEST_REDIS_URL"

if [ "${#run_command[@]}" -gt 0 ]; then
  export REDIS_URL="$TEST_REDIS_URL"
  run "${run_command[@]}"
  exit $?
fi

run npm run build --silent
jest() { run node --experimental-vm-modules node_modules/jest/bin/jest.js --config jest.cluster.config.js "$@"; }
started=$SECONDS
status=0
echo "== test:cluster: integration and end-to-end suites on the cluster"
jest --selectProjects integration --json --outputFile="$CLUSTER_DIR/suites.json" ${jest_args[@]+"${jest_args[@]}"} || status=$?
echo "== test:cluster: primary failover drill"
jest --selectProjects failover --passWithNoTests --json --outputFile="$CLUSTER_DIR/failover.json" ${jest_args[@]+"${jest_args[@]}"} || status=$?

node -e '
  const fs = require("node:fs");
  const [report, seconds, ...files] = process.argv.slice(1);
  const total = { numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTotalTests: 0 };
  for (const file of files) {
    if (!fs.existsSync(file)) { console.log(`test:cluster: no jest report in ${file} (the run stopped before jest finished)`); total.numFailedTests += 1; continue; }
    const run = JSON.parse(fs.readFileSync(file, "utf8"));
    for (const field of Object.keys(total)) total[field] += run[field];
  }
  const drill = `${process.env.CLIPLINE_TEST_CLUSTER_DIR}/failover-summary.json`;
  if (fs.existsSync(drill)) {
    const d = JSON.parse(fs.readFileSync(drill, "utf8"));
    console.log(`test:cluster: failover: killed primary 127.0.0.1:${d.killedPrimary.port} (pid ${d.killedPrimary.pid}, slot ${d.slot}); replica 127.0.0.1:${d.promotedReplica} promoted after ${d.failoverMs} ms, cluster_state:ok after ${d.clusterOkMs} ms; ${d.videosCompleted} videos completed and ${d.usersActivated} users activated exactly once, ${d.webhooksDelivered} webhooks, ${d.keysInOneSlot} keys in one slot`);
  }
  console.log(`test:cluster: ${total.numPassedTests} passed, ${total.numFailedTests} failed, ${total.numPendingTests} skipped in ${seconds} s`);
  if (report) fs.writeFileSync(report, JSON.stringify({ ...total, success: total.numFailedTests === 0 }));
' "$report" "$((SECONDS - started))" "$CLUSTER_DIR/suites.json" "$CLUSTER_DIR/failover.json"
exit "$status"
