#!/usr/bin/env bash
# What OpenTelemetry tracing costs per request: the same load with tracing off (no
# [telemetry]), on at 100 % sampling, and on at 1 %, through the gateway to the demo backend,
# with spans posted to a real OTLP/HTTP receiver (tests/otel/otlp_receiver.py, which decodes
# every batch with the opentelemetry-proto package).
#
# Usage: perf/trace_cost.sh        (DURATION=5s, CONNS="1 16", DRIVER=uring, RUNS=3,
#                                   MODES="off 100 1": tracing off, or the sampling % on;
#                                   a mode may repeat, e.g. MODES="off 1 off 1" to see drift)
#
# For each mode and concurrency: wrk -t1 -c N (perf/mcp_post.lua, tools/call demo__echo), the
# median over RUNS of req/s, p50 and p99, and the gateway's CPU per request (utime + stime of
# the whole process from /proc: the shard and the o1m-otlp exporter thread, which encodes and
# posts the spans), and the spans exported and dropped during the runs (/metrics). No client
# sends a traceparent: every request starts a trace, sampled by ratio.
# The gateway runs alone on CPU_GW (1) with one shard; wrk, the demo backend and the receiver
# share CPU_LOAD (0). Needs wrk, taskset, curl and the test venv (target/test-env, made by
# tests/run-all.sh). Every process is killed and reaped at exit (perf/lib.sh).
set -euo pipefail
LOG_TAG=trace_cost
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"

DURATION=${DURATION:-5s}
CONNS=${CONNS:-"1 16"}
DRIVER=${DRIVER:-uring}
RUNS=${RUNS:-3}
MODES=${MODES:-"off 100 1"}
CPU_LOAD=${CPU_LOAD:-0}
CPU_GW=${CPU_GW:-1}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/only1mcp-uring
LUA=$ROOT/perf/mcp_post.lua
PY=$ROOT/target/test-env/venv/bin/python

for c in wrk taskset curl; do
  command -v "$c" >/dev/null || die "$c is required (Debian: wrk, util-linux, curl)"
done
[[ -x $PY ]] && "$PY" -c 'import opentelemetry.proto' 2>/dev/null ||
  die "$PY with opentelemetry-proto is required: run bash tests/run-all.sh once"
log "building --release"
(cd "$ROOT" && cargo build --release --quiet --bin only1mcp-uring)

# --- the OTLP receiver and the demo backend ----------------------------------------------------
taskset -c "$CPU_LOAD" "$PY" "$ROOT/tests/otel/otlp_receiver.py" >"$TMP/otlp.log" 2>&1 &
OTLP_PID=$!
track "$OTLP_PID"
OTLP_PORT=$(wait_for_line "$TMP/otlp.log" 'listening on ' "$OTLP_PID" | grep -oE '[0-9]+$')
taskset -c "$CPU_LOAD" "$BIN" demo-server --http 127.0.0.1:0 >"$TMP/demo.log" 2>&1 &
DEMO_PID=$!
track "$DEMO_PID"
DEMO_URL=$(wait_for_line "$TMP/demo.log" 'demo-server listening on http://' "$DEMO_PID" |
  grep -oE 'http://[^ ]+/mcp')

# gateway MODE: starts the gateway for MODE (off, 100, 1: the sampling %); sets GW_PID, GW_URL.
gateway() {
  local mode=$1 cfg=$TMP/gw-$1.toml
  printf '[metrics]\nsocket_enabled = false\n[[servers]]\nid = "demo"\ntransport = "http"\nurl = "%s"\n' \
    "$DEMO_URL" >"$cfg"
  if [[ $mode != off ]]; then
    printf '[telemetry]\notlp_endpoint = "http://127.0.0.1:%s"\nsample_ratio = %s\n' \
      "$OTLP_PORT" "$(awk -v p="$mode" 'BEGIN { print p / 100 }')" >>"$cfg"
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

# metric NAME_WITH_LABELS: its value on the running gateway's /metrics (0 when absent).
metric() {
  curl -sS --max-time 2 "${GW_URL%/mcp}/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}

ROWS=()
for mode in $MODES; do
  gateway "$mode"
  read -r sid ver <<<"$(init_session "$GW_URL")"
  export MCP_SESSION_ID=$sid MCP_PROTOCOL_VERSION=$ver MCP_TOOL=demo__echo MCP_METHOD=tools/call
  MCP_CHECK=1 taskset -c "$CPU_LOAD" wrk -t1 -c 4 -d 1s -s "$LUA" "$GW_URL" >"$TMP/check.txt" 2>&1
  check=$(grep '^RESULT' "$TMP/check.txt")
  [[ $(field bad "$check") == 0 && $(field err_status "$check") == 0 ]] ||
    die "$mode: bad answers during the check: $(cat "$TMP/check.txt")"
  for c in $CONNS; do
    rps=() p50=() p99=() cpu=()
    sleep 1.5 # the check's spans are out of the queue
    e0=$(metric only1mcp_trace_spans_exported_total)
    d0=$(($(metric 'only1mcp_trace_spans_dropped_total{reason="queue_full"}') + $(metric 'only1mcp_trace_spans_dropped_total{reason="export_failed"}')))
    total=0
    for _ in $(seq 1 "$RUNS"); do
      t0=$(cpu_ticks "$GW_PID")
      out=$(timeout $(($(secs_of "$DURATION") + 15)) taskset -c "$CPU_LOAD" \
        wrk -t1 -c "$c" -d "$DURATION" --latency -s "$LUA" "$GW_URL" 2>&1)
      # The exporter's last batch of the run (it waits up to 1 s) is part of its cost.
      sleep 1.2
      t1=$(cpu_ticks "$GW_PID")
      line=$(grep '^RESULT' <<<"$out")
      n=$(field requests "$line")
      total=$((total + n))
      rps+=("$(field rps "$line")") p50+=("$(field p50_us "$line")") p99+=("$(field p99_us "$line")")
      cpu+=("$(us_per_req $((t1 - t0)) "$n")")
    done
    e1=$(metric only1mcp_trace_spans_exported_total)
    d1=$(($(metric 'only1mcp_trace_spans_dropped_total{reason="queue_full"}') + $(metric 'only1mcp_trace_spans_dropped_total{reason="export_failed"}')))
    spans="–"
    [[ $mode != off ]] && spans="$(awk -v e=$((e1 - e0)) -v n="$total" 'BEGIN { printf "%.3f", e / n }') / $((d1 - d0))"
    label=$([[ $mode == off ]] && echo off || echo "on, ${mode} %")
    row="| $label | $c | $(median <<<"${rps[*]}") | $(median <<<"${p50[*]}") | $(median <<<"${p99[*]}") | $(median <<<"${cpu[*]}") | $spans |"
    ROWS+=("$row")
    log "$row"
  done
  kill -TERM "$GW_PID"
  wait "$GW_PID" 2>/dev/null || true
done

echo
echo "driver $DRIVER, $RUNS runs of $DURATION per cell (medians), tools/call demo__echo, 1 shard on CPU $CPU_GW"
echo
echo "| tracing | conns | req/s | p50 µs | p99 µs | gateway CPU µs/req | spans exported per request / dropped |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
