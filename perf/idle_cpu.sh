#!/usr/bin/env bash
# CPU an idle gateway uses: the README's demo config (two stdio demo backends), no client, for
# DURATION seconds, read from /proc counters of every gateway thread (the backends are not
# counted). Nanoseconds come from /proc/PID/task/*/schedstat (exact, unlike the 10 ms ticks of
# /proc/PID/stat); wake-ups are the threads' context switches. One row per variant.
#
#   perf/idle_cpu.sh                             # 60 s per variant, both drivers, io_uring flags
#   DURATION=10 VARIANTS="epoll uring" perf/idle_cpu.sh
#
# Env:  DURATION=60   seconds measured per variant
#       CORES=2       gateway --cores
#       VARIANTS="epoll uring uring-noflags"   which rows (see variant_lines)
#       GW_BIN=path   the gateway binary (default: this tree's release build, built if missing)
#       OUT=perf/results/idle_cpu.md
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LOG_TAG=idle_cpu
# shellcheck source=perf/lib.sh
source perf/lib.sh

DURATION=${DURATION:-60}
CORES=${CORES:-2}
VARIANTS=${VARIANTS:-"epoll uring uring-noflags"}
OUT=${OUT:-perf/results/idle_cpu.md}
BIN=${GW_BIN:-$ROOT/target/release/only1mcp-uring}
if [[ -z ${GW_BIN:-} ]]; then cargo build --release --quiet; fi
[[ -x $BIN ]] || die "no gateway binary at $BIN"

# variant_lines NAME: "DRIVER|[server] lines" of one row.
variant_lines() {
  case $1 in
    epoll) echo "epoll|" ;;
    uring) echo "uring|" ;; # the default uring_setup
    uring-noflags) echo "uring|uring_setup = []" ;;
    *) die "unknown variant $1" ;;
  esac
}

# thread_ns PID: summed on-CPU nanoseconds of every thread of PID.
thread_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
# thread_switches PID: summed voluntary + involuntary context switches of every thread.
thread_switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { s += $2 } END { print s + 0 }'
}

mkdir -p "$(dirname "$OUT")"
{
  echo "### Idle gateway CPU ($DURATION s, config/demo.toml, --cores $CORES)"
  echo
  echo "| variant | driver | CPU ms per minute | wake-ups per second | threads |"
  echo "|---|---|---:|---:|---:|"
} >"$OUT"

for v in $VARIANTS; do
  spec=$(variant_lines "$v")
  driver=${spec%%|*}
  lines=${spec#*|}
  cfg=$TMP/$v.toml
  # The demo config with this variant's [server] lines put first in its [server] table.
  awk -v extra="$lines" '{ print } /^\[server\]$/ && !done { if (extra != "") print extra; done = 1 }' \
    config/demo.toml >"$cfg"
  printf '\n[metrics]\nsocket = "%s"\n' "$TMP/$v.sock" >>"$cfg"
  "$BIN" start --config "$cfg" --port 0 --cores "$CORES" --driver "$driver" >"$TMP/$v.out" 2>&1 &
  pid=$!
  track "$pid"
  wait_for_line "$TMP/$v.out" 'http://127' "$pid" 20 >/dev/null
  sleep 2 # start-up and the first health checks are not idle time
  ns0=$(thread_ns "$pid")
  sw0=$(thread_switches "$pid")
  sleep "$DURATION"
  ns1=$(thread_ns "$pid")
  sw1=$(thread_switches "$pid")
  threads=$(ls /proc/"$pid"/task | wc -l)
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  awk -v v="$v" -v d="$driver" -v ns=$((ns1 - ns0)) -v sw=$((sw1 - sw0)) -v t="$DURATION" -v th="$threads" \
    'BEGIN { printf "| %s | %s | %.1f | %.1f | %d |\n", v, d, ns / 1e6 * 60 / t, sw / t, th }' >>"$OUT"
  log "$v done"
done
cat "$OUT"
