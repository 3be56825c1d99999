#!/usr/bin/env bash
# A host added to `--slf` mid-run that does not answer: how much it delays the jobs of
# the host that works. A private sshd serves 127.0.0.2 (2 slots); jobs are
# `sleep 0.1; echo {}`, fed one at a time as fast as they run. After 1 s, a line naming
# a silent host is added to the login file: 127.0.0.4 on a port whose listener accepts
# the TCP connection and never says a word, so `ssh` waits for its banner until its
# 10 s connect timeout. For each run, the largest gap between two consecutive lines of
# output, and between two consecutive job starts (from the joblog), over 12 s after the
# addition; and the same in a run where nothing is added. Medians of $RUNS runs, taken
# in turn (quiet, silent host added, quiet, ...).
# BEFORE=path/to/an/older/concur adds that build's runs with the silent host.
#
# Usage: benches/slf_stall.sh [RUNS]      (default 5; needs sshd)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
. benches/need.sh
. benches/sshd.sh
ssh_bench_start 127.0.0.2

python3 - "$concur" "${BEFORE:-}" "$RUNS" "$out" "$SSH" "$port" <<'PY'
import os, socket, statistics, subprocess, sys, threading, time
concur, before, runs, out, ssh, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]

def run(binary, add_silent):
    silent = socket.socket()
    silent.bind(("127.0.0.4", 0))
    silent.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in iter(int, 1)], daemon=True).start()
    hosts = os.path.join(out, "hosts")
    with open(hosts, "w") as f:
        f.write(f"2/127.0.0.2:{port}\n")
    log = os.path.join(out, "log")
    if os.path.exists(log):
        os.remove(log)
    p = subprocess.Popen([binary, "run", "--ssh", ssh, "--slf", hosts, "--joblog", log,
                          "sleep 0.1; echo {}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=out)
    # Input as fast as it is taken: a line per job, up to 15 s of jobs.
    def feed():
        try:
            for i in range(1, 301):
                p.stdin.write(f"{i}\n".encode()); p.stdin.flush()
        except BrokenPipeError:
            pass
        p.stdin.close()
    threading.Thread(target=feed, daemon=True).start()
    stamps, added = [], None
    start = time.monotonic()
    for line in p.stdout:
        now = time.monotonic()
        stamps.append(now)
        if added is None and now - start >= 1.0:
            added = now
            if add_silent:
                with open(hosts, "a") as f:
                    f.write(f"127.0.0.4:{silent.getsockname()[1]}\n")
    p.wait()
    window = [t for t in stamps if added <= t <= added + 12.0]
    out_gap = max(b - a for a, b in zip([added] + window, window + [added + 12.0]))
    starts = []
    for l in open(log).read().splitlines()[1:]:
        starts.append(float(l.split("\t")[2]))
    starts.sort()
    # The joblog's clock is the wall clock: the window is placed by the first start.
    t0 = starts[0] + (added - stamps[0]) - 0.1
    ws = [t for t in starts if t0 <= t <= t0 + 12.0]
    start_gap = max(b - a for a, b in zip([t0] + ws, ws + [t0 + 12.0]))
    silent.close()
    return out_gap, start_gap

rows = {"quiet": [], "silent host added": []}
if before:
    rows["silent host added (before)"] = []
for _ in range(runs):
    rows["quiet"].append(run(concur, False))
    rows["silent host added"].append(run(concur, True))
    if before:
        rows["silent host added (before)"].append(run(before, True))
base = statistics.median(g for g, _ in rows["quiet"])
print(f"largest gap in 12 s after the addition, medians of {runs} runs (jobs: sleep 0.1; echo, 2 slots)")
print(f"{'run':30} {'output gap':>12} {'start gap':>12} {'output gap - quiet':>20}")
for name, values in rows.items():
    og = statistics.median(g for g, _ in values)
    sg = statistics.median(s for _, s in values)
    print(f"{name:30} {og*1000:10.1f} ms {sg*1000:10.1f} ms {(og-base)*1000:17.1f} ms")
PY
