#!/usr/bin/env bash
# `-k` behind a slow first job: one 10 s job, then N fast ones (`sleep 0`), at -j 2.
# With the slow job holding the printing only, the other slot runs all N meanwhile and
# the run takes max(10 s, N fast jobs on one slot); when it held the running (a window
# of 64 jobs at -j 2), it took 10 s plus the rest after it. Compares, in one run:
# concur -k, concur without -k (the floor: order costs nothing), GNU parallel -k, and
# BEFORE=path/to/an/older/concur's -k if given. Median of $RUNS runs (hyperfine).
#
# Usage: benches/keep_order_stall.sh [N] [RUNS] [SLOW_SECONDS]   (defaults: 10000, 3, 10)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}
RUNS=${2:-3}
SLOW=${3:-10}
. benches/need.sh
need hyperfine parallel
bench_start
{ echo "$SLOW"; seq "$N" | sed "s/.*/0/"; } > "$out/input"

commands=(
  -n "concur run -k" "sh -c '$concur run -k -j 2 sleep {} < $out/input > /dev/null'"
  -n "concur run (no -k)" "sh -c '$concur run -j 2 sleep {} < $out/input > /dev/null'"
  -n "GNU parallel -k" "sh -c 'parallel --will-cite -k -j 2 sleep {} < $out/input > /dev/null'"
)
if [ -n "${BEFORE:-}" ]; then
  commands+=(-n "concur run -k (before)" "sh -c '$BEFORE run -k -j 2 sleep {} < $out/input > /dev/null'")
fi
hyperfine -N --runs "$RUNS" --export-json "$out/k.json" "${commands[@]}" >&2

python3 - "$out/k.json" "$N" "$SLOW" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
n, slow = int(sys.argv[2]), float(sys.argv[3])
med = {r["command"]: r["median"] for r in results}
base = med["concur run (no -k)"]
print(f"-k -j 2: one {slow:g} s job, then {n} x `sleep 0`; median of {len(results[0]['times'])} runs")
print(f"{'runner':<26} {'median s':>9} {'vs no -k':>9} {'min-max s':>14}")
for r in results:
    print(f"{r['command']:<26} {r['median']:>9.2f} {r['median'] / base:>8.2f}x "
          f"{min(r['times']):>6.2f}-{max(r['times']):<6.2f}")
PY
