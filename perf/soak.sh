#!/usr/bin/env bash
# Soak: an hour of mixed MCP traffic through the gateway while its config is reloaded every
# minute and a backend is killed every five, with the gateway's RSS, fds, sessions, threads
# and children sampled every 10 s. Ends with a computed verdict: flat or not. See
# perf/README.md ("Soak") and docs/reliability.md ("Soak") for what it does and reports.
#
# Usage:  perf/soak.sh                                  (from anywhere; ~1 h 2 min)
#         DURATION=180 RELOAD_EVERY=20 KILL_EVERY=60 perf/soak.sh     (a short check)
# Env:    DURATION=3600     seconds of traffic
#         SAMPLE_EVERY=10   seconds between samples
#         RELOAD_EVERY=60   seconds between config reloads (the first at half of it)
#         KILL_EVERY=300    seconds between backend kills, alternating: the HTTP backend `web`
#                           (SIGKILL, restarted on the same port DOWN_FOR s later), then the
#                           stdio backend `side` (SIGKILL; the gateway restarts it)
#         DOWN_FOR=5        seconds `web` stays dead
#         RATE=200          requests per second, all traffic together (an upper bound)
#         WORKERS=8 STREAMS=4   driver threads: request scenarios, GET stream holders
#         CORES=2 DRIVER=auto   gateway --cores and --driver
#         SESSION_IDLE_S=60 server.session_idle_timeout_ms / 1000 (abandoned sessions end)
#         GRACE_S=15        after a kill (or `web`'s restart), errors on the killed backend
#                           within this many seconds are expected; any other error is not
#         RSS_TOL=5         % RSS may grow over the second half of the traffic and still be flat
#         OUT=perf/results/soak-<UTC date>   prefix of the outputs:
#             OUT.csv  the samples        OUT.md  summary to paste into docs/reliability.md
#             OUT.svg  the curves         OUT-logs/  gateway and backend logs, events,
#                                         the driver's errors and counts, the configs
# Exit status: 0 when the verdict is flat, 1 when not (or on a failure to run).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-3600}
SAMPLE_EVERY=${SAMPLE_EVERY:-10}
RELOAD_EVERY=${RELOAD_EVERY:-60}
KILL_EVERY=${KILL_EVERY:-300}
DOWN_FOR=${DOWN_FOR:-5}
RATE=${RATE:-200}
WORKERS=${WORKERS:-8}
STREAMS=${STREAMS:-4}
CORES=${CORES:-2}
DRIVER=${DRIVER:-auto}
SESSION_IDLE_S=${SESSION_IDLE_S:-60}
GRACE_S=${GRACE_S:-15}
RSS_TOL=${RSS_TOL:-5}
OUT=${OUT:-perf/results/soak-$(date -u +%Y%m%d-%H%M%S)}
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/only1mcp-uring

LOG_TAG=soak.sh
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh" # log, die, track + the exit trap that kills and reaps, status_kb

