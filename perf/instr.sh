#!/usr/bin/env bash
# Instructions per proxied `tools/call`, counted by valgrind's callgrind: counts, not time,
# so an A/B of two builds holds on a busy machine. The gateway (release build, one shard,
# epoll: valgrind does not support io_uring) runs under callgrind in front of the demo HTTP
# backend; wrk sends `tools/call demo__echo` on one session, once for SHORT and once for
# LONG; the difference of the two totals over the difference of the two request counts is
# the marginal cost of one call (start-up and session set-up cancel out).
#
#   perf/instr.sh                            # this tree's release build
#   CARGO_TARGET_DIR=/other/target perf/instr.sh   # another build's binary (no rebuild)
#   SHORT=2s LONG=6s perf/instr.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHORT=${SHORT:-2s}
LONG=${LONG:-6s}
OUT=${OUT:-perf/results/instr}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "instr.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "instr.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
if [ -z "${CARGO_TARGET_DIR:-}" ]; then cargo build --release --quiet; fi
BIN=${CARGO_TARGET_DIR:-target}/release/only1mcp-uring
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
"$BIN" demo-server --http 127.0.0.1:0 >"$OUT/demo.out" 2>/dev/null &
PIDS+=($!)
for _ in $(seq 50); do grep -q '127.0.0.1:' "$OUT/demo.out" && break; sleep 0.1; done
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
# One measured run: prints "<instructions> <requests>".
measure() {
  local d=$1 tag=$2
  rm -f "$OUT/cg.$tag"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$tag" "$BIN" start --config "$OUT/gw.toml" \
    --port 0 --cores 1 --driver epoll >"$OUT/gw.$tag.out" 2>"$OUT/gw.$tag.err" &
  local gw=$!
  PIDS+=("$gw")
  for _ in $(seq 300); do grep -q 'http://' "$OUT/gw.$tag.out" 2>/dev/null && break; sleep 0.1; done
  local url
  url=$(grep -o 'http://[0-9.:]*/mcp' "$OUT/gw.$tag.out" | head -1)
  [ -n "$url" ] || { echo "instr.sh: the gateway did not start; see $OUT/gw.$tag.err" >&2; exit 1; }
  for _ in $(seq 100); do curl -s "${url%/mcp}/health" | grep -q '"ready"' && break; sleep 0.2; done
  local h=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
  local sid
  sid=$(curl -s -i -X POST "$url" "${h[@]}" -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"instr","version":"1"}}}' \
    | grep -i '^mcp-session-id' | awk '{print $2}' | tr -d '\r')
  curl -s -X POST "$url" "${h[@]}" -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-11-25' \
    -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
  local reqs
  reqs=$(MCP_SESSION_ID=$sid MCP_PROTOCOL_VERSION=2025-11-25 MCP_TOOL=demo__echo \
    timeout 120 wrk -t1 -c1 -d"$d" -s perf/mcp_post.lua "$url" | grep -o 'RESULT requests=[0-9]*' | cut -d= -f2)
  kill -INT "$gw"; wait "$gw" || true
  local ir
  ir=$(grep -m1 '^summary:' "$OUT/cg.$tag" | awk '{print $2}')
  echo "$ir $reqs"
}
read -r ir1 n1 < <(measure "$SHORT" short)
read -r ir2 n2 < <(measure "$LONG" long)
python3 - "$ir1" "$n1" "$ir2" "$n2" "$BIN" <<'PY'
import sys
ir1, n1, ir2, n2 = map(int, sys.argv[1:5])
print(f"binary: {sys.argv[5]}")
print(f"runs: {n1} calls / {ir1:,} instructions, {n2} calls / {ir2:,} instructions")
print(f"instructions per proxied call (marginal): {(ir2 - ir1) / (n2 - n1):,.0f}")
PY
