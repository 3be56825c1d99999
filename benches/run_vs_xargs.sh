#!/usr/bin/env bash
# concur run against xargs -P and GNU parallel, in one run, on the same jobs:
#   seq 1 $JOBS | <runner> -j 2 echo {}
# Reports the median wall time of $RUNS runs, jobs per second, and the ratio to xargs.
# Needs a release build; installs hyperfine and GNU parallel from Debian if missing.
#
# Usage: benches/run_vs_xargs.sh [JOBS] [RUNS]     (defaults: 5000 jobs, 7 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${1:-5000}
RUNS=${2:-7}

for tool in hyperfine parallel; do
  if ! command -v "$tool" >/dev/null; then
    echo "installing $tool from Debian's packages..." >&2
    apt-get install -y "$tool" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
  fi
done
cargo build --release --quiet
concur=$PWD/target/release/concur
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$out/run.json" \
  -n "concur run" "sh -c 'seq 1 $JOBS | $concur run -j 2 -- echo {} >/dev/null'" \
  -n "concur run --keep-order" "sh -c 'seq 1 $JOBS | $concur run -j 2 --keep-order -- echo {} >/dev/null'" \
  -n "xargs -P 2" "sh -c 'seq 1 $JOBS | xargs -P 2 -I{} echo {} >/dev/null'" \
  -n "GNU parallel -j 2" "sh -c 'seq 1 $JOBS | parallel -j 2 echo {} >/dev/null'" \
  >&2

python3 - "$out/run.json" "$JOBS" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
jobs = int(sys.argv[2])
base = next(r["median"] for r in results if r["command"] == "xargs -P 2")
print(f"{jobs} jobs of `echo {{}}`, -j 2, median of {len(results[0]['times'])} runs")
print(f"{'runner':<26} {'median s':>9} {'jobs/s':>8} {'vs xargs':>9}")
for r in results:
    print(f"{r['command']:<26} {r['median']:>9.3f} {jobs / r['median']:>8.0f} {base / r['median']:>8.2f}x")
PY
