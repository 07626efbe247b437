#!/usr/bin/env bash
# The gateway side by side with its peers, in one run: MCP tools/call through nothing (the demo
# backend directly), nginx, mcp-proxy and only1mcp-uring; tools/list with big catalogues;
# memory per idle session. See perf/README.md ("Comparison") for what every row and column is.
#
# Usage:  perf/compare.sh                       (from anywhere)
# Env:    DURATION=5s     length of each measured wrk run
#         RUNS=3          repetitions of every cell; tables show medians
#         CONNS="1 16 64 256"   wrk -c levels of the tools/call section
#         LIST_CONNS="1 16"     wrk -c levels of the tools/list section
#         SECTIONS="calls list memory"   which sections to run
#         TARGETS="direct nginx mcp-proxy gw1 gw2 gw1-stdio mcp-proxy-stdio gw1-unix nginx-unix"
#                         rows of "calls" (the -unix ones: to a second demo backend on a unix
#                         socket; there is no direct-unix row, wrk speaks TCP only)
#         WARMUP=1s       unmeasured wrk run per target before the first measured run
#         DRIVER=uring    gateway --driver
#         CPU_LOAD=0      CPU of wrk and of the backends
#         CPU_SUT=1       CPU of the system under test (nginx, mcp-proxy, the gateway)
#         MAX_NOISE=15    a run during which other processes kept the test's CPUs busier than
#                         this (%) is discarded and retried ...
#         MAX_TRIES=2     ... at most this many times per cell and run (then kept, flagged)
#         BACKENDS=100 TOOLS=50   the tools/list section's big catalogue: BACKENDS demo
#                         backends with TOOLS tools each
#         SESSIONS=10000 STREAMS=1000 IDLE_CONNS=1000   the memory section: idle sessions,
#                         GET streams, idle keep-alive connections
#         MCP_PROXY_VERSION=0.6.0       the crates.io mcp-proxy to install and compare with
#         OUT=perf/results/compare.md   the tables; raw wrk output in compare.log and the
#                         servers' logs in compare-logs/ next to it
#         GW_BIN=path     measure this gateway binary (another commit's build, for an A/B)
#                         instead of building this tree's release binary
#         GW_SERVER='uring_setup = []'   extra lines for every gateway's [server] section
#                         (an A/B of settings on one binary; not for gw1-base)
#         BASE_BIN=path   the build measured as target gw1-base (before/after in one run);
#                         target gw1-epoll is gw1 on the epoll driver
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-5s}
RUNS=${RUNS:-3}
CONNS=${CONNS:-"1 16 64 256"}
LIST_CONNS=${LIST_CONNS:-"1 16"}
SECTIONS=${SECTIONS:-"calls list memory"}
TARGETS=${TARGETS:-"direct nginx mcp-proxy gw1 gw2 gw1-stdio mcp-proxy-stdio gw1-unix nginx-unix"}
WARMUP=${WARMUP:-1s}
DRIVER=${DRIVER:-uring}
CPU_LOAD=${CPU_LOAD:-0}
CPU_SUT=${CPU_SUT:-1}
MAX_NOISE=${MAX_NOISE:-15}
MAX_TRIES=${MAX_TRIES:-2}
BACKENDS=${BACKENDS:-100}
TOOLS=${TOOLS:-50}
SESSIONS=${SESSIONS:-10000}
STREAMS=${STREAMS:-1000}
IDLE_CONNS=${IDLE_CONNS:-1000}
MCP_PROXY_VERSION=${MCP_PROXY_VERSION:-0.6.0}
OUT=${OUT:-perf/results/compare.md}
[[ $OUT == /* ]] || OUT=$ROOT/$OUT # nginx resolves relative paths against its -p prefix
RAW=${OUT%.md}.log
LOGS=${OUT%.md}-logs
BIN=${GW_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/only1mcp-uring}
LUA=$ROOT/perf/mcp_post.lua
SESS_PY=$ROOT/perf/mcp_sessions.py
GEN=$ROOT/target/perf # generated configs (nginx, mcp-proxy, gateways)
TOOLS_ROOT=$ROOT/target/perf-tools
MCP_PROXY=$TOOLS_ROOT/bin/mcp-proxy

LOG_TAG=compare.sh
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"

[[ $(secs_of "$DURATION") =~ ^[0-9]+$ ]] || die "DURATION=$DURATION: use wrk syntax like 5s"
[[ $(secs_of "$WARMUP") =~ ^[0-9]+$ ]] || die "WARMUP=$WARMUP: use wrk syntax like 1s"
((TOOLS >= 11)) || die "TOOLS must be at least 11 (the demo server's own tools)"

# --- tools ---------------------------------------------------------------------------------
for c in curl taskset python3 cargo; do command -v "$c" >/dev/null || die "$c is required"; done
need_cmd wrk wrk
need_cmd nginx nginx
((  $(nproc) >= 2)) || die "needs 2 CPUs (load + backends on one, the system under test on the other)"

if [ -z "${GW_BIN:-}" ]; then
  log "building --release"
  cargo build --release --quiet --bin only1mcp-uring
else
  [ -x "$GW_BIN" ] || die "GW_BIN=$GW_BIN is not an executable"
fi

# mcp-proxy from crates.io, pinned, under target/ (never committed).
MCP_PROXY_MISSING=""
if [[ " $TARGETS " == *" mcp-proxy"* ]] && ! cargo install --list --root "$TOOLS_ROOT" 2>/dev/null | grep -q "^mcp-proxy v$MCP_PROXY_VERSION:"; then
  log "mcp-proxy $MCP_PROXY_VERSION not found: installing it with 'cargo install --locked --root target/perf-tools mcp-proxy@$MCP_PROXY_VERSION' (a few minutes)"
  if ! cargo install --locked --quiet --root "$TOOLS_ROOT" "mcp-proxy@$MCP_PROXY_VERSION" >"$TMP/mcp-proxy-install.log" 2>&1; then
    tail -n 20 "$TMP/mcp-proxy-install.log" >&2
    MCP_PROXY_MISSING="cargo install mcp-proxy@$MCP_PROXY_VERSION failed: $(grep -m1 -E '^error' "$TMP/mcp-proxy-install.log" || echo see log)"
    log "$MCP_PROXY_MISSING: its rows are left out"
  fi
fi

# Open files: every GET stream of the memory section is a socket in the client and the gateway.
need_fds=$((STREAMS + IDLE_CONNS + 4096))
if (($(ulimit -n) < need_fds)); then
  hard=$(ulimit -Hn)
  [[ $hard == unlimited ]] && hard=$need_fds
  ulimit -n "$((hard < need_fds ? hard : need_fds))"
  log "raised ulimit -n to $(ulimit -n)"
  (($(ulimit -n) >= need_fds)) || log "ulimit -n $(ulimit -n) < $need_fds: GET streams may fail"
fi

mkdir -p "$(dirname "$OUT")" "$GEN" "$LOGS"
rm -f "$LOGS"/*.log
: >"$RAW"

# --- process helpers -------------------------------------------------------------------------
# untrack_stop PID...: stop processes we started (TERM, then KILL after 2 s), reap, forget them.
untrack_stop() {
  local p q keep=()
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do
    for _ in $(seq 1 20); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  for q in "${PIDS[@]}"; do
    for p in "$@"; do [[ $q == "$p" ]] && continue 2; done
    keep+=("$q")
  done
  PIDS=("${keep[@]}")
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_demo NAME [ENV=VALUE...]: an HTTP demo backend on CPU_LOAD; sets S_PID and S_URL.
start_demo() {
  local name=$1
  shift
  env "$@" taskset -c "$CPU_LOAD" "$BIN" demo-server --http 127.0.0.1:0 --name "$name" >"$LOGS/demo-$name.log" 2>&1 &
  S_PID=$!
  track "$S_PID"
  S_URL=$(wait_for_line "$LOGS/demo-$name.log" 'demo-server listening on http://' "$S_PID" | grep -oE 'http://[^ ]+/mcp')
}

# start_demo_unix NAME: the demo backend on a unix socket in $TMP (sets S_PID and S_SOCK).
start_demo_unix() {
  local name=$1
  S_SOCK=$TMP/demo-$name.sock
  taskset -c "$CPU_LOAD" "$BIN" demo-server --http "unix:$S_SOCK" --name "$name" >"$LOGS/demo-$name.log" 2>&1 &
  S_PID=$!
  track "$S_PID"
  wait_for_line "$LOGS/demo-$name.log" 'demo-server listening on unix:' "$S_PID" >/dev/null
}

# start_nginx TARGET UPSTREAM: nginx, 1 worker on CPU_SUT, as a plain reverse proxy with
# upstream keep-alive to UPSTREAM (`host:port` or `unix:/path`); sets T_URL, T_SUT, T_TOOL.
start_nginx() {
  local t=$1 upstream=$2 port dir=$GEN/$1 i user=""
  port=$(free_port)
  mkdir -p "$dir"
  # A unix socket needs write permission and its (private) temp directory: the worker runs as
  # this user, not as nginx's default `nobody` when started by root.
  [[ $upstream == unix:* && $(id -u) == 0 ]] && user="user $(id -un) $(id -gn);"
  cat >"$dir.conf" <<NGINX
# generated by perf/compare.sh: nginx as a plain reverse proxy in front of the demo backend
$user
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $LOGS/$t-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  upstream backend {
    server $upstream;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # the demo backend checks Host (DNS rebinding): pass the client's, as for any MCP server
      proxy_set_header Host \$http_host;
    }
  }
}
NGINX
  taskset -c "$CPU_SUT" nginx -e "$LOGS/$t-error.log" -p "$dir" -c "$dir.conf" \
    >"$LOGS/$t.log" 2>&1 &
  S_PID=$!
  track "$S_PID"
  T_URL[$t]="http://127.0.0.1:$port/mcp" T_TOOL[$t]=echo
  for i in $(seq 1 100); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && break
    kill -0 "$S_PID" 2>/dev/null || die "$t exited: $(cat "$LOGS/$t-error.log" "$LOGS/$t.log")"
    ((i < 100)) || die "$t does not answer on port $port"
    sleep 0.1
  done
  T_SUT[$t]="$S_PID $(children_of "$S_PID")"
}

# pin_all PID CPUS: every thread of PID onto CPUS, checked.
pin_all() {
  local pid=$1 cpus=$2 t allowed
  taskset -a -p -c "$cpus" "$pid" >/dev/null
  for t in /proc/"$pid"/task/*; do
    allowed=$(awk '$1 == "Cpus_allowed_list:" { print $2 }' "$t/status")
    [[ $allowed == "$cpus" ]] || die "pid $pid thread $(<"$t/comm") is allowed on CPUs $allowed, not $cpus"
  done
}

# children_of PID: the direct child processes (stdio backends).
children_of() { pgrep -P "$1" | tr '\n' ' '; }

# gw_config FILE NAME [SERVER_LINES]: [server] and [metrics] settings shared by every gateway
# config here (each gateway gets its own metrics socket, so none of them logs "socket in use").
gw_config() {
  cat >"$1" <<EOF
# generated by perf/compare.sh
[server]
${GW_SERVER:-}
${3:-}

[metrics]
socket = "$TMP/gw-$2.sock"

EOF
}

# start_gw NAME CONFIG CORES CPUS [EXPECTED_TOOLS]: a gateway on CPUS, healthy; sets S_PID, S_URL.
# With one CPU every thread is re-pinned there (the shard thread pins itself by core index).
# START_BIN / START_DRIVER, when set, replace BIN / DRIVER for this one gateway.
start_gw() {
  local name=$1 cfg=$2 cores=$3 cpus=$4 tools=${5:-} line health i
  taskset -c "$cpus" "${START_BIN:-$BIN}" start --config "$cfg" --port 0 --cores "$cores" --driver "${START_DRIVER:-$DRIVER}" \
    >"$LOGS/gw-$name.log" 2>&1 &
  S_PID=$!
  track "$S_PID"
  line=$(wait_for_line "$LOGS/gw-$name.log" 'only1mcp-uring listening on http://' "$S_PID" 30)
  S_URL=$(grep -oE 'http://[^ ]+/mcp' <<<"$line")
  for i in $(seq 1 600); do
    health=$(curl -sS --max-time 2 "${S_URL%/mcp}/health" 2>/dev/null || true)
    if [[ $health == *'"status":"ok"'* && $health != *'"state":"starting"'* && $health != *'"state":"down"'* ]]; then
      [[ -z $tools || $health == *"\"tools\":$tools,"* || $health == *"\"tools\":$tools}"* ]] && break
    fi
    kill -0 "$S_PID" 2>/dev/null || die "gateway $name exited: $(tail -n 20 "$LOGS/gw-$name.log")"
    ((i < 600)) || die "gateway $name not healthy (tools ${tools:-any}) after 60 s: $(head -c 600 <<<"$health")"
    sleep 0.1
  done
  [[ $cpus == *,* ]] || pin_all "$S_PID" "$cpus"
  GW_DRIVERS+=("$name: $(grep -oE 'driver: [a-z_]+' <<<"$line" | cut -d' ' -f2)")
}
GW_DRIVERS=()

# start_mcp_proxy NAME CONFIG: mcp-proxy on CPU_SUT, answering initialize; sets S_PID, S_URL.
start_mcp_proxy() {
  local name=$1 cfg=$2 port i
  port=$(sed -n 's/^port = //p' "$cfg")
  taskset -c "$CPU_SUT" "$MCP_PROXY" --config "$cfg" >"$LOGS/$name.log" 2>&1 &
  S_PID=$!
  track "$S_PID"
  S_URL="http://127.0.0.1:$port/"
  for i in $(seq 1 300); do
    if python3 "$SESS_PY" open "$S_URL" 1 >/dev/null 2>&1; then break; fi
    kill -0 "$S_PID" 2>/dev/null || die "$name exited: $(tail -n 20 "$LOGS/$name.log")"
    ((i < 300)) || die "$name does not answer initialize at $S_URL after 30 s"
    sleep 0.1
  done
}

mcp_proxy_config() { # FILE PORT then the [[backends]] body on stdin
  {
    printf '# generated by perf/compare.sh\n[proxy]\nname = "perf"\nseparator = "__"\n'
    printf '[proxy.listen]\nhost = "127.0.0.1"\nport = %s\n\n' "$2"
    cat
    printf '\n[observability]\nlog_level = "warn"\n'
  } >"$1"
}

# --- targets -----------------------------------------------------------------------------------
# Per target: URL, tool name, SUT pids (CPU accounted to it), backend pids, CPUs it runs on
# (load = CPU_LOAD only, sut = CPU_SUT only, both), sessions (ids, protocol version).
declare -A T_URL T_TOOL T_SUT T_BE T_CPUS T_SIDS T_VER T_FAIL T_IDLE T_PEAK T_LABEL
ANOMALIES=()

# open_sessions TARGET N: N initialized sessions for TARGET (one per wrk connection).
open_sessions() {
  local t=$1 n=$2 out
  out=$(taskset -c "$CPU_LOAD" timeout 120 python3 "$SESS_PY" open "${T_URL[$t]}" "$n" 2>&1) || {
    T_FAIL[$t]="opening $n sessions failed: $(tail -n 1 <<<"$out")"
    return 0
  }
  T_VER[$t]=$(head -1 <<<"$out" | cut -d' ' -f2)
  T_SIDS[$t]=$(tail -n +2 <<<"$out" | tr '\n' ' ')
}

# check_call TARGET METHOD: one request with curl on the first session; prints the body.
check_call() {
  local t=$1 body sid
  sid=${T_SIDS[$t]%% *}
  if [[ $2 == tools/list ]]; then
    body='{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
  else
    body="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"${T_TOOL[$t]}\",\"arguments\":{\"message\":\"hi\"}}}"
  fi
  curl -sS --max-time 10 -X POST "${T_URL[$t]}" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H "mcp-session-id: $sid" \
    -H "mcp-protocol-version: ${T_VER[$t]}" --data-binary "$body" || true
}

# --- one wrk run ---------------------------------------------------------------------------------
# run_wrk TARGET CONNS DURATION [METHOD]: sets R_LINE, R_NON2XX, R_FIRST_BAD, D_SUT, D_BE, and
# the other load N_LOAD/N_SUT (ticks) on the test's CPUs. wrk runs as a background job we wait
# for, so a signal reaches the exit trap at once (which stops it).
run_wrk() {
  local t=$1 c=$2 dur=$3 method=${4:-tools/call} limit ids rc=0
  # shellcheck disable=SC2086
  ids=$(printf '%s ' ${T_SIDS[$t]} | cut -d' ' -f1-"$c")
  limit=$(($(secs_of "$dur") + 15))
  local l0 s0 w0 u0 b0 l1 s1 w1 u1 b1
  l0=$(cpu_busy "$CPU_LOAD")
  s0=$(cpu_busy "$CPU_SUT")
  w0=$(reaped_ticks)
  # shellcheck disable=SC2086
  u0=$(sum_ticks ${T_SUT[$t]})
  # shellcheck disable=SC2086
  b0=$(sum_ticks ${T_BE[$t]})
  MCP_SESSION_IDS=$ids MCP_PROTOCOL_VERSION=${T_VER[$t]} MCP_TOOL=${T_TOOL[$t]} \
    MCP_METHOD=$method MCP_CHECK=${MCP_CHECK:-0} \
    timeout --signal=INT --kill-after=5 "$limit" \
    taskset -c "$CPU_LOAD" wrk -t1 -c "$c" -d "$dur" --latency -s "$LUA" "${T_URL[$t]}" >"$TMP/wrk.out" 2>&1 &
  JOB_PID=$!
  wait "$JOB_PID" || rc=$?
  JOB_PID=""
  # shellcheck disable=SC2086
  u1=$(sum_ticks ${T_SUT[$t]})
  # shellcheck disable=SC2086
  b1=$(sum_ticks ${T_BE[$t]})
  l1=$(cpu_busy "$CPU_LOAD")
  s1=$(cpu_busy "$CPU_SUT")
  w1=$(reaped_ticks)
  printf '### %s %s -c %s -d %s (exit %s)\n%s\nPROC sut_cpu_ticks=%s backend_cpu_ticks=%s wrk_cpu_ticks=%s cpu%s_busy_ticks=%s cpu%s_busy_ticks=%s\n\n' \
    "$t" "$method" "$c" "$dur" "$rc" "$(cat "$TMP/wrk.out")" "$((u1 - u0))" "$((b1 - b0))" "$((w1 - w0))" \
    "$CPU_LOAD" "$((l1 - l0))" "$CPU_SUT" "$((s1 - s0))" >>"$RAW"
  R_LINE=$(grep -m1 '^RESULT ' "$TMP/wrk.out" || true)
  if [[ $rc != 0 || -z $R_LINE ]]; then
    R_LINE="RESULT requests=0 duration_us=1 rps=0 p50_us=0 p99_us=0 max_us=0 err_connect=0 err_read=0 err_write=0 err_status=0 err_timeout=1 bad=0 checked=0"
    ANOMALIES+=("$t $method -c $c: wrk exited $rc (124 = overran ${limit}s): $(tail -n 3 "$TMP/wrk.out" | tr '\n' ' ')")
  fi
  R_FIRST_BAD=$(grep -m1 '^FIRST_BAD ' "$TMP/wrk.out" || true)
  R_NON2XX=$(grep -m1 'Non-2xx' "$TMP/wrk.out" || true)
  D_SUT=$((u1 - u0))
  D_BE=$((b1 - b0))
  local dl=$((l1 - l0)) ds=$((s1 - s0)) dw=$((w1 - w0))
  case ${T_CPUS[$t]} in
    load) # the SUT is the backend, on CPU_LOAD; CPU_SUT is idle and not part of the test
      N_LOAD=$((dl - dw - D_BE))
      N_SUT=0
      ;;
    both) # the SUT spans both CPUs: one figure for the two
      N_LOAD=$((dl + ds - dw - D_BE - D_SUT))
      N_SUT=$N_LOAD
      ;;
    *)
      N_LOAD=$((dl - dw - D_BE))
      N_SUT=$((ds - D_SUT))
      ;;
  esac
}

errors_of() {
  local e n=0
  for e in err_connect err_read err_write err_status err_timeout bad; do
    n=$((n + $(field "$e" "$1")))
  done
  echo "$n"
}

declare -A RPS P50 P99 SUTC BEC ERRS NL NS NOISY
DISCARDED=0

# measure TARGET CONNS RUN METHOD: one cell of one run, retried while noisy; records medians' inputs.
measure() {
  local t=$1 c=$2 run=$3 method=$4 k="$4,$1,$2" try errs noise d_us l s n
  for try in $(seq 1 "$MAX_TRIES"); do
    log "run $run/$RUNS: $t $method -c $c -d $DURATION$( ((try == 1)) || echo " (try $try)")"
    run_wrk "$t" "$c" "$DURATION" "$method"
    errs=$(errors_of "$R_LINE")
    ERRS[$k]=$((${ERRS[$k]:-0} + errs))
    if ((errs > 0)); then
      ANOMALIES+=("run $run $t $method -c $c: ${R_LINE#RESULT } ${R_NON2XX:+| wrk: $R_NON2XX} ${R_FIRST_BAD:+| $R_FIRST_BAD}")
    fi
    d_us=$(field duration_us "$R_LINE")
    l=$(pct_of_run "$N_LOAD" "$d_us")
    s=$(pct_of_run "$N_SUT" "$d_us")
    noise=$((l > s ? l : s))
    ((noise > MAX_NOISE)) || break
    if ((try < MAX_TRIES)); then
      log "  other load ${noise}% > MAX_NOISE=${MAX_NOISE}%: discarded, retrying"
      DISCARDED=$((DISCARDED + 1))
      sleep 2
    else
      log "  other load ${noise}% > MAX_NOISE=${MAX_NOISE}% on every try: kept"
      NOISY[$k]=$((${NOISY[$k]:-0} + 1))
    fi
  done
  n=$(field requests "$R_LINE")
  RPS[$k]+=" $(field rps "$R_LINE")"
  P50[$k]+=" $(field p50_us "$R_LINE")"
  P99[$k]+=" $(field p99_us "$R_LINE")"
  SUTC[$k]+=" $(us_per_req "$D_SUT" "$n")"
  BEC[$k]+=" $(us_per_req "$D_BE" "$n")"
  NL[$k]+=" $l"
  NS[$k]+=" $s"
}

med0() { median | awk '{ if ($1 == "n/a") print "n/a"; else printf "%.0f", $1 }'; }

# body_check TARGET METHOD: a 2 s run reading every reply (not measured).
CHECKS=()
body_check() {
  local t=$1 method=$2
  MCP_CHECK=1 run_wrk "$t" 16 2s "$method"
  CHECKS+=("$t $method: $(field checked "$R_LINE") replies checked, $(field bad "$R_LINE") bad, $(field err_status "$R_LINE") non-2xx")
  if (($(field bad "$R_LINE") + $(field err_status "$R_LINE") > 0)); then
    ANOMALIES+=("body check $t $method: ${R_LINE#RESULT } ${R_FIRST_BAD:+| $R_FIRST_BAD}")
  fi
}

# run_cells METHOD CONNS TARGET...: warm-up, then RUNS rounds; the order of the targets rotates
# from cell to cell so that drift on a shared machine hits all of them alike.
run_cells() {
  local method=$1 conns=$2 t c run ci=0 n i
  shift 2
  local tl=("$@")
  n=${#tl[@]}
  log "warm-up: $WARMUP per target at -c 16 ($method, not measured)"
  for t in "${tl[@]}"; do run_wrk "$t" 16 "$WARMUP" "$method"; done
  for run in $(seq 1 "$RUNS"); do
    for c in $conns; do
      ci=$((ci + 1))
      for i in $(seq 0 $((n - 1))); do
        measure "${tl[$(((i + ci + run) % n))]}" "$c" "$run" "$method"
      done
    done
  done
}

# rss_of TARGET FIELD: the SUT's VmRSS / VmHWM (kB, summed over its processes).
# shellcheck disable=SC2086
rss_of() { sum_kb "$2" ${T_SUT[$1]}; }

cell() { # METHOD TARGET CONNS COLUMN -> median
  local k="$1,$2,$3"
  case $4 in
    rps) med0 <<<"${RPS[$k]:-}" ;;
    p50) med0 <<<"${P50[$k]:-}" ;;
    p99) med0 <<<"${P99[$k]:-}" ;;
    sut) median <<<"${SUTC[$k]:-}" ;;
    be) median <<<"${BEC[$k]:-}" ;;
  esac
}
# added A B: A - B with a sign (n/a if either is).
added() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || a == "" || b == "") print "n/a"; else printf "%+d", a - b }'; }
# per A B N: (B - A) / N with two decimals (n/a without items).
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n + 0 > 0) printf "%.2f", (b - a) / n; else print "n/a" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }

row_cells() { # METHOD TARGET CONNS: the shared columns of a table row
  local k="$1,$2,$3" noise
  noise="$(med0 <<<"${NL[$k]:-}")/$(med0 <<<"${NS[$k]:-}")"
  [[ -n ${NOISY[$k]:-} ]] && noise+=" (${NOISY[$k]} noisy)"
  printf '%s | %s | %s | %s | %s | %s | %s | %s' "$(cell "$1" "$2" "$3" rps)" "$(range <<<"${RPS[$k]:-}")" \
    "$(cell "$1" "$2" "$3" p50)" "$(cell "$1" "$2" "$3" p99)" "$(cell "$1" "$2" "$3" sut)" \
    "$(cell "$1" "$2" "$3" be)" "${ERRS[$k]:-0}" "$noise"
}

REPORT=$TMP/report.md
: >"$REPORT"
emit() { cat >>"$REPORT"; }
LOADAVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')

# ================================================================================================
# Section 1: tools/call echo through each proxy
# ================================================================================================
section_calls() {
  local t name cfg maxc=0 c body tl=()
  for c in $CONNS; do ((c > maxc)) && maxc=$c; done
  start_demo backend
  local BE_PID=$S_PID BE_URL=$S_URL
  log "demo backend pid $BE_PID at $BE_URL (CPU $CPU_LOAD)"
  local UBE_PID="" UBE_SOCK=""
  if [[ " $TARGETS " == *"-unix "* ]]; then
    start_demo_unix backend-unix
    UBE_PID=$S_PID UBE_SOCK=$S_SOCK
    log "demo backend pid $UBE_PID on unix:$UBE_SOCK (CPU $CPU_LOAD)"
  fi
  for t in $TARGETS; do
    T_TOOL[$t]=demo__echo
    T_BE[$t]=$BE_PID
    T_CPUS[$t]=sut
    case $t in
      direct)
        T_LABEL[$t]="direct: wrk → demo backend"
        T_URL[$t]=$BE_URL T_TOOL[$t]=echo T_SUT[$t]=$BE_PID T_CPUS[$t]=load
        ;;
      nginx)
        T_LABEL[$t]="nginx $(nginx -v 2>&1 | cut -d/ -f2), 1 worker, upstream keepalive 64"
        local bport=${BE_URL#http://127.0.0.1:}
        start_nginx "$t" "127.0.0.1:${bport%/mcp}"
        ;;
      nginx-unix)
        T_LABEL[$t]="nginx $(nginx -v 2>&1 | cut -d/ -f2), 1 worker, upstream keepalive 64, to the demo backend on a unix socket"
        T_BE[$t]=$UBE_PID
        start_nginx "$t" "unix:$UBE_SOCK"
        ;;
      mcp-proxy | mcp-proxy-stdio)
        if [[ -n $MCP_PROXY_MISSING ]]; then
          T_FAIL[$t]=$MCP_PROXY_MISSING
          continue
        fi
        cfg=$GEN/$t.toml
        if [[ $t == mcp-proxy ]]; then
          T_LABEL[$t]="mcp-proxy $MCP_PROXY_VERSION, HTTP backend"
          mcp_proxy_config "$cfg" "$(free_port)" <<EOF
[[backends]]
name = "demo"
transport = "http"
url = "$BE_URL"
EOF
        else
          T_LABEL[$t]="mcp-proxy $MCP_PROXY_VERSION, stdio backend (demo-server --stdio)"
          mcp_proxy_config "$cfg" "$(free_port)" <<EOF
[[backends]]
name = "demo"
transport = "stdio"
command = "$BIN"
args = ["demo-server", "--stdio"]
EOF
        fi
        start_mcp_proxy "$t" "$cfg"
        T_URL[$t]=$S_URL T_SUT[$t]=$S_PID
        ;;
      gw1 | gw2)
        cfg=$GEN/gw-$t.toml
        gw_config "$cfg" "$t"
        printf '[[servers]]\nid = "demo"\ntransport = "http"\nurl = "%s"\n' "$BE_URL" >>"$cfg"
        if [[ $t == gw1 ]]; then
          T_LABEL[$t]="only1mcp-uring --cores 1 ($DRIVER), HTTP backend"
          start_gw "$t" "$cfg" 1 "$CPU_SUT"
        else
          T_LABEL[$t]="only1mcp-uring --cores 2 ($DRIVER), HTTP backend; shares CPU $CPU_LOAD with wrk and the backend"
          T_CPUS[$t]=both
          start_gw "$t" "$cfg" 2 "$CPU_LOAD,$CPU_SUT"
        fi
        T_URL[$t]=$S_URL T_SUT[$t]=$S_PID
        ;;
      gw1-base)
        [[ -x ${BASE_BIN:-} ]] || die "gw1-base needs BASE_BIN=path (the other build)"
        T_LABEL[$t]="only1mcp-uring --cores 1 ($DRIVER), HTTP backend: the build at BASE_BIN ($(basename "$BASE_BIN")), its default config"
        cfg=$GEN/gw-base.toml
        GW_SERVER="" gw_config "$cfg" "$t"
        printf '[[servers]]\nid = "demo"\ntransport = "http"\nurl = "%s"\n' "$BE_URL" >>"$cfg"
        START_BIN=$BASE_BIN start_gw "$t" "$cfg" 1 "$CPU_SUT"
        T_URL[$t]=$S_URL T_SUT[$t]=$S_PID
        ;;
      gw1-epoll)
        T_LABEL[$t]="only1mcp-uring --cores 1 (epoll), HTTP backend"
        cfg=$GEN/gw-epoll.toml
        gw_config "$cfg" "$t"
        printf '[[servers]]\nid = "demo"\ntransport = "http"\nurl = "%s"\n' "$BE_URL" >>"$cfg"
        START_DRIVER=epoll start_gw "$t" "$cfg" 1 "$CPU_SUT"
        T_URL[$t]=$S_URL T_SUT[$t]=$S_PID
        ;;
      gw1-unix)
        T_LABEL[$t]="only1mcp-uring --cores 1 ($DRIVER), HTTP backend on a unix socket"
        T_BE[$t]=$UBE_PID
        cfg=$GEN/gw-unix.toml
        gw_config "$cfg" "$t"
        printf '[[servers]]\nid = "demo"\ntransport = "http"\nurl = "unix:%s:/mcp"\n' "$UBE_SOCK" >>"$cfg"
        start_gw "$t" "$cfg" 1 "$CPU_SUT"
        T_URL[$t]=$S_URL T_SUT[$t]=$S_PID
        ;;
      gw1-stdio)
        T_LABEL[$t]="only1mcp-uring --cores 1 ($DRIVER), stdio backend (demo-server --stdio)"
        cfg=$GEN/gw-stdio.toml
        gw_config "$cfg" "$t"
        printf '[[servers]]\nid = "demo"\ntransport = "stdio"\ncommand = "%s"\nargs = ["demo-server", "--stdio"]\n' "$BIN" >>"$cfg"
        start_gw "$t" "$cfg" 1 "$CPU_SUT"
        T_URL[$t]=$S_URL T_SUT[$t]=$S_PID
        ;;
      *) die "unknown target $t (TARGETS)" ;;
    esac
    # stdio backends are the proxy's children: they belong on the backend CPU, and are tracked.
    if [[ $t == *-stdio ]]; then
      T_BE[$t]=$(children_of "${T_SUT[$t]}")
      [[ -n ${T_BE[$t]// /} ]] || die "$t started no stdio child"
      for c in ${T_BE[$t]}; do
        pin_all "$c" "$CPU_LOAD"
        track "$c"
      done
    fi
    T_IDLE[$t]=$(rss_of "$t" VmRSS)
    open_sessions "$t" "$maxc"
    if [[ -z ${T_FAIL[$t]:-} ]]; then
      body=$(check_call "$t" tools/call)
      if [[ $body != *'"result"'* || $body != *'"text":"hi"'* ]]; then
        T_FAIL[$t]="tools/call ${T_TOOL[$t]} did not echo: $(head -c 300 <<<"$body")"
      fi
    fi
    if [[ -n ${T_FAIL[$t]:-} ]]; then
      ANOMALIES+=("$t: ${T_FAIL[$t]}")
      log "$t: ${T_FAIL[$t]}: left out"
      continue
    fi
    tl+=("$t")
    log "$t ready at ${T_URL[$t]}: SUT pids ${T_SUT[$t]}, backend pids ${T_BE[$t]}, $maxc sessions (${T_VER[$t]})"
  done

  run_cells tools/call "$CONNS" "${tl[@]}"
  log "body check: 2s per target at -c 16, every reply must be a JSON-RPC result echoing \"hi\""
  for t in "${tl[@]}"; do
    body_check "$t" tools/call
    T_PEAK[$t]=$(rss_of "$t" VmHWM)
    kill -0 "${T_SUT[$t]%% *}" 2>/dev/null || ANOMALIES+=("$t: the system under test exited during the run")
  done

  {
    echo "### tools/call \`echo\`: req/s, latency, CPU and memory per proxy"
    echo
    echo "| conns | target | req/s | req/s min–max | p50 µs | p99 µs | SUT CPU µs/req | backend CPU µs/req | errors | other load % CPU${CPU_LOAD}/CPU${CPU_SUT} | SUT RSS idle → peak MiB |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for c in $CONNS; do
      for t in $TARGETS; do
        if [[ -n ${T_FAIL[$t]:-} ]]; then
          echo "| $c | $t | not measured: ${T_FAIL[$t]} | | | | | | | | |"
          continue
        fi
        echo "| $c | $t | $(row_cells tools/call "$t" "$c") | $(mib "${T_IDLE[$t]}") → $(mib "${T_PEAK[$t]}") |"
      done
    done
    echo
    echo "Targets:"
    echo
    for t in $TARGETS; do echo "- \`$t\`: ${T_LABEL[$t]:-$t}"; done
    echo
    echo "### Ratios, same run"
    echo
    echo "| conns | gw1 / nginx req/s | gw1 / mcp-proxy req/s | gw2 / gw1 req/s | gw1 / nginx CPU per req | p50 added over direct: nginx / mcp-proxy / gw1 µs | gw1-stdio / mcp-proxy-stdio req/s | gw1-unix / nginx-unix req/s, CPU per req | gw1 / gw1-base CPU per req | gw1-epoll / gw1 req/s, CPU per req |"
    echo "|---:|---:|---:|---:|---:|---|---:|---|---:|---|"
    local m=tools/call
    for c in $CONNS; do
      local d n mp g1
      d=$(cell $m direct "$c" p50)
      n=$(cell $m nginx "$c" p50)
      mp=$(cell $m mcp-proxy "$c" p50)
      g1=$(cell $m gw1 "$c" p50)
      printf '| %s | %s | %s | %s | %s | %s / %s / %s | %s | %s, %s | %s | %s, %s |\n' "$c" \
        "$(ratio "$(cell $m gw1 "$c" rps)" "$(cell $m nginx "$c" rps)")" \
        "$(ratio "$(cell $m gw1 "$c" rps)" "$(cell $m mcp-proxy "$c" rps)")" \
        "$(ratio "$(cell $m gw2 "$c" rps)" "$(cell $m gw1 "$c" rps)")" \
        "$(ratio "$(cell $m gw1 "$c" sut)" "$(cell $m nginx "$c" sut)")" \
        "$(added "$n" "$d")" "$(added "$mp" "$d")" "$(added "$g1" "$d")" \
        "$(ratio "$(cell $m gw1-stdio "$c" rps)" "$(cell $m mcp-proxy-stdio "$c" rps)")" \
        "$(ratio "$(cell $m gw1-unix "$c" rps)" "$(cell $m nginx-unix "$c" rps)")" \
        "$(ratio "$(cell $m gw1-unix "$c" sut)" "$(cell $m nginx-unix "$c" sut)")" \
        "$(ratio "$(cell $m gw1 "$c" sut)" "$(cell $m gw1-base "$c" sut)")" \
        "$(ratio "$(cell $m gw1-epoll "$c" rps)" "$(cell $m gw1 "$c" rps)")" \
        "$(ratio "$(cell $m gw1-epoll "$c" sut)" "$(cell $m gw1 "$c" sut)")"
    done
    echo
  } | emit

  # The proxies first (a backend that vanishes under a running gateway is logged as a WARN),
  # then their stdio children and the backend.
  local suts="" bes="$BE_PID $UBE_PID"
  for t in "${tl[@]}"; do
    [[ $t == direct ]] || suts+=" ${T_SUT[$t]}"
    [[ $t == *-stdio ]] && bes+=" ${T_BE[$t]}"
  done
  # shellcheck disable=SC2086
  untrack_stop $suts
  # shellcheck disable=SC2086
  untrack_stop $bes
}

# grep_warnings: WARN/ERROR lines in the gateways' and mcp-proxy's logs become anomalies.
grep_warnings() {
  local f n
  for f in "$LOGS"/gw-*.log "$LOGS"/mcp-proxy*.log; do
    [[ -e $f ]] || continue
    n=$(grep -cE ' (WARN|ERROR) ' "$f" || true)
    if ((n > 0)); then
      ANOMALIES+=("$(basename "$f") has $n WARN/ERROR lines, first: $(grep -m1 -E ' (WARN|ERROR) ' "$f" | cut -c1-400)")
    fi
  done
}

# ================================================================================================
# Section 2: tools/list with big catalogues
# ================================================================================================
section_list() {
  local i u pids=() urls=() t cfg body tl=() extra=$((TOOLS - 11))
  log "starting $BACKENDS demo backends with $TOOLS tools each (DEMO_EXTRA_TOOLS=$extra) on CPU $CPU_LOAD"
  for i in $(seq 0 $((BACKENDS - 1))); do
    env DEMO_EXTRA_TOOLS=$extra DEMO_PAGE_SIZE=1000 taskset -c "$CPU_LOAD" "$BIN" demo-server \
      --http 127.0.0.1:0 --name "b$i" >"$LOGS/demo-b$i.log" 2>&1 &
    pids+=($!)
    track $!
  done
  for i in $(seq 0 $((BACKENDS - 1))); do
    u=$(wait_for_line "$LOGS/demo-b$i.log" 'demo-server listening on http://' "${pids[$i]}" | grep -oE 'http://[^ ]+/mcp')
    urls+=("$u")
  done
  start_demo tiny DEMO_PAGE_SIZE=1000
  local TINY_PID=$S_PID TINY_URL=$S_URL

  # direct-50: one 50-tool backend directly (reference); list-tiny: the gateway with the plain
  # demo backend (11 tools); list-50: with one 50-tool backend; list-N: with all of them.
  local big="list-$((BACKENDS * TOOLS))"
  LIST_TARGETS=("direct-$TOOLS" list-tiny "list-$TOOLS" "$big")
  t="direct-$TOOLS"
  T_URL[$t]=${urls[0]} T_SUT[$t]=${pids[0]} T_BE[$t]=${pids[0]} T_CPUS[$t]=load T_TOOL[$t]=echo
  T_LABEL[$t]="one demo backend with $TOOLS tools, directly"
  T_IDLE[$t]=$(rss_of "$t" VmRSS)
  for t in list-tiny "list-$TOOLS" "$big"; do
    cfg=$GEN/gw-$t.toml
    gw_config "$cfg" "$t"
    printf '[proxy]\nlist_page_size = 0\n\n' >>"$cfg"
    case $t in
      list-tiny)
        printf '[[servers]]\nid = "demo"\ntransport = "http"\nurl = "%s"\n' "$TINY_URL" >>"$cfg"
        T_BE[$t]=$TINY_PID T_LABEL[$t]="gateway --cores 1, one demo backend (11 tools)"
        start_gw "$t" "$cfg" 1 "$CPU_SUT" 11
        ;;
      "list-$TOOLS")
        printf '[[servers]]\nid = "b0"\ntransport = "http"\nurl = "%s"\n' "${urls[0]}" >>"$cfg"
        T_BE[$t]=${pids[0]} T_LABEL[$t]="gateway --cores 1, one backend with $TOOLS tools"
        start_gw "$t" "$cfg" 1 "$CPU_SUT" "$TOOLS"
        ;;
      *)
        for i in $(seq 0 $((BACKENDS - 1))); do
          printf '[[servers]]\nid = "b%s"\ntransport = "http"\nurl = "%s"\n\n' "$i" "${urls[$i]}" >>"$cfg"
        done
        T_BE[$t]="${pids[*]}" T_LABEL[$t]="gateway --cores 1, $BACKENDS backends × $TOOLS tools"
        start_gw "$t" "$cfg" 1 "$CPU_SUT" $((BACKENDS * TOOLS))
        ;;
    esac
    T_URL[$t]=$S_URL T_SUT[$t]=$S_PID T_CPUS[$t]=sut T_TOOL[$t]=b0__echo
    [[ $t == list-tiny ]] && T_TOOL[$t]=demo__echo
    sleep 1 # let the catalog settle before reading the idle RSS
    T_IDLE[$t]=$(rss_of "$t" VmRSS)
  done
  declare -gA LIST_BYTES LIST_COUNT
  for t in "${LIST_TARGETS[@]}"; do
    open_sessions "$t" 16
    if [[ -z ${T_FAIL[$t]:-} ]]; then
      body=$(check_call "$t" tools/list)
      LIST_BYTES[$t]=${#body}
      LIST_COUNT[$t]=$(grep -o '"inputSchema"' <<<"$body" | wc -l)
      [[ $body == *'"result"'* ]] || T_FAIL[$t]="tools/list failed: $(head -c 300 <<<"$body")"
    fi
    if [[ -n ${T_FAIL[$t]:-} ]]; then
      ANOMALIES+=("$t: ${T_FAIL[$t]}")
      continue
    fi
    tl+=("$t")
    log "$t: tools/list = ${LIST_COUNT[$t]} tools, ${LIST_BYTES[$t]} bytes"
  done
  LIST_RSS_BEFORE_LOAD=$(rss_of "$big" VmRSS)

  run_cells tools/list "$LIST_CONNS" "${tl[@]}"
  for t in "${tl[@]}"; do
    body_check "$t" tools/list
  done
  # The same two gateways under tools/call: routing by name in a big catalogue vs a tiny one.
  local calls=()
  for t in list-tiny "$big"; do [[ -z ${T_FAIL[$t]:-} ]] && calls+=("$t"); done
  if ((${#calls[@]} == 2)); then
    run_cells tools/call "$LIST_CONNS" "${calls[@]}"
    for t in "${calls[@]}"; do body_check "$t" tools/call; done
  fi
  for t in "${tl[@]}"; do T_PEAK[$t]=$(rss_of "$t" VmHWM); done
  LIST_RSS_AFTER_LOAD=$(rss_of "$big" VmRSS)

  {
    echo "### tools/list: latency by catalogue size"
    echo
    echo "| conns | target | tools listed | reply bytes | req/s | req/s min–max | p50 µs | p99 µs | SUT CPU µs/req | backend CPU µs/req | errors | other load % CPU${CPU_LOAD}/CPU${CPU_SUT} | SUT RSS idle → peak MiB |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    for c in $LIST_CONNS; do
      for t in "${LIST_TARGETS[@]}"; do
        if [[ -n ${T_FAIL[$t]:-} ]]; then
          echo "| $c | $t | not measured: ${T_FAIL[$t]} | | | | | | | | | | |"
          continue
        fi
        echo "| $c | $t | ${LIST_COUNT[$t]} | ${LIST_BYTES[$t]} | $(row_cells tools/list "$t" "$c") | $(mib "${T_IDLE[$t]}") → $(mib "${T_PEAK[$t]}") |"
      done
    done
    echo
    for t in "${LIST_TARGETS[@]}"; do echo "- \`$t\`: ${T_LABEL[$t]}"; done
    echo "- the gateways run with \`[proxy] list_page_size = 0\` (the whole catalogue in one page; the default pages at 500)"
    echo "- \`$big\` RSS: $(mib "${T_IDLE[$big]}") MiB idle with $BACKENDS backends configured (catalogue loaded), $(mib "$LIST_RSS_BEFORE_LOAD") MiB with 16 sessions, $(mib "$LIST_RSS_AFTER_LOAD") MiB after the runs, peak $(mib "${T_PEAK[$big]}") MiB"
    for c in $LIST_CONNS; do
      echo "- -c $c: req/s $big / list-tiny = $(ratio "$(cell tools/list "$big" "$c" rps)" "$(cell tools/list list-tiny "$c" rps)")"
    done
    echo
    echo "tools/call \`echo\` through the same gateways (\`demo__echo\` with 11 tools, \`b0__echo\` with $((BACKENDS * TOOLS))):"
    echo
    echo "| conns | target | req/s | req/s min–max | p50 µs | p99 µs | SUT CPU µs/req | backend CPU µs/req | errors | other load % CPU${CPU_LOAD}/CPU${CPU_SUT} |"
    echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for c in $LIST_CONNS; do
      for t in list-tiny "$big"; do
        [[ -n ${RPS[tools/call,$t,$c]:-} ]] || continue
        echo "| $c | $t | $(row_cells tools/call "$t" "$c") |"
      done
    done
    echo
  } | emit
  local stop=()
  for t in list-tiny "list-$TOOLS" "$big"; do stop+=("${T_SUT[$t]}"); done
  untrack_stop "${stop[@]}"
  untrack_stop "${pids[@]}" "$TINY_PID"
}

# ================================================================================================
# Section 3: memory: the idle demo config, and idle sessions / GET streams
# ================================================================================================
section_memory() {
  local cfg out t rss0 rss1 rss2 rss3 rss4 hp line metrics godir
  # (a) the README's demo config (two stdio demo backends), idle.
  cfg=$GEN/gw-demo.toml
  gw_config "$cfg" demo
  cat config/demo.toml >>"$cfg" # its port is overridden by --port 0
  start_gw demo-config "$cfg" 1 "$CPU_SUT"
  local DEMO_GW=$S_PID
  sleep 2
  DEMO_RSS=$(status_kb "$DEMO_GW" VmRSS)
  local DEMO_KIDS
  DEMO_KIDS=$(children_of "$DEMO_GW")
  untrack_stop "$DEMO_GW"
  # shellcheck disable=SC2086
  untrack_stop $DEMO_KIDS

  # (b) SESSIONS idle sessions, then STREAMS GET streams on the first of them, then IDLE_CONNS
  # idle keep-alive connections; RSS sampled between the phases.
  start_demo mem-backend
  local MEM_BE=$S_PID MEM_BE_URL=$S_URL
  MAXCONN=$((STREAMS + IDLE_CONNS + 1024 > 10000 ? STREAMS + IDLE_CONNS + 1024 : 10000))
  declare -gA MEM
  MEM_TARGETS=(gateway)
  [[ -z $MCP_PROXY_MISSING ]] && MEM_TARGETS+=(mcp-proxy)
  for t in "${MEM_TARGETS[@]}"; do
    if [[ $t == gateway ]]; then
      cfg=$GEN/gw-sessions.toml
      # Limits: every GET stream and idle connection holds a connection (max_connections_per_shard,
      # default 10000); sessions idle out after 1 h by default, connections after 60 s: the
      # connection limit and the idle timeout are raised above what the test holds and lasts.
      gw_config "$cfg" sessions "max_connections_per_shard = $MAXCONN
idle_timeout_ms = 600000
session_idle_timeout_ms = 3600000"
      cat >>"$cfg" <<EOF
[[servers]]
id = "demo"
transport = "http"
url = "$MEM_BE_URL"
EOF
      start_gw sessions "$cfg" 1 "$CPU_SUT"
    else
      cfg=$GEN/mcp-proxy-sessions.toml
      mcp_proxy_config "$cfg" "$(free_port)" <<EOF
[[backends]]
name = "demo"
transport = "http"
url = "$MEM_BE_URL"
EOF
      start_mcp_proxy mcp-proxy-sessions "$cfg"
    fi
    local SUT=$S_PID URL=$S_URL
    python3 "$SESS_PY" open "$URL" 1 >/dev/null || die "$t: initialize failed"
    sleep 1
    rss0=$(status_kb "$SUT" VmRSS)
    log "memory ($t): $SESSIONS sessions, then $STREAMS GET streams, then $IDLE_CONNS idle connections (RSS now $(mib "$rss0") MiB)"
    out=$LOGS/sessions-$t.out
    godir=$TMP/go-$t
    mkdir -p "$godir"
    taskset -c "$CPU_LOAD" timeout 900 python3 "$SESS_PY" hold "$URL" "$SESSIONS" \
      --streams "$STREAMS" --conns "$IDLE_CONNS" --go-dir "$godir" --hold 5 >"$out" 2>&1 &
    hp=$!
    track "$hp"
    line=$(wait_for_line "$out" '^SESSIONS_OPEN ' "$hp" 300)
    sleep 1
    rss1=$(status_kb "$SUT" VmRSS)
    touch "$godir/go2"
    wait_for_line "$out" '^STREAMS_OPEN ' "$hp" 300 >/dev/null
    sleep 1
    rss2=$(status_kb "$SUT" VmRSS)
    touch "$godir/go3"
    wait_for_line "$out" '^HOLDING' "$hp" 300 >/dev/null
    sleep 1
    rss3=$(status_kb "$SUT" VmRSS)
    metrics=""
    [[ $t == gateway ]] && metrics=$(curl -sS --max-time 5 "${URL%/mcp}/metrics" || true)
    wait "$hp" || ANOMALIES+=("memory $t: the session client failed: $(tail -n 2 "$out" | tr '\n' ' ')")
    untrack_stop "$hp"
    while read -r line2; do ANOMALIES+=("memory $t: $line2"); done < <(grep -E '^(STREAM|CONN)_ERRORS' "$out" || true)
    sleep 1
    rss4=$(status_kb "$SUT" VmRSS)
    # fields: rss0..rss4, streams ok, conns ok, seconds to open the sessions, streams closed by
    # the server, sessions and connections (gateway /metrics)
    MEM[$t]="$rss0 $rss1 $rss2 $rss3 $rss4 $(grep -m1 '^STREAMS_OPEN' "$out" | cut -d' ' -f2)"
    MEM[$t]+=" $(grep -m1 '^CONNS_OPEN' "$out" | cut -d' ' -f2) $(cut -d' ' -f3 <<<"$line")"
    MEM[$t]+=" $(grep -m1 '^STREAMS_CLOSED_BY_SERVER' "$out" | cut -d' ' -f2)"
    MEM[$t]+=" $(awk '/^only1mcp_sessions[{ ]/ { n += $NF; f = 1 } END { print f ? n : "n/a" }' <<<"$metrics")"
    MEM[$t]+=" $(awk '/^only1mcp_connections[{ ]/ { n += $NF; f = 1 } END { print f ? n : "n/a" }' <<<"$metrics")"
    untrack_stop "$SUT"
  done
  untrack_stop "$MEM_BE"

  {
    echo "### Memory"
    echo
    echo "Idle gateway on the README's demo config (\`config/demo.toml\`: two stdio demo backends, --cores 1), 2 s after start: **$(mib "$DEMO_RSS") MiB** RSS."
    echo
    echo "RSS of the proxy (one HTTP demo backend behind it) after each phase, each added on top of the previous ones and held: $SESSIONS idle sessions (\`initialize\` + \`notifications/initialized\` over 4 keep-alive connections, then nothing); $STREAMS standalone GET SSE streams on $STREAMS of those sessions (one connection each); $IDLE_CONNS idle keep-alive connections that each sent one \`ping\`:"
    echo
    echo "| proxy | before | + $SESSIONS sessions | + $STREAMS GET streams | + $IDLE_CONNS idle conns | all closed | KiB per session | KiB per GET stream | KiB per idle conn | sessions / connections (gateway /metrics) | streams, conns open | sessions opened in s |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for t in "${MEM_TARGETS[@]}"; do
      # shellcheck disable=SC2086
      set -- ${MEM[$t]}
      printf '| %s | %s MiB | %s MiB | %s MiB | %s MiB | %s MiB | %s | %s | %s | %s / %s | %s of %s, %s of %s | %s |\n' "$t" \
        "$(mib "$1")" "$(mib "$2")" "$(mib "$3")" "$(mib "$4")" "$(mib "$5")" \
        "$(per "$1" "$2" "$SESSIONS")" "$(per "$2" "$3" "$6")" "$(per "$3" "$4" "$7")" \
        "${10}" "${11}" "$6" "$STREAMS" "$7" "$IDLE_CONNS" "$8"
    done
    echo
    echo "- KiB per item = the phase's RSS difference / the items it opened (/proc's kB are KiB); \"all closed\" = 1 s after the client exited (its sessions stay: they idle out after \`session_idle_timeout_ms\`)"
    echo "- GET streams the server closed during the 5 s hold: $(for t in "${MEM_TARGETS[@]}"; do printf '%s %s; ' "$t" "$(cut -d' ' -f9 <<<"${MEM[$t]}")"; done)"
    echo "- gateway limits set: \`max_connections_per_shard = $MAXCONN\` (default 10000), \`idle_timeout_ms = 600000\`, \`session_idle_timeout_ms = 3600000\`; \`ulimit -n\` $(ulimit -n)"
    echo
  } | emit
}

for s in $SECTIONS; do
  log "=== section $s ==="
  case $s in
    calls) section_calls ;;
    list) section_list ;;
    memory) section_memory ;;
    *) die "unknown section $s (calls, list, memory)" ;;
  esac
done

# ================================================================================================
# Verdicts against the issue's targets, and the report
# ================================================================================================
grep_warnings
verdict() { awk -v v="$1" -v op="$2" -v lim="$3" 'BEGIN { if (v == "n/a" || v == "") { print "not measured"; exit } ok = (op == "<=") ? (v + 0 <= lim + 0) : (op == "<") ? (v + 0 < lim + 0) : (v + 0 >= lim + 0); print ok ? "**met**" : "**missed**" }'; }
{
  echo "### Against the issue's targets"
  echo
  echo "| target | measured (medians, this run) | verdict |"
  echo "|---|---|---|"
  if [[ " $SECTIONS " == *" calls "* ]]; then
    m=tools/call
    for c in $CONNS; do
      r=$(ratio "$(cell $m gw1 "$c" sut)" "$(cell $m nginx "$c" sut)")
      echo "| gateway CPU per call ≤ nginx's, -c $c | gw1 $(cell $m gw1 "$c" sut) µs vs nginx $(cell $m nginx "$c" sut) µs: ratio $r | $(verdict "$r" "<=" 1) |"
    done
    r=$(ratio "$(cell $m gw1 64 rps)" "$(cell $m nginx 64 rps)")
    echo "| req/s at -c 64, --cores 1 ≥ nginx | gw1 $(cell $m gw1 64 rps) vs nginx $(cell $m nginx 64 rps): ×$r | $(verdict "$r" ">=" 1) |"
    r=$(ratio "$(cell $m gw1 64 rps)" "$(cell $m mcp-proxy 64 rps)")
    echo "| req/s at -c 64, --cores 1 ≥ 2× mcp-proxy | gw1 $(cell $m gw1 64 rps) vs mcp-proxy $(cell $m mcp-proxy 64 rps): ×$r | $(verdict "$r" ">=" 2) |"
    best=0
    bestc=""
    for c in $CONNS; do
      v=$(cell $m gw1-stdio "$c" rps)
      if [[ $v != n/a ]] && ((v > best)); then best=$v bestc=$c; fi
    done
    [[ -n $bestc ]] || best=n/a
    echo "| stdio req/s ≥ 5 × 4.2k = 21,000 | gw1-stdio $(cell $m gw1-stdio 64 rps) at -c 64, best $best at -c ${bestc:-?} | $(verdict "$best" ">=" 21000) |"
    d=$(cell $m direct 1 p50)
    ag=$(added "$(cell $m gw1 1 p50)" "$d")
    an=$(added "$(cell $m nginx 1 p50)" "$d")
    echo "| p50 added over direct at -c 1 ≤ nginx's | gw1 $ag µs, nginx $an µs (direct $d µs) | $(if [[ $an == n/a ]]; then echo "not measured"; else verdict "${ag#+}" "<=" "${an#+}"; fi) |"
    for c in $CONNS; do
      ((c >= 16)) || continue
      r=$(ratio "$(cell $m gw2 "$c" rps)" "$(cell $m gw1 "$c" rps)")
      echo "| --cores 2 ≈ 2 × --cores 1, -c $c (lower bound: shares CPU $CPU_LOAD with the load) | gw2 $(cell $m gw2 "$c" rps) vs gw1 $(cell $m gw1 "$c" rps): ×$r | $(verdict "$r" ">=" 1.8) (≥ 1.8) |"
    done
  fi
  if [[ " $SECTIONS " == *" list "* ]]; then
    m=tools/list
    big="list-$((BACKENDS * TOOLS))"
    for c in $LIST_CONNS; do
      v=$(cell $m "list-$TOOLS" "$c" p50)
      echo "| tools/list p50 < 1 ms with $TOOLS tools, -c $c | $v µs (p99 $(cell $m "list-$TOOLS" "$c" p99) µs); $((BACKENDS * TOOLS)) tools: $(cell $m "$big" "$c" p50) µs | $(verdict "$v" "<" 1000) |"
    done
    for c in $LIST_CONNS; do
      r=$(ratio "$(cell $m "$big" "$c" rps)" "$(cell $m list-tiny "$c" rps)")
      echo "| $((BACKENDS * TOOLS))-tool list ≥ 90% of tiny list's req/s, -c $c | $(cell $m "$big" "$c" rps) vs $(cell $m list-tiny "$c" rps): $r | $(verdict "$r" ">=" 0.9) |"
    done
    for c in $LIST_CONNS; do
      r=$(ratio "$(cell tools/call "$big" "$c" rps)" "$(cell tools/call list-tiny "$c" rps)")
      echo "| (the same read as tools/call with a $((BACKENDS * TOOLS))-tool catalogue vs a tiny one, -c $c) | $(cell tools/call "$big" "$c" rps) vs $(cell tools/call list-tiny "$c" rps): $r | $(verdict "$r" ">=" 0.9) |"
    done
    echo "| RSS ≤ 30 MB with $BACKENDS backends | $(mib "${T_IDLE[$big]}") MiB idle, peak $(mib "${T_PEAK[$big]}") MiB under tools/list load | $(verdict "$(awk -v k="${T_IDLE[$big]}" 'BEGIN { print k * 1024 / 1e6 }')" "<=" 30) (idle, MB) |"
  fi
  if [[ " $SECTIONS " == *" memory "* ]]; then
    echo "| RSS ≤ 15 MB, idle demo config | $(mib "$DEMO_RSS") MiB | $(verdict "$(awk -v k="$DEMO_RSS" 'BEGIN { print k * 1024 / 1e6 }')" "<=" 15) |"
    # shellcheck disable=SC2086
    set -- ${MEM[gateway]}
    kps=$(per "$1" "$2" "$SESSIONS")
    echo "| ≤ 10 KB per idle session | $kps KiB per session ($SESSIONS sessions); a GET stream $(per "$2" "$3" "$6") KiB, an idle connection $(per "$3" "$4" "$7") KiB | $(verdict "$(awk -v k="$kps" 'BEGIN { print k * 1.024 }')" "<=" 10) (session) |"
  fi
  echo
  echo "### Run"
  echo
  echo "- $STARTED; $(lscpu | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }'), $(nproc) CPUs, kernel $(uname -r)"
  echo "- command: \`RUNS=$RUNS DURATION=$DURATION perf/compare.sh\` (CONNS=\"$CONNS\", LIST_CONNS=\"$LIST_CONNS\", SECTIONS=\"$SECTIONS\")"
  echo "- pinning: wrk -t1 and every backend on CPU $CPU_LOAD; the system under test (nginx, mcp-proxy, the gateway) alone on CPU $CPU_SUT; gw2 (--cores 2) on both"
  echo "- gateway driver requested: $DRIVER; running: $(printf '%s, ' "${GW_DRIVERS[@]}" | sed 's/, $//')"
  echo "- wrk $(wrk -v 2>&1 | head -1 | awk '{ print $2 }'): -t1 -c N -d $DURATION --latency -s perf/mcp_post.lua, one initialized session per connection (cycled); $RUNS run(s) per cell, medians; warm-up $WARMUP"
  echo "- SUT CPU = utime+stime of the system under test during the run / requests (the backend for direct rows; nginx master + worker; the gateway without its stdio child, which is the backend column)"
  echo "- other load % = busy time of CPU $CPU_LOAD minus wrk and backend CPU, and of CPU $CPU_SUT minus the SUT's CPU, as % of the run (one figure for both with gw2 and for direct rows the first); runs above $MAX_NOISE% were retried (at most $MAX_TRIES tries); discarded: $DISCARDED"
  echo "- load average before: $LOADAVG_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  for ch in "${CHECKS[@]}"; do echo "- body check, $ch"; done
  if ((${#ANOMALIES[@]} > 0)); then
    echo "- ANOMALIES:"
    for a in "${ANOMALIES[@]}"; do echo "  - $a"; done
  else
    echo "- no errors, no non-2xx responses, no WARN/ERROR in the gateways' logs"
  fi
} | emit
cp "$REPORT" "$OUT"
cat "$OUT"
log "tables written to $OUT; raw wrk output in $RAW; server logs in $LOGS/"
