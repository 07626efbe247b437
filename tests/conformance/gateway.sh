#!/usr/bin/env bash
# The official MCP conformance suite against the GATEWAY, on both drivers:
#   bash tests/conformance/gateway.sh
# For each driver (uring, epoll) and each backend transport (stdio, http), start
# target/debug/only1mcp-uring in front of the built-in demo server with its conformance
# fixture (DEMO_CONFORMANCE=1), unprefixed (`prefix = false`) so the suite's fixed names
# resolve, with two shards so sessions are handed between them, and run
# tests/conformance/run.sh against the gateway's URL: 0.1.16 active suite, 0.2 with
# --requirements 2025-11-25, and 0.2 with --requirements 2026-07-28 (expected failures, all
# unscored, in tests/conformance/gateway/baseline-0.2-2026-07-28.yml). The fixture backend is
# dual-era, so 2025 clients go through its 2025 sessions and 2026 clients through its
# stateless era. Every process is stopped at exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BIN="$ROOT/target/debug/only1mcp-uring"
[ -x "$BIN" ] || { echo "conformance: ERROR: $BIN not built (cargo build)" >&2; exit 1; }
WORK="$ROOT/target/conformance-gateway"
rm -rf "$WORK"
mkdir -p "$WORK"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT

wait_line() { # file pattern -> first match, within 30 s
    for _ in $(seq 300); do
        if grep -qo "$2" "$1" 2>/dev/null; then grep -o "$2" "$1" | head -1; return 0; fi
        sleep 0.1
    done
    echo "conformance: ERROR: no '$2' in $1:" >&2
    cat "$1" >&2 || true
    return 1
}

wait_ready() { # addr
    for _ in $(seq 300); do
        if curl -sf "http://$1/health" | grep -q '"status":"ok"'; then return 0; fi
        sleep 0.1
    done
    echo "conformance: ERROR: gateway at $1 never became ready" >&2
    curl -s "http://$1/health" >&2 || true
    return 1
}

FAILED=0
for driver in uring epoll; do
    for transport in stdio http; do
        name="$driver-$transport"
        cfg="$WORK/$name.toml"
        if [ "$transport" = stdio ]; then
            cat >"$cfg" <<TOML
[[servers]]
id = "fixture"
transport = "stdio"
command = "\$self"
args = ["demo-server", "--stdio"]
prefix = false
env = { DEMO_CONFORMANCE = "1", DEMO_PAGE_SIZE = "100" }
TOML
        else
            DEMO_CONFORMANCE=1 DEMO_PAGE_SIZE=100 "$BIN" demo-server --http 127.0.0.1:0 >"$WORK/$name-demo.out" 2>"$WORK/$name-demo.err" &
            PIDS+=($!)
            demo=$(wait_line "$WORK/$name-demo.out" 'http://127.0.0.1:[0-9]*/mcp')
            cat >"$cfg" <<TOML
[[servers]]
id = "fixture"
transport = "http"
url = "$demo"
prefix = false
TOML
        fi
        "$BIN" start --config "$cfg" --port 0 --cores 2 --driver "$driver" >"$WORK/$name.out" 2>"$WORK/$name.err" &
        gw_pid=$!
        PIDS+=($gw_pid)
        addr=$(wait_line "$WORK/$name.out" '127.0.0.1:[0-9]*')
        wait_ready "$addr"
        echo "==> conformance through the gateway: driver=$driver backend=$transport ($addr)"
        if ! CONFORMANCE_BASELINES="$ROOT/tests/conformance/gateway" bash tests/conformance/run.sh "http://$addr/mcp" with-2026; then
            FAILED=1
            echo "conformance: FAILED for $name; gateway log: $WORK/$name.err" >&2
        fi
        kill "$gw_pid" 2>/dev/null || true
        wait "$gw_pid" 2>/dev/null || true
    done
done
[ "$FAILED" = 0 ] && echo "conformance through the gateway: all runs passed"
exit "$FAILED"
