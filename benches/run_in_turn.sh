#!/usr/bin/env bash
# `concur run`, `-k` and `--tag` on the same jobs, taken in turn (plain, -k, --tag,
# plain, ...) so that a slow stretch of the machine falls on all three alike;
# hyperfine runs each command's runs back to back. Prints each variant's median wall
# time, its ratio to plain's, its range and its mean.
#
# Usage: benches/run_in_turn.sh [JOBS] [ROUNDS]      (defaults: 20000, 7)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${1:-20000}
ROUNDS=${2:-7}
cargo build --release --quiet
concur=$PWD/target/release/concur
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$ROUNDS"); do
  for variant in plain -k --tag; do
    flag=$([ "$variant" = plain ] || echo "$variant")
    start=$(date +%s.%N)
    # shellcheck disable=SC2086 # an empty flag is no argument
    seq 1 "$JOBS" | "$concur" run -j 2 $flag echo {} > /dev/null
    end=$(date +%s.%N)
    echo "$variant $start $end" >> "$out"
  done
done
python3 - "$out" "$JOBS" "$ROUNDS" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, start, end = line.split()
    runs[name].append(float(end) - float(start))
plain = statistics.median(runs["plain"])
print(f"{sys.argv[2]} jobs of `echo {{}}`, -j 2, {sys.argv[3]} rounds taken in turn")
print(f"{'variant':<8} {'median s':>9} {'vs plain':>9} {'min-max s':>14} {'mean s':>8}")
for name, times in runs.items():
    m = statistics.median(times)
    print(f"{name:<8} {m:>9.3f} {m / plain:>8.3f}x {min(times):>6.2f}-{max(times):<7.2f}"
          f"{statistics.mean(times):>8.3f}")
PY
