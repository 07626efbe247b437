# shellcheck shell=bash
# Shared building blocks of perf/load.sh and perf/compare.sh. Source it, do not run it.
#
# The sourcing script sets LOG_TAG (e.g. load.sh) before sourcing, and gets:
#   log/die                 messages on stderr, prefixed with [LOG_TAG]
#   PIDS, TMP, track        every process started is recorded (track PID), killed and reaped at
#                           exit by the EXIT trap, which also removes the scratch directory TMP
#   secs_of, need_cmd       duration parsing; a tool installed with apt-get when missing
#   wait_for_line           wait for a process to print a line
#   cpu_ticks, cpu_busy, reaped_ticks, status_kb, sum_ticks, sum_kb   /proc accounting
#   mcp_post, init_session  one MCP POST with curl; initialize + notifications/initialized
#   field, us_per_req, pct_of_run, range, median, mib                 numbers for the tables

LOG_TAG=${LOG_TAG:-perf}
CLK_TCK=$(getconf CLK_TCK)

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
DIED=""
die() {
  printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2
  DIED=1
  exit 1
}

# --- processes: every one we start is recorded, killed and reaped at exit -------------------
PIDS=()
JOB_PID="" # a foreground job run in the background and waited for (wrk), stopped by the trap
TMP=$(mktemp -d "${TMPDIR:-/tmp}/only1mcp-perf.XXXXXX")
# track PID...: kill and reap these at exit (also processes that are not this shell's children,
# such as a server's own children: they are killed, and `wait` skips them).
track() { PIDS+=("$@"); }
# cleanup RC COMMAND STACK: the EXIT trap. A non-zero exit that did not come from die() or a
# signal is a command that failed under `set -e`: say which, with the function stack.
cleanup() {
  local rc=$1 pid
  trap - EXIT INT TERM
  if ((rc != 0 && rc != 130 && rc != 143)) && [[ -z $DIED ]]; then
    printf '[%s] ERROR: exit %s: "%s" failed (in %s)\n' "$LOG_TAG" "$rc" "$2" "$3" >&2
  fi
  for pid in "${PIDS[@]}" ${JOB_PID:+"$JOB_PID"}; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}" ${JOB_PID:+"$JOB_PID"}; do
    # Give each a moment to exit, then force it; `wait` reaps it either way.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
  exit "$rc"
}
trap 'cleanup $? "$BASH_COMMAND" "${FUNCNAME[*]:-main}"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# secs_of DURATION: a wrk duration (5s, 1m, ...) in whole seconds, for safety timeouts.
secs_of() {
  local d=$1
  case $d in
    *ms) echo 1 ;;
    *s) echo "${d%s}" ;;
    *m) echo $((${d%m} * 60)) ;;
    *h) echo $((${d%h} * 3600)) ;;
    *) echo "$d" ;;
  esac
}

# need_cmd CMD PACKAGE: install PACKAGE with apt-get if CMD is missing, and say so.
need_cmd() {
  local cmd=$1 pkg=$2 sudo=""
  command -v "$cmd" >/dev/null && return 0
  [[ $(id -u) -eq 0 ]] || sudo=sudo
  log "$cmd not found: installing it with '${sudo:+sudo }apt-get install -y $pkg'"
  command -v apt-get >/dev/null || die "no apt-get here; install $pkg and rerun"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "$pkg" >/dev/null
  command -v "$cmd" >/dev/null || die "$pkg install failed ($cmd still missing)"
}

# wait_for_line FILE REGEX PID [SECONDS]: prints the first matching line once it appears
# (10 s by default); dies if PID exits first.
wait_for_line() {
  local file=$1 re=$2 pid=$3 limit=${4:-10} line
  for _ in $(seq 1 $((limit * 10))); do
    line=$(grep -m1 -E "$re" "$file" 2>/dev/null || true)
    if [[ -n $line ]]; then
      printf '%s\n' "$line"
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || {
      tail -n 30 "$file" >&2
      die "process $pid exited before printing /$re/"
    }
    sleep 0.1
  done
  tail -n 30 "$file" >&2
  die "timed out waiting for /$re/ in $file"
}

