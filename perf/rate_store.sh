#!/usr/bin/env bash
# What a rate-limit decision costs per request: the same load with no limit, with the shards'
# own buckets (`store = "local"`), and with the cluster-wide store (`store = "redis"`: shard ->
# o1m-ratestore thread -> Redis -> back), through the gateway to the demo backend.
#
# Usage: perf/rate_store.sh        (DURATION=5s, CONNS="1 16", DRIVER=uring, RUNS=3)
#
# The limits are set so high that nothing is refused (a million a second, burst a million):
# what is measured is the decision, not a refusal. For each mode and concurrency: wrk -t1 -c N
# (perf/mcp_post.lua, tools/call demo__echo), the median over RUNS of req/s, p50 and p99, and
# the gateway's CPU per request (utime + stime from /proc). For redis, Redis's own time per
# decision (INFO commandstats, usec_per_call of evalsha) and the decisions per pipeline the
# store thread sent (calls / pipelines is not visible from outside; calls / requests is).
# The gateway runs on CPU_GW (1) with one shard; wrk, the demo backend and Redis share CPU_LOAD
# (0): on a 2-core machine Redis competes with the load generator, which the numbers include.
# Needs redis-server, redis-cli and wrk (Debian packages). Every process is killed and reaped
# at exit (perf/lib.sh).
set -euo pipefail
LOG_TAG=rate_store
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"

DURATION=${DURATION:-5s}
CONNS=${CONNS:-"1 16"}
DRIVER=${DRIVER:-uring}
RUNS=${RUNS:-3}
CPU_LOAD=${CPU_LOAD:-0}
CPU_GW=${CPU_GW:-1}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/only1mcp-uring
LUA=$ROOT/perf/mcp_post.lua

for c in redis-server redis-cli wrk taskset curl; do
  command -v "$c" >/dev/null || die "$c is required (Debian: redis-server, redis-tools, wrk, util-linux, curl)"
done
log "building --release"
(cd "$ROOT" && cargo build --release --quiet --bin only1mcp-uring)

# --- Redis (a free port, a password, no persistence) -------------------------------------------
REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REDIS_PW="perf-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
taskset -c "$CPU_LOAD" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' \
  --appendonly no --daemonize no --requirepass "$REDIS_PW" --dir "$TMP" >"$TMP/redis.log" 2>&1 &
track $!
rcli() { redis-cli -p "$REDIS_PORT" -a "$REDIS_PW" --no-auth-warning "$@"; }
for i in $(seq 1 50); do
  [[ $(rcli PING 2>/dev/null || true) == PONG ]] && break
  ((i < 50)) || die "redis-server did not start: $(tail -5 "$TMP/redis.log")"
  sleep 0.1
done

# --- the demo backend ------------------------------------------------------------------------
taskset -c "$CPU_LOAD" "$BIN" demo-server --http 127.0.0.1:0 >"$TMP/demo.log" 2>&1 &
DEMO_PID=$!
track "$DEMO_PID"
DEMO_URL=$(wait_for_line "$TMP/demo.log" 'demo-server listening on http://' "$DEMO_PID" |
  grep -oE 'http://[^ ]+/mcp')

