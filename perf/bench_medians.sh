#!/usr/bin/env bash
# Prints the criterion results of the last `cargo bench --bench hot_path` as a markdown table:
# the median time per operation (criterion's `median` estimate) and its 95% confidence interval.
# Reads target/criterion/*/*/new/{benchmark,estimates}.json; needs only grep/sed/awk.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=${CRITERION_DIR:-$ROOT/target/criterion}
[[ -d $DIR ]] || {
  echo "no $DIR: run 'cargo bench --bench hot_path' first" >&2
  exit 1
}

# fmt NANOSECONDS: human unit.
fmt() {
  awk -v t="$1" 'BEGIN {
    if (t < 1e3) printf "%.1f ns", t; else if (t < 1e6) printf "%.2f µs", t / 1e3;
    else printf "%.2f ms", t / 1e6 }'
}

echo "| benchmark | median | 95% CI of the median |"
echo "|---|---:|---|"
find "$DIR" -path '*/new/estimates.json' | sort | while read -r est; do
  id=$(grep -o '"full_id":"[^"]*"' "${est%estimates.json}benchmark.json" | cut -d'"' -f4)
  # {"mean":{...},"median":{"confidence_interval":{..."lower_bound":L,"upper_bound":U},"point_estimate":P,...
  median=$(grep -o '"median":{"confidence_interval":{[^}]*},"point_estimate":[0-9.e+-]*' "$est")
  lo=$(sed -E 's/.*"lower_bound":([0-9.e+-]+).*/\1/' <<<"$median")
  hi=$(sed -E 's/.*"upper_bound":([0-9.e+-]+).*/\1/' <<<"$median")
  p=$(sed -E 's/.*"point_estimate":([0-9.e+-]+)$/\1/' <<<"$median")
  echo "| \`$id\` | $(fmt "$p") | $(fmt "$lo") – $(fmt "$hi") |"
done
