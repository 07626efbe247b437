#!/usr/bin/env bash
# Load test: the demo MCP backend called directly vs through the gateway, side by side in one run.
#
# Usage:  perf/load.sh                      (from anywhere; see perf/README.md)
# Env:    DURATION=10s   length of each measured wrk run (wrk -d syntax: 5s, 1m, ...)
#         DRIVER=uring   gateway --driver (uring | epoll | auto)
#         CONNS="1 16 64" concurrency levels (wrk -c)
#         RUNS=1         repetitions of every cell; the table shows the median of each column
#         WARMUP=1s      unmeasured wrk run per target before the first measured run
#         CPU_LOAD=0     CPU for wrk and the demo backend (taskset)
#         CPU_GW=1       CPU for the gateway (taskset)
#         MAX_NOISE=15   a run during which other processes kept the test's CPUs busier than
#                        this (%) is discarded and retried ...
#         MAX_TRIES=3    ... at most this many times per cell and run (then kept, and flagged)
#         OUT=perf/results/latest.md   where the markdown table is written
#         AUTH=off       gateway auth: off | jwt (HS256 bearer token, verified per request and
#                        cached per shard) | api_key (bearer key, SHA-256 on a cache miss);
#                        the gateway target then sends the credential on every request
#
# Writes the table to stdout and $OUT, raw wrk output to ${OUT%.md}.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10s}
DRIVER=${DRIVER:-uring}
CONNS=${CONNS:-"1 16 64"}
RUNS=${RUNS:-1}
WARMUP=${WARMUP:-1s}
CPU_LOAD=${CPU_LOAD:-0}
CPU_GW=${CPU_GW:-1}
OUT=${OUT:-perf/results/latest.md}
AUTH=${AUTH:-off}
MAX_NOISE=${MAX_NOISE:-15}
MAX_TRIES=${MAX_TRIES:-3}
RAW=${OUT%.md}.log
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/only1mcp-uring
LUA=$ROOT/perf/mcp_post.lua

LOG_TAG=load.sh
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh" # log, die, the exit trap, /proc accounting, MCP session set-up

[[ $(secs_of "$DURATION") =~ ^[0-9]+$ ]] || die "DURATION=$DURATION: use wrk syntax like 10s or 1m"
[[ $(secs_of "$WARMUP") =~ ^[0-9]+$ ]] || die "WARMUP=$WARMUP: use wrk syntax like 1s"

# --- tools ---------------------------------------------------------------------------------
command -v curl >/dev/null || die "curl is required"
command -v taskset >/dev/null || die "taskset (util-linux) is required"
need_cmd wrk wrk

NCPU=$(nproc)
if ((NCPU < 2)); then
  log "only $NCPU CPU online: wrk, backend and gateway share it (no useful pinning)"
  CPU_LOAD=0
  CPU_GW=0
fi

log "building --release"
cargo build --release --quiet --bin only1mcp-uring

# --- start the backend and the gateway ---------------------------------------------------------
taskset -c "$CPU_LOAD" "$BIN" demo-server --http 127.0.0.1:0 >"$TMP/demo.log" 2>&1 &
DEMO_PID=$!
PIDS+=("$DEMO_PID")
DIRECT_URL=$(wait_for_line "$TMP/demo.log" 'demo-server listening on http://' "$DEMO_PID" |
  grep -oE 'http://[^ ]+/mcp')
log "demo backend pid $DEMO_PID at $DIRECT_URL (CPU $CPU_LOAD)"

cat >"$TMP/gateway.toml" <<EOF
[[servers]]
id = "demo"
transport = "http"
url = "$DIRECT_URL"
EOF

# b64url: base64url without padding (JWT segments).
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

GW_AUTH=""
case $AUTH in
  off) ;;
  jwt)
    O1M_PERF_JWT_SECRET="perf-secret-$(openssl rand -hex 24)"
    export O1M_PERF_JWT_SECRET
    cat >>"$TMP/gateway.toml" <<EOF
