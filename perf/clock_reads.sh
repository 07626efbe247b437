#!/usr/bin/env bash
# Clock reads per proxied `tools/call` on the shard threads: a small LD_PRELOAD shim
# (perf/shim/clock_count.c) counts libc clock_gettime calls from threads named
# "o1m-shard-*" (Instant::now, SystemTime::now and the runtime's timer driver all end
# there; the vDSO behind it is invisible to syscall counters). Two runs of one gateway
# (release build, one shard) in front of the demo HTTP backend: one under wrk for DURATION,
# one idle for the same time; reads per call = (loaded - idle) / calls, so start-up, stop
# and the shard's idle ticks cancel out. Counts, not time: stable on a noisy machine.
#
#   perf/clock_reads.sh                 # DURATION=5s, DRIVER=epoll
#   DRIVER=io_uring CONNS=16 perf/clock_reads.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
DRIVER=${DRIVER:-epoll}
CONNS=${CONNS:-1}
OUT=${OUT:-perf/results/clock_reads}
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "clock_reads.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
command -v gcc >/dev/null || { echo "clock_reads.sh: gcc is needed" >&2; exit 1; }
gcc -O2 -shared -fPIC -o "$OUT/clock_count.so" perf/shim/clock_count.c -ldl
[ -n "${BIN:-}" ] || { cargo build --release --quiet; BIN=target/release/only1mcp-uring; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$BIN" demo-server --http 127.0.0.1:0 >"$OUT/demo.out" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 200); do grep -q '127.0.0.1:' "$OUT/demo.out" && break; sleep 0.1; done
ADDR=$(grep -o '127.0.0.1:[0-9]*' "$OUT/demo.out" | head -1)
cat >"$OUT/gw.toml" <<T
[server]
host = "127.0.0.1"
[metrics]
socket_enabled = false
[[servers]]
id = "demo"
transport = "http"
url = "http://$ADDR/mcp"
T
H=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
# One gateway run: set up a session, then wrk (load) or sleep (idle) for DURATION.
# Prints "<shard clock reads> <calls>".
run() {
  local mode=$1 count="$OUT/count.$1"
  rm -f "$count"
  CLOCK_COUNT_OUT="$count" LD_PRELOAD="$PWD/$OUT/clock_count.so" "$BIN" start --config "$OUT/gw.toml" \
    --port 0 --cores 1 --driver "$DRIVER" >"$OUT/gw.$mode.out" 2>"$OUT/gw.$mode.err" &
  local gw=$!
  PIDS+=("$gw")
  for _ in $(seq 300); do grep -q 'http://' "$OUT/gw.$mode.out" 2>/dev/null && break; sleep 0.1; done
  local url
  url=$(grep -o 'http://[0-9.:]*/mcp' "$OUT/gw.$mode.out" | head -1)
  [ -n "$url" ] || { echo "clock_reads.sh: the gateway did not start; see $OUT/gw.$mode.err" >&2; exit 1; }
  for _ in $(seq 100); do curl -s "${url%/mcp}/health" | grep -q '"ready"' && break; sleep 0.2; done
  local sid
  sid=$(curl -s -i -X POST "$url" "${H[@]}" -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"clock","version":"1"}}}' \
    | grep -i '^mcp-session-id' | awk '{print $2}' | tr -d '\r')
  curl -s -X POST "$url" "${H[@]}" -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-11-25' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
  local calls=0
  if [ "$mode" = load ]; then
    MCP_SESSION_ID=$sid MCP_PROTOCOL_VERSION=2025-11-25 MCP_TOOL=demo__echo \
      timeout 90 wrk -t1 -c"$CONNS" -d"$DURATION" -s perf/mcp_post.lua "$url" >"$OUT/wrk.txt"
    calls=$(grep -o 'RESULT requests=[0-9]*' "$OUT/wrk.txt" | cut -d= -f2)
  else
    sleep "${DURATION%s}"
  fi
  kill -INT "$gw"; wait "$gw" || true
  for _ in $(seq 50); do [ -s "$count" ] && break; sleep 0.1; done
  echo "$(cat "$count") $calls"
}
read -r idle _ < <(run idle)
read -r loaded calls < <(run load)
python3 - "$idle" "$loaded" "$calls" "$DRIVER" "$CONNS" <<'PY'
import sys
idle, loaded, calls, driver, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
print(f"driver {driver}, {conns} connection(s): {calls} calls; shard clock reads loaded {loaded}, idle {idle}")
print(f"clock reads per proxied call: {(loaded - idle) / max(calls, 1):.2f}")
PY