for v in DURATION SAMPLE_EVERY RELOAD_EVERY KILL_EVERY DOWN_FOR RATE WORKERS STREAMS CORES \
  SESSION_IDLE_S GRACE_S RSS_TOL; do
  [[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v=${!v}: a positive whole number, please"
done
((DOWN_FOR < KILL_EVERY)) || die "DOWN_FOR must be shorter than KILL_EVERY"
((DURATION >= 6 * SAMPLE_EVERY)) || die "DURATION must be at least 6 samples (6 * SAMPLE_EVERY)"
for c in curl ps python3 cargo; do command -v "$c" >/dev/null || die "$c is required"; done

LOGS=$OUT-logs
CSV=$OUT.csv
EVENTS=$LOGS/events.tsv
CFG=$LOGS/soak.toml
rm -rf "$LOGS" # a rerun with the same OUT must not read the last run's driver status
mkdir -p "$LOGS"
: >"$EVENTS"

# Also stop the gateway's stdio children if the script is interrupted while they run: they
# are not this shell's children, so add them (by PID) to what the lib's trap kills and reaps.
GW_PID=""
# shellcheck disable=SC2317 # run by the EXIT trap
soak_exit() {
  local rc=$?
  ((rc == 130 || rc == 143)) && log "interrupted: stopping every process started, by PID"
  if [[ -n $GW_PID ]] && kill -0 "$GW_PID" 2>/dev/null; then
    # shellcheck disable=SC2046 # one PID per word
    track $(ps -o pid= --ppid "$GW_PID" 2>/dev/null || true)
  fi
  cleanup "$rc" "$BASH_COMMAND" "${FUNCNAME[*]:-main}"
}
trap soak_exit EXIT

# untrack PID: forget a process this script already reaped, so that the exit trap never
# signals a PID the kernel may have given to someone else since.
untrack() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# --- clock and events ----------------------------------------------------------------------
now_ms() {
  local t=${EPOCHREALTIME//[.,]/}
  echo $((t / 1000))
}
T0_MS=$(now_ms) # reset when the traffic starts
elapsed() { awk -v d=$(($(now_ms) - T0_MS)) 'BEGIN { printf "%.1f", d / 1000 }'; }
# event NAME DETAIL: one line of events.tsv (elapsed s, unix s, name, detail) and the log.
event() {
  printf '%s\t%s\t%s\t%s\n' "$(elapsed)" "$EPOCHREALTIME" "$1" "${2:-}" >>"$EVENTS"
  log "t=$(elapsed)s $1 ${2:-}"
}

log "building --release"
cargo build --release --quiet --bin only1mcp-uring

# --- backends and gateway ------------------------------------------------------------------
# The HTTP demo backend `web`; restarted on the same address after each kill. The demo
# servers serve their fixture resources (DEMO_CONFORMANCE) so that resources/read works.
WEB_PID=""
WEB_ADDR=127.0.0.1:0
WEB_N=0
start_web() {
  WEB_N=$((WEB_N + 1))
  DEMO_CONFORMANCE=1 "$BIN" demo-server --http "$WEB_ADDR" --name web \
    >"$LOGS/web-$WEB_N.log" 2>&1 &
  WEB_PID=$!
  track "$WEB_PID"
  local line
  line=$(wait_for_line "$LOGS/web-$WEB_N.log" 'demo-server listening on http://' "$WEB_PID")
  WEB_URL=$(grep -oE 'http://[^ ]+/mcp' <<<"$line")
  WEB_ADDR=${WEB_URL#http://}
  WEB_ADDR=${WEB_ADDR%/mcp}
}
start_web
log "HTTP backend web: pid $WEB_PID at $WEB_URL"

# write_config N: the config of reload N (0 = the starting one, and the one restored at the
# end). Odd N add the stdio server `extra` and a tool deny list on `side`; every N >= 1
# gives `web` a new description for `echo`. Each reload therefore adds or removes a server
# (a child process starts or stops) and changes two (`web`'s pools and upstream sessions
# are rebuilt; `side`'s process is replaced).
write_config() {
  local n=$1
  cat <<EOF
# perf/soak.sh, reload $n
[server]
session_idle_timeout_ms = $((SESSION_IDLE_S * 1000))
shutdown_grace_ms = 3000

[metrics]
socket = "$TMP/metrics.sock"

[[servers]]
id = "demo"
transport = "stdio"
command = "\$self"
args = ["demo-server", "--stdio"]
env = { DEMO_CONFORMANCE = "1" }

[[servers]]
id = "side"
transport = "stdio"
command = "\$self"
args = ["demo-server", "--stdio", "--name", "side"]
env = { DEMO_CONFORMANCE = "1" }
EOF
  if ((n % 2)); then echo 'tools_deny = ["crash", "garbage"]'; fi
  cat <<EOF

[[servers]]
id = "web"
transport = "http"
url = "$WEB_URL"
timeout_ms = 5000
health_interval_ms = 1000
health_timeout_ms = 1000
breaker_cooldown_ms = 1000
EOF
  if ((n > 0)); then printf '[servers.descriptions]\necho = "Echo, as of reload %s."\n' "$n"; fi
  if ((n % 2)); then
    cat <<'EOF'

[[servers]]
id = "extra"
transport = "stdio"
command = "$self"
args = ["demo-server", "--stdio", "--name", "extra"]
EOF
  fi
}
write_config 0 >"$CFG"
cp "$CFG" "$LOGS/soak-0.toml"

"$BIN" start --config "$CFG" --port 0 --cores "$CORES" --driver "$DRIVER" \
  >"$LOGS/gateway.log" 2>&1 &
GW_PID=$!
track "$GW_PID"
GW_LINE=$(wait_for_line "$LOGS/gateway.log" 'only1mcp-uring listening on http://' "$GW_PID")
GW_URL=$(grep -oE 'http://[^ ]+/mcp' <<<"$GW_LINE")
BASE_URL=${GW_URL%/mcp}
for i in $(seq 1 150); do
  health=$(curl -sS --max-time 2 "$BASE_URL/health" 2>/dev/null || true)
  [[ $health == *'"status":"ok"'* && $(grep -o '"state":"ready"' <<<"$health" | wc -l) -eq 3 ]] && break
  kill -0 "$GW_PID" 2>/dev/null || die "gateway exited: $(tail -5 "$LOGS/gateway.log")"
  ((i < 150)) || die "gateway not ready after 15 s: $health"
  sleep 0.1
done
GW_DRIVER=$(grep -oE 'driver: [a-z_]+' <<<"$GW_LINE" | cut -d' ' -f2)
log "gateway pid $GW_PID at $GW_URL: $GW_LINE"

# --- sampling ------------------------------------------------------------------------------
# children: "count zombies" of the gateway's direct children.
children() { ps -o stat= --ppid "$GW_PID" 2>/dev/null | awk '{ n++ } /^Z/ { z++ } END { print n + 0, z + 0 }'; }
SCRAPE_FAILS=0
LAST_KIDS="" # the gateway's children at the last sample: stopped by the exit trap if it dies
echo "elapsed_s,phase,rss_kb,fds,threads,sessions,connections,pool,children,zombies,reloads,reload_errors,requests,errors,cpu_s" >"$CSV"
# sample PHASE: one CSV row. Metrics are -1 when the scrape failed (counted).
sample() {
  local phase=$1 m rss thr fds sess conns pool ch z rl rle req=0 err=0 _t _n cpu
  rss=$(status_kb "$GW_PID" VmRSS)
  cpu=$(awk -v t="$(cpu_ticks "$GW_PID")" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
  thr=$(awk '$1 == "Threads:" { print $2 }' "/proc/$GW_PID/status")
  fds=$(find "/proc/$GW_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  read -r ch z < <(children)
  LAST_KIDS=$(ps -o pid= --ppid "$GW_PID" 2>/dev/null | tr '\n' ' ')
  if m=$(curl -sS --max-time 5 "$BASE_URL/metrics" 2>/dev/null) && [[ $m == *only1mcp_sessions* ]]; then
    read -r sess conns pool rl rle < <(awk '
      /^only1mcp_sessions\{/ { s += $NF }
      /^only1mcp_connections\{/ { c += $NF }
      /^only1mcp_backend_pool_connections\{/ { p += $NF }
      /^only1mcp_config_reloads_total / { r = $NF }
      /^only1mcp_config_reload_errors_total / { e = $NF }
      END { print s + 0, c + 0, p + 0, r + 0, e + 0 }' <<<"$m")
  else
    SCRAPE_FAILS=$((SCRAPE_FAILS + 1))
    sess=-1 conns=-1 pool=-1 rl=-1 rle=-1
  fi
  [[ -r $LOGS/driver/status ]] && read -r _t req err _n <"$LOGS/driver/status"
  echo "$(elapsed),$phase,$rss,$fds,$thr,$sess,$conns,$pool,$ch,$z,$rl,$rle,$req,$err,$cpu" >>"$CSV"
}

# --- faults and reloads --------------------------------------------------------------------
RELOADS=0
reload() {
  RELOADS=$((RELOADS + 1))
  local n=${1:-$RELOADS} how
  write_config "$n" >"$CFG.new"
  cp "$CFG.new" "$LOGS/soak-$n.toml"
  # Three ways, in turn: in place (the watcher sees a write), by rename (an editor's save),
  # by rename and SIGHUP (the watcher and the signal both fire; the second finds no change).
  case $((RELOADS % 3)) in
    1) cat "$CFG.new" >"$CFG" && rm -f "$CFG.new" && how="write" ;;
    2) mv "$CFG.new" "$CFG" && how="rename" ;;
    0) mv "$CFG.new" "$CFG" && kill -HUP "$GW_PID" && how="rename+SIGHUP" ;;
  esac
  event reload "n=$n how=$how extra=$((n % 2)) expect_children=$((2 + n % 2))"
}
WEB_DOWN_UNTIL=0
kill_web() {
  local pid=$WEB_PID
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  untrack "$pid"
  WEB_PID=""
  WEB_DOWN_UNTIL=$(($(now_ms) + DOWN_FOR * 1000))
  event kill_web "pid=$pid"
}
restart_web() {
  start_web
  WEB_DOWN_UNTIL=0
  event restart_web "pid=$WEB_PID"
}
kill_side() {
  local pid
  pid=$(ps -o pid=,args= --ppid "$GW_PID" | awk '/--name side/ && !/extra/ { print $1; exit }')
  if [[ -z $pid ]]; then
    event kill_side "none: no running side process"
    return
  fi
  kill -KILL "$pid" 2>/dev/null || true # the gateway's child: the gateway reaps it
  event kill_side "pid=$pid"
}

# --- the run -------------------------------------------------------------------------------
mkdir -p "$LOGS/driver"
T0_MS=$(now_ms)
sample base
event start "url=$GW_URL gateway_pid=$GW_PID rate=$RATE workers=$WORKERS streams=$STREAMS cores=$CORES"
python3 "$ROOT/perf/soak_load.py" "$GW_URL" --duration $((DURATION + 60)) --rate "$RATE" \
  --workers "$WORKERS" --streams "$STREAMS" --out "$LOGS/driver" 2>"$LOGS/driver.log" &
DRV_PID=$!
track "$DRV_PID"

next_sample=0
next_reload=$((RELOAD_EVERY * 500)) # ms: the first reload at half a period
next_kill=$((KILL_EVERY * 1000))
kills=0
GW_DIED=""
while :; do
  t=$(($(now_ms) - T0_MS))
  ((t < DURATION * 1000)) || break
  if ! kill -0 "$GW_PID" 2>/dev/null; then
    wait "$GW_PID" && rc=0 || rc=$?
    untrack "$GW_PID"
    event gateway_died "exit status $rc; its children at the last sample: ${LAST_KIDS:-none}"
    for k in $LAST_KIDS; do grep -qsa demo-server "/proc/$k/cmdline" && track "$k"; done
    GW_DIED=1
    break
  fi
  kill -0 "$DRV_PID" 2>/dev/null || die "the load driver exited early: $(tail -5 "$LOGS/driver.log")"
  if ((t >= next_sample)); then
    sample load
    next_sample=$((next_sample + SAMPLE_EVERY * 1000))
  fi
  if ((t >= next_reload)); then
    reload
    next_reload=$((next_reload + RELOAD_EVERY * 1000))
  fi
  if ((WEB_DOWN_UNTIL > 0 && $(now_ms) >= WEB_DOWN_UNTIL)); then restart_web; fi
  if ((t >= next_kill)); then
    kills=$((kills + 1))
    if ((kills % 2)); then kill_web; else kill_side; fi
    next_kill=$((next_kill + KILL_EVERY * 1000))
  fi
  sleep 0.2
done

if [[ -z $GW_DIED ]]; then
  sample load
  drv_cpu=$(awk -v t="$(cpu_ticks "$DRV_PID")" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", t / hz }')
  kill -TERM "$DRV_PID" 2>/dev/null || true
  wait "$DRV_PID" || log "the load driver exited with status $?"
  untrack "$DRV_PID"
  event traffic_stopped "driver_cpu_s=$drv_cpu"
  if ((WEB_DOWN_UNTIL > 0)); then restart_web; fi
  # Back to the starting config, then idle: sessions must all end (DELETEd or expired after
  # SESSION_IDLE_S), children and fds must come back to where they started.
  reload 0
  settle=$((SESSION_IDLE_S * 5 / 4 + 2 * SAMPLE_EVERY))
  log "settling for $settle s (sessions expire after $SESSION_IDLE_S s idle)"
  end=$(($(now_ms) + settle * 1000))
  while (($(now_ms) < end)); do
    sleep "$SAMPLE_EVERY"
    kill -0 "$GW_PID" 2>/dev/null || break
    sample settle
  done
  # Stop the gateway as an operator would; every child must be gone with it.
  kids=$(ps -o pid= --ppid "$GW_PID" | tr '\n' ' ')
  stop_start=$(now_ms)
  kill -TERM "$GW_PID"
  wait "$GW_PID" && rc=0 || rc=$?
  untrack "$GW_PID"
  left=0
  for k in $kids; do kill -0 "$k" 2>/dev/null && left=$((left + 1)); done
  event gateway_stopped "exit=$rc ms=$(($(now_ms) - stop_start)) children=$(wc -w <<<"$kids") left=$left"
fi
GW_PID=""

# --- report --------------------------------------------------------------------------------
set +e
python3 "$ROOT/perf/soak_report.py" --csv "$CSV" --events "$EVENTS" --logs "$LOGS" \
  --out "$OUT" --grace "$GRACE_S" --rss-tol "$RSS_TOL" --scrape-fails "$SCRAPE_FAILS" \
  --machine "$(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $(rustc --version | cut -d' ' -f1-2), driver ${GW_DRIVER:-?}" \
  --params "DURATION=$DURATION SAMPLE_EVERY=$SAMPLE_EVERY RELOAD_EVERY=$RELOAD_EVERY KILL_EVERY=$KILL_EVERY DOWN_FOR=$DOWN_FOR RATE=$RATE WORKERS=$WORKERS STREAMS=$STREAMS CORES=$CORES DRIVER=$DRIVER SESSION_IDLE_S=$SESSION_IDLE_S"
verdict=$?
set -e
log "samples: $CSV; summary: $OUT.md; plot: $OUT.svg; logs: $LOGS/"
if ((verdict != 0)); then
  DIED=1 # the exit trap: a reported verdict, not a failed command
  log "verdict: NOT flat (or the report failed: status $verdict)"
fi
exit "$verdict"