[auth]
mode = "jwt"
resource = "http://perf.invalid/mcp"
authorization_servers = ["http://perf.invalid/idp"]
[auth.jwt]
algorithms = ["HS256"]
issuer = "perf-issuer"
secret_env = "O1M_PERF_JWT_SECRET"
EOF
    jwt_head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
    jwt_body=$(printf '{"sub":"perf","iss":"perf-issuer","aud":"http://perf.invalid/mcp","exp":%d}' \
      $(($(date +%s) + 7200)) | b64url)
    jwt_sig=$(printf '%s.%s' "$jwt_head" "$jwt_body" |
      openssl dgst -sha256 -hmac "$O1M_PERF_JWT_SECRET" -binary | b64url)
    GW_AUTH="Bearer $jwt_head.$jwt_body.$jwt_sig"
    ;;
  api_key)
    perf_key="perf-key-$(openssl rand -hex 16)"
    cat >>"$TMP/gateway.toml" <<EOF
[auth]
mode = "api_key"
[[auth.api_keys]]
name = "perf"
sha256 = "$(printf %s "$perf_key" | sha256sum | cut -d' ' -f1)"
EOF
    GW_AUTH="Bearer $perf_key"
    ;;
  *) die "AUTH must be off, jwt or api_key (got $AUTH)" ;;
esac

taskset -c "$CPU_GW" "$BIN" start --config "$TMP/gateway.toml" --port 0 --cores 1 \
  --driver "$DRIVER" >"$TMP/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
GW_LINE=$(wait_for_line "$TMP/gateway.log" 'only1mcp-uring listening on http://' "$GW_PID")
GW_URL=$(grep -oE 'http://[^ ]+/mcp' <<<"$GW_LINE")
HEALTH_URL=${GW_URL%/mcp}/health
for i in $(seq 1 100); do
  health=$(curl -sS --max-time 2 "$HEALTH_URL" 2>/dev/null || true)
  [[ $health == *'"status":"ok"'* && $health == *'"state":"ready"'* ]] && break
  kill -0 "$GW_PID" 2>/dev/null || {
    cat "$TMP/gateway.log" >&2
    die "gateway exited"
  }
  ((i < 100)) || die "gateway not healthy after 10 s: $health"
  sleep 0.1