# gateway MODE: starts the gateway for MODE (off, local, redis); sets GW_PID and GW_URL.
gateway() {
  local mode=$1 cfg=$TMP/gw-$1.toml
  printf '[metrics]\nsocket_enabled = false\n[[servers]]\nid = "demo"\ntransport = "http"\nurl = "%s"\n' \
    "$DEMO_URL" >"$cfg"
  if [[ $mode != off ]]; then
    printf '[rate_limit]\nrequests_per_s = 1000000.0\nburst = 1000000\nstore = "%s"\n' "$mode" >>"$cfg"
    [[ $mode == redis ]] &&
      printf 'redis_url = "redis://:%s@127.0.0.1:%s/0"\n' "$REDIS_PW" "$REDIS_PORT" >>"$cfg"
  fi
  taskset -c "$CPU_GW" "$BIN" start --config "$cfg" --port 0 --cores 1 --driver "$DRIVER" \
    >"$TMP/gw-$mode.log" 2>&1 &
  GW_PID=$!
  track "$GW_PID"
  GW_URL=$(wait_for_line "$TMP/gw-$mode.log" 'only1mcp-uring listening on http://' "$GW_PID" |
    grep -oE 'http://[^ ]+/mcp')
  for i in $(seq 1 100); do
    [[ $(curl -sS --max-time 2 "${GW_URL%/mcp}/health" 2>/dev/null || true) == *'"state":"ready"'* ]] && break
    ((i < 100)) || die "gateway ($mode) not ready"
    sleep 0.1
  done
  taskset -a -p -c "$CPU_GW" "$GW_PID" >/dev/null
}

ROWS=()
for mode in off local redis; do
  gateway "$mode"
  read -r sid ver <<<"$(init_session "$GW_URL")"
  export MCP_SESSION_ID=$sid MCP_PROTOCOL_VERSION=$ver MCP_TOOL=demo__echo MCP_METHOD=tools/call
  MCP_CHECK=1 taskset -c "$CPU_LOAD" wrk -t1 -c 4 -d 1s -s "$LUA" "$GW_URL" >"$TMP/check.txt" 2>&1
  check=$(grep '^RESULT' "$TMP/check.txt")
  [[ $(field bad "$check") == 0 && $(field err_status "$check") == 0 ]] ||
    die "$mode: bad answers during the check: $(cat "$TMP/check.txt")"
  for c in $CONNS; do
    rps=() p50=() p99=() cpu=() rus=() rcalls=()
    for _ in $(seq 1 "$RUNS"); do
      [[ $mode == redis ]] && rcli CONFIG RESETSTAT >/dev/null
      t0=$(cpu_ticks "$GW_PID")
      out=$(timeout $(($(secs_of "$DURATION") + 15)) taskset -c "$CPU_LOAD" \
        wrk -t1 -c "$c" -d "$DURATION" --latency -s "$LUA" "$GW_URL" 2>&1)
      t1=$(cpu_ticks "$GW_PID")
      line=$(grep '^RESULT' <<<"$out")
      n=$(field requests "$line")
      rps+=("$(field rps "$line")") p50+=("$(field p50_us "$line")") p99+=("$(field p99_us "$line")")
      cpu+=("$(us_per_req $((t1 - t0)) "$n")")
      if [[ $mode == redis ]]; then
        stat=$(rcli INFO commandstats | tr -d '\r' | grep '^cmdstat_evalsha:' || true)
        rus+=("$(grep -oE 'usec_per_call=[0-9.]+' <<<"$stat" | cut -d= -f2)")
        rcalls+=("$(awk -v c="$(grep -oE 'calls=[0-9]+' <<<"$stat" | cut -d= -f2)" -v n="$n" 'BEGIN { printf "%.2f", c / n }')")
      fi
    done
    row="| $mode | $c | $(median <<<"${rps[*]}") | $(median <<<"${p50[*]}") | $(median <<<"${p99[*]}") | $(median <<<"${cpu[*]}") |"
    if [[ $mode == redis ]]; then
      row+=" $(median <<<"${rus[*]}") | $(median <<<"${rcalls[*]}") |"
    else
      row+=" – | – |"
    fi
    ROWS+=("$row")
    log "$row"
  done
  grep -q "$REDIS_PW" "$TMP/gw-$mode.log" && die "the gateway log shows the Redis password"
  kill -TERM "$GW_PID"
  wait "$GW_PID" 2>/dev/null || true
done

echo
echo "driver $DRIVER, $RUNS runs of $DURATION per cell (medians), tools/call demo__echo, 1 shard on CPU $CPU_GW"
echo
echo "| store | conns | req/s | p50 µs | p99 µs | gateway CPU µs/req | Redis µs/decision | decisions/request |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
