#!/usr/bin/env bash
# concur run against xargs -P and GNU parallel, in one run, on the same jobs:
#   seq 1 $JOBS | <runner> -j 2 echo {}
# plus concur's -k, --tag and --line-buffer, each against plain concur run; then
# --pipe on a $PIPE_MB MB file against GNU parallel's --pipe and --pipepart.
# Reports the median wall time of $RUNS runs and ratios to a baseline from the same run.
# Needs a release build; installs hyperfine and GNU parallel from Debian if missing.
# rust-parallel (the Rust peer: `cargo install rust-parallel`) is added when it is on
# PATH. NO_GNU=1 leaves GNU parallel's two slow rows out; NO_PIPE=1 the --pipe part.
#
# Usage: benches/run_vs_xargs.sh [--svg FILE] [JOBS] [RUNS] [PIPE_MB]   (defaults: 20000, 5, 1000)
set -euo pipefail
# --svg FILE (first): also draw the jobs/s of the first comparison as a chart.
. "$(dirname "$0")/svg.sh"
shift "$SVG_ARGS"
cd "$(dirname "$0")/.."
JOBS=${1:-20000}
RUNS=${2:-5}
PIPE_MB=${3:-1000}

. benches/need.sh
need hyperfine parallel
bench_start

runners=(
  -n "concur run" "sh -c 'seq 1 $JOBS | $concur run -j 2 echo {} >/dev/null'"
  -n "concur run -k" "sh -c 'seq 1 $JOBS | $concur run -j 2 -k echo {} >/dev/null'"
  -n "concur run --tag" "sh -c 'seq 1 $JOBS | $concur run -j 2 --tag echo {} >/dev/null'"
  -n "concur run --line-buffer" "sh -c 'seq 1 $JOBS | $concur run -j 2 --line-buffer echo {} >/dev/null'"
  -n "xargs -P 2" "sh -c 'seq 1 $JOBS | xargs -P 2 -I{} echo {} >/dev/null'"
)
if command -v rust-parallel >/dev/null; then
  runners+=(-n "rust-parallel -j 2" "sh -c 'seq 1 $JOBS | rust-parallel -j 2 echo >/dev/null'")
fi
if [ -z "${NO_GNU:-}" ]; then
  runners+=(
    -n "GNU parallel -j 2" "sh -c 'seq 1 $JOBS | parallel --will-cite -j 2 echo {} >/dev/null'"
    -n "GNU parallel -j 2 -k" "sh -c 'seq 1 $JOBS | parallel --will-cite -j 2 -k echo {} >/dev/null'"
  )
fi
hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/run.json" "${runners[@]}" >&2

if [ -n "${NO_PIPE:-}" ]; then
  echo '{"results": []}' > "$out/pipe.json"
else
(seq 1 200000000 || true) | head -c "${PIPE_MB}000000" > "$out/big.txt"
hyperfine -N --warmup 1 --runs 3 --export-json "$out/pipe.json" \
  -n "concur run --pipe" "sh -c '$concur run --pipe --block 1M wc -l < $out/big.txt >/dev/null'" \
  -n "concur run --pipe --block 4M" "sh -c '$concur run --pipe --block 4M wc -l < $out/big.txt >/dev/null'" \
  -n "GNU parallel --pipe" "sh -c 'parallel --will-cite --pipe --block 1M wc -l < $out/big.txt >/dev/null'" \
  -n "GNU parallel --pipepart" "sh -c 'parallel --will-cite --pipepart -a $out/big.txt --block 1M wc -l >/dev/null'" \
  >&2
fi

jobs_chart "$concur" "$out/run.json" "$JOBS" \
  "concur run against xargs -P and GNU parallel" \
  "$JOBS echo jobs, 2 at a time, $RUNS runs"

python3 - "$out/run.json" "$out/pipe.json" "$JOBS" "$PIPE_MB" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))["results"]
pipe = json.load(open(sys.argv[2]))["results"]
jobs, mb = int(sys.argv[3]), int(sys.argv[4])
med = {r["command"]: r["median"] for r in run}
print(f"{jobs} jobs of `echo {{}}`, -j 2, median of {len(run[0]['times'])} runs")
print(f"{'runner':<26} {'median s':>9} {'jobs/s':>8} {'vs xargs':>9} {'vs concur':>10} {'min-max s':>14}")
for r in run:
    print(f"{r['command']:<26} {r['median']:>9.3f} {jobs / r['median']:>8.0f} "
          f"{med['xargs -P 2'] / r['median']:>8.2f}x {r['median'] / med['concur run']:>9.2f}x "
          f"{min(r['times']):>6.2f}-{max(r['times']):<6.2f}")
if not pipe:
    sys.exit(0)
print(f"\n--pipe: {mb} MB through `wc -l`, median of {len(pipe[0]['times'])} runs")
base = next(r["median"] for r in pipe if r["command"] == "GNU parallel --pipe")
for r in pipe:
    print(f"{r['command']:<30} {r['median']:>7.3f} s {mb / 1000 / r['median']:>6.2f} GB/s "
          f"{base / r['median']:>6.2f}x GNU --pipe")
PY
