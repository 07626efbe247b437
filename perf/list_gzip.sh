#!/usr/bin/env bash
# tools/list of a 5,000-tool catalogue with and without gzip: bytes on the wire and the
# client's time per answer (curl on loopback, one connection per request, median of RUNS,
# decoding included), and what the body alone takes to cross slower links (bytes / rate;
# curl's --limit-rate does not pace sub-second transfers, so that is computed). Also checks that curl --compressed decodes
# the gzip answer to exactly the identity bytes. See docs/benchmarks.md ("gzip list pages").
#
# Usage:  perf/list_gzip.sh            (from anywhere)
# Env:    GW_BIN=path    the gateway binary (default: target/release, else target/debug)
#         RUNS=21        requests per cell (the median is reported)
#         PAGE=0         [proxy] list_page_size (0: the whole catalogue in one answer)
#         LINKS="100 1000"   link speeds (Mbit/s) for the computed transfer times
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GW_BIN=${GW_BIN:-target/release/only1mcp-uring}
[[ -x $GW_BIN ]] || GW_BIN=target/debug/only1mcp-uring
RUNS=${RUNS:-21}
PAGE=${PAGE:-0}
LINKS=${LINKS:-"100 1000"}

dir=$(mktemp -d)
cat >"$dir/gw.toml" <<EOF
[proxy]
list_page_size = $PAGE

[[servers]]
id = "big"
transport = "stdio"
command = "\$self"
args = ["demo-server", "--stdio", "--name", "big"]
env = { DEMO_EXTRA_TOOLS = "4989", DEMO_PAGE_SIZE = "1000" }
EOF
"$GW_BIN" start --config "$dir/gw.toml" --port 0 --cores 1 >"$dir/out" 2>"$dir/log" &
gw=$!
trap 'kill $gw 2>/dev/null; wait $gw 2>/dev/null; rm -rf "$dir"' EXIT

for _ in $(seq 200); do
  url=$(grep -oE 'http://127\.0\.0\.1:[0-9]+/mcp' "$dir/out" || true)
  [[ -n $url ]] && break
  sleep 0.1
done
[[ -n $url ]] || { echo "the gateway did not start: $(tail -5 "$dir/log")" >&2; exit 1; }
base=${url%/mcp}
for _ in $(seq 300); do
  curl -s "$base/health" | grep -q '"tools":5000' && break
  sleep 0.1
done

body='{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
ask() { # ask <curl args...>: one stateless tools/list
  curl -s -X POST "$url" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28' \
    -H 'mcp-method: tools/list' --data "$body" "$@"
}

# The same request (same id) with and without gzip: the decoded bytes must be identical.
ask -H 'accept-encoding: identity' -o "$dir/plain"
ask --compressed -D "$dir/gz.head" -o "$dir/decoded"
grep -qi '^content-encoding: gzip' "$dir/gz.head" || { echo "no gzip answer" >&2; exit 1; }
cmp "$dir/plain" "$dir/decoded" || { echo "curl --compressed decoded other bytes" >&2; exit 1; }
echo "curl --compressed: decoded $(wc -c <"$dir/decoded") bytes, identical to the identity answer"

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo
links=""
for l in $LINKS; do links+=" body at $l Mbit/s (ms) |"; done
echo "| encoding | body bytes on the wire | header bytes | client time on loopback, median of $RUNS (ms) |$links"
echo "|---|---|---|---|$(for _ in $LINKS; do printf -- '---|'; done)"
for enc in identity gzip; do
  if [[ $enc == gzip ]]; then args=(--compressed); else args=(-H 'accept-encoding: identity'); fi
  : >"$dir/runs"
  for _ in $(seq "$RUNS"); do
    ask "${args[@]}" -o /dev/null -w '%{size_download} %{size_header} %{time_total}\n' >>"$dir/runs"
  done
  bytes=$(awk '{ print $1 }' "$dir/runs" | median)
  head=$(awk '{ print $2 }' "$dir/runs" | median)
  ms=$(awk '{ printf "%.2f\n", $3 * 1000 }' "$dir/runs" | median)
  row="| $enc | $bytes | $head | $ms |"
  for l in $LINKS; do row+=" $(awk -v b="$bytes" -v l="$l" 'BEGIN { printf "%.1f", b * 8 / (l * 1000) }') |"; done
  echo "$row"
done
sleep 1 # the control thread renders /metrics every 500 ms
echo
echo "gateway: $GW_BIN; gzip copies built: $(curl -s "$base/metrics" | awk '/^only1mcp_list_gzip_builds_total / { print $2 }')"