done
# The shard thread pins itself to a CPU it picks by index, which can ignore the taskset mask we
# started it with; put every thread of the gateway back on CPU_GW and check it stuck.
taskset -a -p -c "$CPU_GW" "$GW_PID" >/dev/null
for t in /proc/"$GW_PID"/task/*; do
  allowed=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "$t/status")
  [[ $allowed == "$CPU_GW" ]] || die "gateway thread $(<"$t/comm") is allowed on CPUs $allowed, not $CPU_GW"
done
GW_DRIVER=$(grep -oE 'driver: [a-z_]+' <<<"$GW_LINE" | cut -d' ' -f2 || true)
log "gateway pid $GW_PID at $GW_URL (driver ${GW_DRIVER:-?}, CPU $CPU_GW)"

sess=$(init_session "$DIRECT_URL")
read -r DIRECT_SID DIRECT_VER <<<"$sess"
sess=$(init_session "$GW_URL")
read -r GW_SID GW_VER <<<"$sess"
log "sessions: direct $DIRECT_SID ($DIRECT_VER), gateway $GW_SID ($GW_VER)"

# --- correctness, once, before any load ---------------------------------------------------------
check=$(mcp_post "$GW_URL" "$GW_SID" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"demo__echo","arguments":{"message":"hi"}}}' "$TMP/check.hdr") ||
  die "tools/call through the gateway failed"
[[ $check == *'"result"'* && $check == *'"text":"hi"'* ]] ||
  die "tools/call demo__echo through the gateway did not echo: $(head -c 500 <<<"$check")"
log "correctness: gateway echoed \"hi\""

IDLE_RSS_KB=$(status_kb "$GW_PID" VmRSS)

# --- load ---------------------------------------------------------------------------------------
# run_wrk TARGET CONNS DURATION: one wrk run; prints the RESULT line; sets R_* and CPU deltas.
run_wrk() {
  local target=$1 c=$2 dur=$3 url sid ver tool out limit
  local auth=""
  if [[ $target == direct ]]; then
    url=$DIRECT_URL sid=$DIRECT_SID ver=$DIRECT_VER tool=echo
  else
    url=$GW_URL sid=$GW_SID ver=$GW_VER tool=demo__echo auth=$GW_AUTH
  fi
  limit=$(($(secs_of "$dur") + 15))
  local gw0 be0 gw1 be1 l0 l1 g0 g1 wrk0 wrk1
  l0=$(cpu_busy "$CPU_LOAD")
  g0=$(cpu_busy "$CPU_GW")
  wrk0=$(reaped_ticks)
  gw0=$(cpu_ticks "$GW_PID")
  be0=$(cpu_ticks "$DEMO_PID")
  out=$(MCP_SESSION_ID=$sid MCP_PROTOCOL_VERSION=$ver MCP_TOOL=$tool MCP_CHECK=${MCP_CHECK:-0} \
    MCP_AUTHORIZATION=$auth \
    timeout --signal=INT --kill-after=5 "$limit" \
    taskset -c "$CPU_LOAD" wrk -t1 -c "$c" -d "$dur" --latency -s "$LUA" "$url" 2>&1) ||
    die "wrk ($target, -c $c) failed or overran ${limit}s: $out"
  gw1=$(cpu_ticks "$GW_PID")
  be1=$(cpu_ticks "$DEMO_PID")
  l1=$(cpu_busy "$CPU_LOAD")
  g1=$(cpu_busy "$CPU_GW")
  wrk1=$(reaped_ticks)
  printf '### %s -c %s -d %s\n%s\nPROC gateway_cpu_ticks=%s backend_cpu_ticks=%s wrk_cpu_ticks=%s cpu%s_busy_ticks=%s cpu%s_busy_ticks=%s\n\n' \
    "$target" "$c" "$dur" "$out" "$((gw1 - gw0))" "$((be1 - be0))" "$((wrk1 - wrk0))" \
    "$CPU_LOAD" "$((l1 - l0))" "$CPU_GW" "$((g1 - g0))" >>"$RAW"
  R_LINE=$(grep -m1 '^RESULT ' <<<"$out") || die "wrk printed no RESULT line: $out"
  R_FIRST_BAD=$(grep -m1 '^FIRST_BAD ' <<<"$out" || true)
  R_NON2XX=$(grep -m1 'Non-2xx' <<<"$out" || true)
  D_GW=$((gw1 - gw0))
  D_BE=$((be1 - be0))
  # Busy time of the test's CPUs not explained by wrk, the backend and the gateway: other
  # processes (or unattributed kernel work) competing with the test.
  if [[ $CPU_LOAD == "$CPU_GW" ]]; then
    D_NOISE_LOAD=$(((l1 - l0) - (wrk1 - wrk0) - (be1 - be0) - (gw1 - gw0)))
    D_NOISE_GW=$D_NOISE_LOAD
  else
    D_NOISE_LOAD=$(((l1 - l0) - (wrk1 - wrk0) - (be1 - be0)))
    D_NOISE_GW=$(((g1 - g0) - (gw1 - gw0)))
  fi
}

mkdir -p "$(dirname "$OUT")"
: >"$RAW"
declare -A RPS P50 P99 SUT BE ERRS HWM NOISE_L NOISE_G NOISY_KEPT
ANOMALIES=()

LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up: $WARMUP per target at -c 16 (not measured)"
for target in direct gateway; do run_wrk "$target" 16 "$WARMUP"; done

# noisy_pct TARGET: the other load (%) on the CPUs the target's run depends on.
noisy_pct() {
  local d_us l g
  d_us=$(field duration_us "$R_LINE")
  l=$(pct_of_run "$D_NOISE_LOAD" "$d_us")
  g=$(pct_of_run "$D_NOISE_GW" "$d_us")
  if [[ $1 == direct ]] || ((l > g)); then echo "$l"; else echo "$g"; fi
}

DISCARDED=0
for run in $(seq 1 "$RUNS"); do
  for c in $CONNS; do
    # Alternate which target goes first so slow drift on a shared machine hits both equally.
    if ((run % 2)); then order="direct gateway"; else order="gateway direct"; fi
    for target in $order; do
      k="$target,$c"
      for try in $(seq 1 "$MAX_TRIES"); do
        log "run $run/$RUNS: $target -c $c -d $DURATION$( ((try == 1)) || echo " (try $try)")"
        run_wrk "$target" "$c" "$DURATION"
        errs=0
        for e in err_connect err_read err_write err_status err_timeout bad; do
          errs=$((errs + $(field "$e" "$R_LINE")))
        done
        # Errors count whether or not the run is kept: any is a bug to look at.
        ERRS[$k]=$((${ERRS[$k]:-0} + errs))
        if ((errs > 0)); then
          ANOMALIES+=("run $run $target -c $c: ${R_LINE#RESULT } ${R_NON2XX:+| wrk: $R_NON2XX} ${R_FIRST_BAD:+| $R_FIRST_BAD}")
        fi
        noise=$(noisy_pct "$target")
        ((noise > MAX_NOISE)) || break
        if ((try < MAX_TRIES)); then
          log "  other load ${noise}% > MAX_NOISE=${MAX_NOISE}%: discarded, retrying"
          DISCARDED=$((DISCARDED + 1))
          sleep 2
        else
          log "  other load ${noise}% > MAX_NOISE=${MAX_NOISE}% on every try: kept"
          NOISY_KEPT[$k]=$((${NOISY_KEPT[$k]:-0} + 1))
        fi
      done
      n=$(field requests "$R_LINE")
      RPS[$k]+=" $(field rps "$R_LINE")"
      P50[$k]+=" $(field p50_us "$R_LINE")"
      P99[$k]+=" $(field p99_us "$R_LINE")"
      if [[ $target == direct ]]; then
        SUT[$k]+=" $(us_per_req "$D_BE" "$n")"
      else
        SUT[$k]+=" $(us_per_req "$D_GW" "$n")"
        HWM[$k]=$(status_kb "$GW_PID" VmHWM)
      fi
      BE[$k]+=" $(us_per_req "$D_BE" "$n")"
      d_us=$(field duration_us "$R_LINE")
      NOISE_L[$k]+=" $(pct_of_run "$D_NOISE_LOAD" "$d_us")"
      NOISE_G[$k]+=" $(pct_of_run "$D_NOISE_GW" "$d_us")"
    done
  done
done

# A short extra run that reads every reply body (not measured: the check costs wrk CPU).
log "body check: 2s per target at -c 16, every reply must be a JSON-RPC result echoing \"hi\""
CHECKS=()
for target in direct gateway; do
  MCP_CHECK=1 run_wrk "$target" 16 2s
  CHECKS+=("$target: $(field checked "$R_LINE") replies checked, $(field bad "$R_LINE") bad, $(field err_status "$R_LINE") non-2xx")
  if (($(field bad "$R_LINE") + $(field err_status "$R_LINE") > 0)); then
    ANOMALIES+=("body check $target: ${R_LINE#RESULT } ${R_FIRST_BAD:+| $R_FIRST_BAD}")
  fi
done

LOADAVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Whole-process check after load: did anything die?
kill -0 "$GW_PID" 2>/dev/null || ANOMALIES+=("gateway exited during the run")
kill -0 "$DEMO_PID" 2>/dev/null || ANOMALIES+=("demo backend exited during the run")
GW_WARN=$(grep -cE ' (WARN|ERROR) ' "$TMP/gateway.log" || true)
if ((GW_WARN > 0)); then
  ANOMALIES+=("gateway logged $GW_WARN WARN/ERROR lines, first: $(grep -m1 -E ' (WARN|ERROR) ' "$TMP/gateway.log")")
fi

# --- report -------------------------------------------------------------------------------------
{
  echo "| conns | target | req/s | req/s min–max | p50 µs | p99 µs | SUT CPU µs/req | backend CPU µs/req | errors | gateway RSS idle → peak MiB | other load % CPU${CPU_LOAD}/CPU${CPU_GW} |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
  for c in $CONNS; do
    for target in direct gateway; do
      k="$target,$c"
      rss="–"
      if [[ $target == gateway ]]; then rss="$(mib "$IDLE_RSS_KB") → $(mib "${HWM[$k]}")"; fi
      noise="$(median <<<"${NOISE_L[$k]}" | awk '{ printf "%.0f", $1 }')/$(median <<<"${NOISE_G[$k]}" | awk '{ printf "%.0f", $1 }')"
      if [[ -n ${NOISY_KEPT[$k]:-} ]]; then noise+=" (${NOISY_KEPT[$k]} noisy)"; fi
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$c" "$target" \
        "$(median <<<"${RPS[$k]}" | awk '{ printf "%.0f", $1 }')" "$(range <<<"${RPS[$k]}")" \
        "$(median <<<"${P50[$k]}" | awk '{ printf "%.0f", $1 }')" \
        "$(median <<<"${P99[$k]}" | awk '{ printf "%.0f", $1 }')" \
        "$(median <<<"${SUT[$k]}")" "$(median <<<"${BE[$k]}")" "${ERRS[$k]}" "$rss" "$noise"
    done
  done
  echo
  echo "- $(date -u '+%Y-%m-%d %H:%M UTC'); $(lscpu | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }'), $NCPU CPUs, kernel $(uname -r)"
  echo "- gateway: --cores 1 --driver $DRIVER (running: ${GW_DRIVER:-?}), CPU $CPU_GW; wrk -t1 and demo backend on CPU $CPU_LOAD"
  echo "- wrk -t1 -c N -d $DURATION --latency -s perf/mcp_post.lua; $RUNS run(s) per cell, medians shown; warm-up $WARMUP"
  echo "- SUT = system under test: the backend for \`direct\`, the gateway for \`gateway\`; CPU = utime+stime delta / requests"
  echo "- errors = socket errors + non-2xx (wrk) over all runs of the cell"
  echo "- other load % (median) = busy time (/proc/stat: all but idle and iowait) of CPU${CPU_LOAD} minus wrk and backend CPU, and of CPU${CPU_GW} minus gateway CPU, as % of the run: mostly other processes on the test's CPUs; also interrupt and softirq time no process is charged for (a few %, more at -c 1 where every request wakes an idle CPU)"
  echo "- runs discarded and retried because other load exceeded ${MAX_NOISE}%: $DISCARDED (at most $MAX_TRIES tries per cell and run; \"(N noisy)\" = kept after the last try)"
  echo "- load average (1/5/15 min) before the runs: $LOADAVG_BEFORE; after: $LOADAVG_AFTER"
  for ch in "${CHECKS[@]}"; do echo "- body check, $ch"; done
  if ((${#ANOMALIES[@]} > 0)); then
    echo "- ANOMALIES:"
    for a in "${ANOMALIES[@]}"; do echo "  - $a"; done
  else
    echo "- no errors, no non-2xx responses, no WARN/ERROR in the gateway log"
  fi
} | tee "$OUT"
log "table written to $OUT, raw wrk output to $RAW"