# cpu_ticks PID: utime+stime of the whole process (all threads, live and exited), in ticks.
cpu_ticks() {
  local stat
  stat=$(<"/proc/$1/stat")
  stat=${stat##*) } # fields after "(comm) ": state is field 3, utime 14, stime 15
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${12} + ${13}))
}

# sum_ticks PID...: cpu_ticks summed over processes (0 for one that is gone).
sum_ticks() {
  local t=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] && t=$((t + $(cpu_ticks "$p" 2>/dev/null || echo 0)))
  done
  echo "$t"
}

# cpu_busy CPU: user+nice+system+irq+softirq+steal ticks of one CPU since boot (/proc/stat).
cpu_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# reaped_ticks: utime+stime of this shell's reaped children (wrk, once it has exited).
reaped_ticks() {
  local stat
  stat=$(<"/proc/$$/stat")
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  echo $((${14} + ${15}))
}

# status_kb PID FIELD: a VmXXX line of /proc/PID/status, in kB.
status_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# sum_kb FIELD PID...: status_kb summed over processes.
sum_kb() {
  local f=$1 k=0 p v
  shift
  for p in "$@"; do
    v=$(status_kb "$p" "$f" 2>/dev/null || true)
    k=$((k + ${v:-0}))
  done
  echo "$k"
}

# mcp_post URL SESSION BODY HEADERFILE: one POST with the MCP client headers; prints the body.
# Sends `Authorization: $GW_AUTH` when URL is $GW_URL and GW_AUTH is set (load.sh AUTH=...).
mcp_post() {
  local url=$1 sid=$2 body=$3 hdr=$4
  local args=(-sS --max-time 10 -D "$hdr" -X POST "$url"
    -H 'content-type: application/json'
    -H 'accept: application/json, text/event-stream')
  [[ -n $sid ]] && args+=(-H "mcp-session-id: $sid")
  [[ $url == "${GW_URL:-}" && -n ${GW_AUTH:-} ]] && args+=(-H "authorization: $GW_AUTH")
  curl "${args[@]}" --data-binary "$body"
}

# init_session URL: initialize + notifications/initialized; prints "SESSION VERSION".
init_session() {
  local url=$1 hdr=$TMP/init.hdr body sid ver status
  body=$(mcp_post "$url" "" '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"only1mcp-perf","version":"1"}}}' "$hdr") ||
    die "initialize at $url failed"
  sid=$(awk 'tolower($1) == "mcp-session-id:" { gsub(/\r/, "", $2); print $2 }' "$hdr")
  [[ -n $sid ]] || die "initialize at $url returned no mcp-session-id header: $(head -c 300 <<<"$body")"
  ver=$(grep -o '"protocolVersion":"[^"]*"' <<<"$body" | head -1 | cut -d'"' -f4 || true)
  mcp_post "$url" "$sid" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "$hdr" >/dev/null ||
    die "notifications/initialized at $url failed"
  status=$(head -1 "$hdr" | awk '{ print $2 }')
  [[ $status == 202 || $status == 200 ]] || die "notifications/initialized at $url answered HTTP $status"
  echo "$sid ${ver:-}"
}

# field NAME LINE: the value of NAME=value in a RESULT line.
field() { grep -oE "(^| )$1=[^ ]+" <<<"$2" | cut -d= -f2; }

# us_per_req TICKS REQUESTS: µs of CPU per request from a tick delta.
us_per_req() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "n/a" }'; }

# pct_of_run TICKS RUN_US: ticks as % of a run of RUN_US µs (negative values are rounding: 0).
pct_of_run() { awk -v t="$1" -v hz="$CLK_TCK" -v d="$2" 'BEGIN { p = t / hz * 1e8 / d; if (p < 0) p = 0; printf "%.0f", p }'; }

# range / median: of the numbers on stdin (space or newline separated).
range() { tr ' ' '\n' | awk 'NF' | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f–%.0f", lo, hi }'; }
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# mib KB: kB as MiB with one decimal.
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
