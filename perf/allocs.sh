#!/usr/bin/env bash
# Heap allocations per proxied `tools/call`, counted by valgrind's DHAT (instructions and
# allocations, not time: stable on a noisy machine). The gateway (release build, one shard,
# epoll: valgrind does not support io_uring) runs under DHAT in front of the demo HTTP
# backend; wrk sends `tools/call demo__echo` on one session for DURATION; the table shows
# allocations per request in total and by the gateway function that made them.
#
#   perf/allocs.sh                 # DURATION=5s
#   DURATION=10s perf/allocs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
OUT=${OUT:-perf/results/allocs}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "allocs.sh: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "allocs.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
BIN=target/release/only1mcp-uring
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
valgrind --tool=dhat --dhat-out-file="$OUT/dhat.json" "$BIN" start --config "$OUT/gw.toml" \
  --port 0 --cores 1 --driver epoll >"$OUT/gw.out" 2>"$OUT/gw.err" &
GW=$!
PIDS+=("$GW")
for _ in $(seq 300); do grep -q 'http://' "$OUT/gw.out" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*/mcp' "$OUT/gw.out" | head -1)
[ -n "$URL" ] || { echo "allocs.sh: the gateway did not start; see $OUT/gw.err" >&2; exit 1; }
for _ in $(seq 100); do curl -s "${URL%/mcp}/health" | grep -q '"ready"' && break; sleep 0.2; done
H=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')
SID=$(curl -s -i -X POST "$URL" "${H[@]}" -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"allocs","version":"1"}}}' \
  | grep -i '^mcp-session-id' | awk '{print $2}' | tr -d '\r')
curl -s -X POST "$URL" "${H[@]}" -H "mcp-session-id: $SID" -H 'mcp-protocol-version: 2025-11-25' \
  -d '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
export MCP_SESSION_ID=$SID MCP_PROTOCOL_VERSION=2025-11-25 MCP_TOOL=demo__echo
timeout 90 wrk -t1 -c1 -d"$DURATION" -s perf/mcp_post.lua "$URL" | tee "$OUT/wrk.txt" | grep RESULT
kill -INT "$GW"; wait "$GW" || true
python3 - "$OUT/dhat.json" "$OUT/wrk.txt" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1])); ftbl, pps = d["ftbl"], d["pps"]
reqs = 0
for line in open(sys.argv[2]):
    m = re.search(r"RESULT requests=(\d+)", line)
    if m: reqs = int(m.group(1))
n = reqs
agg = {}
for pp in pps:
    fr = [ftbl[i] for i in pp["fs"]]
    ours = [f.split(" (")[0].split(": ", 1)[-1] for f in fr if "only1mcp" in f]
    key = ours[0][:90] if ours else "(outside the gateway)"
    a = agg.setdefault(key, [0, 0]); a[0] += pp["tbk"]; a[1] += pp["tb"]
tot = sum(v[0] for v in agg.values()); byt = sum(v[1] for v in agg.values())
print(f"\nproxied calls: {n}; allocations per call: {tot / n:.1f} ({byt / n / 1024:.1f} KiB), start-up and session set-up included")
print("| allocations per call | KiB per call | where (first gateway frame) |\n|---:|---:|---|")
for k, v in sorted(agg.items(), key=lambda x: -x[1][0])[:15]:
    if v[0] / n >= 0.5:
        print(f"| {v[0] / n:.1f} | {v[1] / n / 1024:.2f} | `{k}` |")
PY
