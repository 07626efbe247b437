#!/usr/bin/env bash
# Long fuzz runs, one target at a time, with libFuzzer's final figures per target.
#
#   fuzz/run.sh [-n RUNS | -t SECONDS] [-k] [-m] [TARGET...]
#
#   -n RUNS     executions per target (default 10000000 unless -t is given)
#   -t SECONDS  run each target at most this long (with -n: whichever comes first)
#   -k          keep going after a crash (libFuzzer fork mode: crashes, timeouts and OOMs are
#               saved and the run goes on); for targets with a known, not yet fixed crash
#   -m          minimise each target's corpus back into fuzz/corpus/<target> afterwards
#   -s none     build without AddressSanitizer (about three times the exec/s; no leak or
#               stack-overflow reports: run the default ASAN build for those)
#   -B          do not build: run the last build (a second run beside one in progress)
#   TARGET      default: every target in fuzz/fuzz_targets
#
# Needs the nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz from
# crates.io into target/fuzz-tools when missing. The working corpora, crash artifacts and
# logs go to target/fuzz-work/. Runs niced, one fuzzer process at a time (the machines have
# two cores). Prints one line per target: executions, exec/s, coverage (cov = edges, ft =
# features), peak RSS and what it found. A crash input is minimised into
# target/fuzz-work/artifacts/<target>/; copy it into fuzz/regressions/<target>/ once fixed
# so `cargo test --test fuzz_corpora` replays it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$ROOT/target/fuzz-work"
TOOLS="$ROOT/target/fuzz-tools"
RUNS=""
SECONDS_EACH=""
KEEP_GOING=""
MINIMISE=""
SANITIZER=address
NO_BUILD=""
while getopts "n:t:kms:B" opt; do
    case "$opt" in
        n) RUNS="$OPTARG" ;;
        t) SECONDS_EACH="$OPTARG" ;;
        k) KEEP_GOING=1 ;;
        m) MINIMISE=1 ;;
        s) SANITIZER="$OPTARG" ;;
        B) NO_BUILD=1 ;;
        *) sed -n '2,22p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
[ -n "$RUNS$SECONDS_EACH" ] || RUNS=10000000

export PATH="$TOOLS/bin:$PATH"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: the nightly toolchain is missing (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz into $TOOLS" >&2
    cargo install cargo-fuzz --locked --root "$TOOLS"
fi

cd "$ROOT"
if [ "$#" -eq 0 ]; then
    set -- $(ls fuzz/fuzz_targets | sed 's/\.rs$//')
fi
# The ASAN build in cargo-fuzz's own place, another sanitizer's beside it.
BUILD="$ROOT/fuzz/target"
[ "$SANITIZER" = address ] || BUILD="$ROOT/target/fuzz-build-$SANITIZER"
[ -n "$NO_BUILD" ] || nice -n 10 cargo +nightly fuzz build -O -a -s "$SANITIZER" --target-dir "$BUILD" >&2
BIN="$BUILD/x86_64-unknown-linux-gnu/release"
mkdir -p "$WORK/logs" "$WORK/seeds"
python3 fuzz/seeds.py "$WORK/seeds" >/dev/null

printf '%-22s %12s %9s %7s %8s %7s  %s\n' target execs exec/s cov ft rss_mb found
for t in "$@"; do
    corpus="$WORK/corpus/$t"
    art="$WORK/artifacts/$t"
    log="$WORK/logs/$t.log"
    mkdir -p "$corpus" "$art" "fuzz/corpus/$t"
    cp -n "fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
    cp -n "$WORK/seeds/$t"/* "$corpus"/ 2>/dev/null || true
    opts=(-rss_limit_mb=2048 -timeout=10 -max_len=16384 -print_final_stats=1
          -artifact_prefix="$art/")
    [ -z "$SECONDS_EACH" ] || opts+=(-max_total_time="$SECONDS_EACH")
    [ -z "$RUNS" ] || opts+=(-runs="$RUNS")
    if [ -n "$KEEP_GOING" ]; then
        opts+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    status=0
    nice -n 10 "$BIN/$t" "${opts[@]}" "$corpus" >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
    if [ "$execs" = 0 ]; then
        # Fork mode prints no final stats: the last status line has the total.
        execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    fi
    rate=$(grep -o 'stat::average_exec_per_sec: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    rate=${rate:-$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | awk '{print $2}')}
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    rss=$(grep -oE '(stat::peak_rss_mb: |rss: )[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
    found=$(ls "$art" | grep -cE '^(crash|timeout|oom|leak|slow-unit)-' || true)
    if [ "$status" -ne 0 ] && [ "$found" = 0 ]; then
        found="exit $status, see $log"
    fi
    printf '%-22s %12s %9s %7s %8s %7s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "${rss:-?}" "$found"
    for a in "$art"/crash-* "$art"/timeout-* "$art"/leak-*; do
        [ -e "$a" ] || continue
        case "$a" in *.min) continue ;; esac
        [ -e "$a.min" ] || nice -n 10 "$BIN/$t" -minimize_crash=1 -runs=20000 \
            -exact_artifact_path="$a.min" "$a" >>"$log" 2>&1 || true
    done
    if [ -n "$MINIMISE" ]; then
        rm -rf "$WORK/min/$t" && mkdir -p "$WORK/min/$t"
        # Set cover over edges only (no hit counters): a few hundred files, not thousands.
        nice -n 10 "$BIN/$t" -set_cover_merge=1 -use_counters=0 -rss_limit_mb=2048 \
            -timeout=10 -max_len=16384 \
            "$WORK/min/$t" "$corpus" >>"$log" 2>&1 || true
        rm -rf "fuzz/corpus/$t" && mv "$WORK/min/$t" "fuzz/corpus/$t"
    fi
done
