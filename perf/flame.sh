#!/usr/bin/env bash
# A CPU profile of the gateway proxying `tools/call echo`, as a flame graph and its top frames.
# Pinned like perf/compare.sh: the demo HTTP backend and wrk on CPU 0, the gateway (--cores 1)
# alone on CPU 1. `perf record -e cpu-clock` (a software clock: this KVM guest has no PMU) with
# DWARF call graphs, so the release build needs no frame-pointer rebuild.
#
#   perf/flame.sh                                  # this tree's release build, -c 16
#   GW_BIN=/path/to/other/build NAME=before CONNS=1 perf/flame.sh
#
# Env:  CONNS=16        wrk connections
#       SECONDS_REC=10  seconds recorded (after 2 s of warm-up)
#       GW_BIN=path     the gateway binary (default: this tree's release build, built if missing)
#       GW_SERVER=''    extra [server] lines for the gateway
#       NAME=gateway    output names: OUT_DIR/NAME-cCONNS.{svg,folded,top.txt}
#       OUT_DIR=perf/results/flame
# Needs: perf (linux-perf), wrk, inferno (cargo install --root target/perf-tools inferno).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LOG_TAG=flame
# shellcheck source=perf/lib.sh
source perf/lib.sh

CONNS=${CONNS:-16}
SECONDS_REC=${SECONDS_REC:-10}
NAME=${NAME:-gateway}
OUT_DIR=${OUT_DIR:-perf/results/flame}
BIN=${GW_BIN:-$ROOT/target/release/only1mcp-uring}
export PATH=$ROOT/target/perf-tools/bin:$PATH
need_cmd wrk wrk
command -v perf >/dev/null || die "perf is needed (apt-get install linux-perf)"
command -v inferno-flamegraph >/dev/null ||
  die "inferno is needed: cargo install --locked --root target/perf-tools inferno"
if [[ -z ${GW_BIN:-} ]]; then cargo build --release --quiet; fi
mkdir -p "$OUT_DIR"
base=$OUT_DIR/$NAME-c$CONNS

taskset -c 0 "$BIN" demo-server --http 127.0.0.1:0 >"$TMP/demo.out" 2>&1 &
track $!
be=$(wait_for_line "$TMP/demo.out" '127\.0\.0\.1:[0-9]+' $! 10 | grep -oE '127\.0\.0\.1:[0-9]+' | head -1)
cat >"$TMP/gw.toml" <<EOF
[server]
host = "127.0.0.1"
${GW_SERVER:-}

[metrics]
socket = "$TMP/gw.sock"

[[servers]]
id = "demo"
transport = "http"
url = "http://$be/mcp"
EOF
taskset -c 1 "$BIN" start --config "$TMP/gw.toml" --port 0 --cores 1 --driver "${DRIVER:-uring}" >"$TMP/gw.out" 2>&1 &
gw=$!
track "$gw"
url=$(wait_for_line "$TMP/gw.out" 'http://127' "$gw" 20 | grep -oE 'http://127\.0\.0\.1:[0-9]+' | head -1)/mcp
sleep 1
read -r sid ver < <(init_session "$url")
MCP_SESSION_ID=$sid MCP_PROTOCOL_VERSION=$ver MCP_TOOL=demo__echo \
  taskset -c 0 wrk -t1 -c "$CONNS" -d "$((SECONDS_REC + 4))s" -s perf/mcp_post.lua "$url" >"$TMP/wrk.out" 2>&1 &
JOB_PID=$!
sleep 2
perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$gw" -o "$TMP/perf.data" -- sleep "$SECONDS_REC" 2>/dev/null
wait "$JOB_PID" || true
JOB_PID=""
perf script -i "$TMP/perf.data" 2>/dev/null | inferno-collapse-perf --kernel >"$base.folded"
inferno-flamegraph --title "only1mcp-uring $NAME, tools/call, wrk -c $CONNS" <"$base.folded" >"$base.svg"
# Top frames by self time, and the kernel / user split, from the folded stacks.
awk '{ n = $NF; $NF = ""; k = split($0, f, ";"); leaf = f[k]; sub(/ +$/, "", leaf);
       self[leaf] += n; total += n; if (leaf ~ /_\[k\]$/) kern += n }
     END { printf "weight %.0f, kernel %.1f%% (frames marked _[k]; the vDSO clock is one)\n", total, 100 * kern / total }' \
  "$base.folded" >"$base.top.txt"
awk '{ n = $NF; $NF = ""; k = split($0, f, ";"); leaf = f[k]; sub(/ +$/, "", leaf);
       self[leaf] += n; total += n }
     END { for (s in self) printf "%6.2f%%  %s\n", 100 * self[s] / total, s }' "$base.folded" |
  sort -rn | awk 'NR <= 40' >>"$base.top.txt"
grep -E 'Requests/sec|RESULT' "$TMP/wrk.out" | head -2 >>"$base.top.txt" || true
log "wrote $base.svg, $base.folded, $base.top.txt"
cat "$base.top.txt"
