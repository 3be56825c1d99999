#!/usr/bin/env bash
# --pipepart: `wc -l` over a $SIZE_MB MB file on every core, concur against GNU
# parallel in the same run, at GNU parallel's default part size (--block -10: ten parts
# per job slot) and at --block 1M (many small jobs). Baselines from the same run: one
# `wc -l` on the file, and `--pipe` (the data passes through the runner).
# Reports the median wall time of $RUNS runs, GB/s, and ratios.
# Needs a release build; installs hyperfine and GNU parallel from Debian if missing.
#
# Usage: benches/pipepart.sh [SIZE_MB] [RUNS]   (defaults: 2000, 5)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-2000}
RUNS=${2:-5}
. benches/need.sh
need hyperfine parallel
bench_start
big=$out/big.txt
(seq 1 400000000 || true) | head -c "${SIZE_MB}000000" > "$big"
lines=$(wc -l < "$big")
# Every runner must count every line, or its time means nothing.
for cmd in "$concur run --pipepart -a $big wc -l" "$concur run --pipepart --block 1M -a $big wc -l" \
           "parallel --will-cite --pipepart -a $big wc -l"; do
  got=$($cmd | awk '{s+=$1} END {print s}')
  [ "$got" = "$lines" ] || { echo "pipepart.sh: '$cmd' counted $got lines, not $lines" >&2; exit 1; }
done
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/pp.json" \
  -n "wc -l (one process)" "wc -l $big" \
  -n "concur run --pipepart" "$concur run --pipepart -a $big wc -l" \
  -n "GNU parallel --pipepart" "parallel --will-cite --pipepart -a $big wc -l" \
  -n "concur run --pipepart --block 1M" "$concur run --pipepart --block 1M -a $big wc -l" \
  -n "GNU parallel --pipepart --block 1M" "parallel --will-cite --pipepart --block 1M -a $big wc -l" \
  -n "concur run --pipe --block 1M" "sh -c '$concur run --pipe --block 1M wc -l < $big'" \
  >&2
python3 - "$out/pp.json" "$SIZE_MB" "$(nproc)" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
mb, cores = int(sys.argv[2]), sys.argv[3]
med = {r["command"]: r["median"] for r in results}
print(f"`wc -l` over {mb} MB on {cores} cores, median of {len(results[0]['times'])} runs")
print(f"{'runner':<36} {'median s':>9} {'GB/s':>6} {'vs GNU same block':>18}")
for r in results:
    name = r["command"]
    gnu = name.replace("concur run", "GNU parallel")
    vs = f"{med[gnu] / r['median']:>17.2f}x" if gnu != name and gnu in med else f"{'':>18}"
    print(f"{name:<36} {r['median']:>9.3f} {mb / 1000 / r['median']:>6.2f} {vs}")
PY
