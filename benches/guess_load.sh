#!/usr/bin/env bash
# concur guess servers against the book's Python asyncio server, in one run, with the
# same load generator (`concur guess load`, async clients, each playing both games).
# Each server runs in its own process (so clients and server do not share the file
# limit), with its transcript printed to /dev/null as the book's server prints it.
# Reports sessions/s, latency, failures, and the server's own CPU time per session.
#
# Usage: benches/guess_load.sh          (needs python3 for the baseline rows)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
concur=$PWD/target/release/concur
ulimit -n "$(ulimit -Hn)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

# run NAME CLIENTS COMMAND...: start the server, load it, print a row, stop it.
run() {
  local name=$1 clients=$2
  shift 2
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$@" "$port" >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  local before after json
  before=$(cpu_ticks "$pid")
  json=$("$concur" guess load --addr "127.0.0.1:$port" --clients "$clients" --json || true)
  after=$(cpu_ticks "$pid")
  # SIGTERM: background jobs start with SIGINT ignored, which Python then keeps.
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 - "$name" "$json" "$((after - before))" "$ticks_per_second" <<'PY'
import json, sys
name, report, ticks, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu_us = ticks / hz * 1e6 / max(report["sessions"], 1)
print(f"{name:<24} {report['clients']:>7} {report['sessions_per_second']:>10.0f} {report['p50_ms']:>8.2f} "
      f"{report['p99_ms']:>8.2f} {report['failures']:>8} {cpu_us:>12.0f} {report['peak_rss_mb']:>10.1f}")
PY
}

# `exec`, so that the background job's pid is the server's own (for its CPU time).
serve_async() { exec "$concur" guess serve --mode async --addr "127.0.0.1:$1"; }
serve_threads() { exec "$concur" guess serve --mode threads --addr "127.0.0.1:$1"; }
serve_python() { exec python3 benches/python/guess_book.py "$1"; }

echo "server                   clients  sessions/s  p50 ms   p99 ms  failures  server µs/session  client RSS MB"
for clients in 1000 5000 10000; do run "concur async" "$clients" serve_async; done
for clients in 1000 5000 10000; do run "concur threads" "$clients" serve_threads; done
if command -v python3 >/dev/null; then
  for clients in 1000 5000; do run "Python asyncio (book)" "$clients" serve_python; done
fi
