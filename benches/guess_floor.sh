#!/usr/bin/env bash
# The guess servers against the floor: the same protocol on bare epoll (`guess serve
# --mode epoll`: a thread per core, no runtime, no timers, no logging). In one run, with
# the same load generator, each server in its own process:
#   * the server's CPU time per session, median of $RUNS runs taken in turn
#     (epoll, async, threads, epoll, async, threads, ...), and the ratio to epoll's;
#   * its system calls per session, by name (`guess load --syscalls`: one more run of
#     each with `strace -c -f` attached to the server).
# BEFORE=path/to/an/older/concur adds that build's async server as a row (its CPU time
# only), to show what a change bought.
#
# Usage: benches/guess_floor.sh [CLIENTS] [RUNS]      (defaults: 2000, 9; needs strace)
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=${1:-2000}
RUNS=${2:-9}
. benches/need.sh
need strace
bench_start
ulimit -n "$(ulimit -Hn)"

servers=(epoll async threads)
for _ in $(seq "$RUNS"); do
  for server in "${servers[@]}"; do
    "$concur" guess load --server-process --mode "$server" --clients "$CLIENTS" --json >> "$out/cpu.jsonl"
  done
  if [ -n "${BEFORE:-}" ]; then
    "$BEFORE" guess load --server-process --mode async --clients "$CLIENTS" --json |
      sed 's/"server":"async"/"server":"async (before)"/' >> "$out/cpu.jsonl"
  fi
done
for server in "${servers[@]}"; do
  "$concur" guess load --syscalls --mode "$server" --clients "$CLIENTS" --json >> "$out/calls.jsonl"
done

python3 - "$out/cpu.jsonl" "$out/calls.jsonl" "$CLIENTS" <<'PY'
import json, statistics, sys
cpu = [json.loads(l) for l in open(sys.argv[1])]
calls = {r["server"]: r for r in map(json.loads, open(sys.argv[2]))}
clients = int(sys.argv[3])
by = {}
for r in cpu:
    by.setdefault(r["server"], []).append(r["server_cpu_us_per_session"])
floor = statistics.median(by["epoll"])
print(f"{clients} clients (two games each), server CPU per session, median of {len(by['epoll'])} runs in turn")
print(f"{'server':<16} {'µs/session':>10} {'vs epoll':>9} {'min-max µs':>14} {'calls/session':>14}")
for name, values in by.items():
    m = statistics.median(values)
    c = calls.get(name, {}).get("server_syscalls_per_session")
    cs = f"{c:>14.2f}" if c is not None else f"{'':>14}"
    print(f"{name:<16} {m:>10.1f} {m / floor:>8.2f}x {min(values):>6.1f}-{max(values):<7.1f}{cs}")
print("\nsystem calls per session (one traced run each; failed calls in brackets)")
for name, r in calls.items():
    failed = r.get("server_failed_syscalls") or {}
    row = sorted(r["server_syscalls"].items(), key=lambda kv: -kv[1])
    shown = [f"{k} {v:.2f}" + (f" [{failed[k]:.2f}]" if failed.get(k, 0) >= 0.005 else "")
             for k, v in row if v >= 0.005]
    print(f"{name:<8} {r['server_syscalls_per_session']:>5.2f}: " + ", ".join(shown))
PY
