#!/usr/bin/env bash
# Gateway CPU per `tools/call` answered from the response cache vs sent to the backend, one
# run, side by side (the issue-8 target: a cache hit at least 10x cheaper than a backend round
# trip). The demo HTTP backend and wrk share CPU 0; the gateway (release, --cores 1) has CPU 1.
# Three cells, each `RUNS` times, interleaved:
#   off    `[cache]` off: every call goes to the backend (gateway + backend CPU per call);
#   hit    `[cache] enabled, tools = true`: the same call of the read-only idempotent `echo`,
#          answered from the cache after the first;
# and the backend's own CPU per call in `off` (what a round trip also costs).
#   RUNS=3 DURATION=5s CONNS=16 perf/cache_cpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-16}
OUT=${OUT:-perf/results/cache_cpu}
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "cache_cpu.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
BIN=$PWD/target/release/only1mcp-uring
TICK=$(getconf CLK_TCK)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

taskset -c 0 "$BIN" demo-server --http 127.0.0.1:0 >"$OUT/demo.out" 2>/dev/null &
DEMO=$!
PIDS+=("$DEMO")
for _ in $(seq 50); do grep -q '127.0.0.1:' "$OUT/demo.out" && break; sleep 0.1; done
ADDR=$(grep -o '127.0.0.1:[0-9]*' "$OUT/demo.out" | head -1)

start_gw() { # name cache-section
    cat >"$OUT/$1.toml" <<T
[server]
host = "127.0.0.1"
[metrics]
socket_enabled = false
$2
[[servers]]
id = "demo"
transport = "http"
url = "http://$ADDR/mcp"
T
    taskset -c 1 "$BIN" start --config "$OUT/$1.toml" --port 0 --cores 1 >"$OUT/$1.out" 2>"$OUT/$1.err" &
    local pid=$!
    for _ in $(seq 100); do grep -q 'http://' "$OUT/$1.out" 2>/dev/null && break; sleep 0.1; done
    taskset -a -p -c 1 "$pid" >/dev/null
    local url
    url=$(grep -o 'http://[0-9.:]*/mcp' "$OUT/$1.out" | head -1)
    for _ in $(seq 100); do curl -s "${url%/mcp}/health" | grep -q '"ready"' && break; sleep 0.1; done
    echo "$pid $url"
}
session() { # url -> session id
    local h=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
    local sid
    sid=$(curl -s -i -X POST "$1" "${h[@]}" -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"cache_cpu","version":"1"}}}' \
        | grep -i '^mcp-session-id' | awk '{print $2}' | tr -d '\r')
    curl -s -X POST "$1" "${h[@]}" -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-11-25' \
        -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
    echo "$sid"
}
# start_gw runs in a subshell (process substitution): its PIDs are recorded here.
read -r GW_OFF URL_OFF < <(start_gw off "")
PIDS+=("$GW_OFF")
read -r GW_HIT URL_HIT < <(start_gw hit "[cache]
enabled = true
tools = true")
PIDS+=("$GW_HIT")
SID_OFF=$(session "$URL_OFF")
SID_HIT=$(session "$URL_HIT")

run() { # cell pid url sid -> "rps gw_us backend_us"
    local b0 g0 b1 g1 out reqs
    b0=$(cpu_ticks "$DEMO"); g0=$(cpu_ticks "$2")
    out=$(MCP_SESSION_ID=$4 MCP_PROTOCOL_VERSION=2025-11-25 MCP_TOOL=demo__echo \
        timeout 60 taskset -c 0 wrk -t1 -c"$CONNS" -d"$DURATION" -s perf/mcp_post.lua "$3" | grep RESULT)
    b1=$(cpu_ticks "$DEMO"); g1=$(cpu_ticks "$2")
    reqs=$(echo "$out" | grep -o 'requests=[0-9]*' | cut -d= -f2)
    echo "$out" >>"$OUT/$1.wrk"
    awk -v r="$reqs" -v g=$((g1 - g0)) -v b=$((b1 - b0)) -v t="$TICK" -v o="$out" 'BEGIN {
        match(o, /rps=[0-9.]+/); rps = substr(o, RSTART + 4, RLENGTH - 4);
        printf "%s %.1f %.1f\n", rps, g / t * 1e6 / r, b / t * 1e6 / r }'
}
: >"$OUT/off.wrk"; : >"$OUT/hit.wrk"
for _ in $(seq "$RUNS"); do
    echo "off $(run off "$GW_OFF" "$URL_OFF" "$SID_OFF")" >>"$OUT/cells.txt.$$"
    echo "hit $(run hit "$GW_HIT" "$URL_HIT" "$SID_HIT")" >>"$OUT/cells.txt.$$"
done
python3 - "$OUT/cells.txt.$$" "$CONNS" "$DURATION" "$RUNS" <<'PY' | tee "$OUT/table.md"
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    cell, rps, gw, be = line.split()
    rows.setdefault(cell, []).append((float(rps), float(gw), float(be)))
med = {c: [statistics.median(x[i] for x in v) for i in range(3)] for c, v in rows.items()}
print(f"`tools/call demo__echo`, wrk -c {sys.argv[2]}, {sys.argv[3]} x {sys.argv[4]} runs (medians)\n")
print("| cell | req/s | gateway CPU µs/call | backend CPU µs/call |\n|---|---:|---:|---:|")
for c in ("off", "hit"):
    r, g, b = med[c]
    print(f"| {c} | {r:,.0f} | {g:.1f} | {b:.1f} |")
off, hit = med["off"], med["hit"]
print(f"\nround trip (gateway + backend CPU, cache off) / cache hit (gateway CPU): "
      f"{(off[1] + off[2]) / hit[1]:.1f}x; gateway CPU alone: {off[1] / hit[1]:.1f}x")
PY
rm -f "$OUT/cells.txt.$$"
