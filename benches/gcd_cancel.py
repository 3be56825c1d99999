#!/usr/bin/env python3
"""Exit latency of `concur gcd --mode processes` after Ctrl-C, with a respawn racing it.

Each run starts a pool of 2 workers on requests of about 10 s each, waits 100-500 ms,
kills one worker with SIGKILL (so its slot starts a replacement) and, 0-5 ms later,
sends SIGINT to concur. It measures the time from SIGINT to concur's exit, and checks
that no worker outlives it.

    python3 benches/gcd_cancel.py target/release/concur [RUNS]
"""
import os, random, signal, statistics, subprocess, sys, time

exe = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 100
random.seed(1)


def children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == str(pid) and fields[0] != "Z":
            kids.append(int(entry))
    return kids


latencies, leftovers, codes = [], 0, {}
for _ in range(runs):
    p = subprocess.Popen([exe, "gcd", "--mode", "processes", "-j", "2", "--scale", "3000"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while len(children(p.pid)) < 2 and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(random.uniform(0.1, 0.5))
    workers = children(p.pid)
    if workers:
        os.kill(workers[0], signal.SIGKILL)
    time.sleep(random.uniform(0, 0.005))
    start = time.perf_counter()
    p.send_signal(signal.SIGINT)
    code = p.wait()
    latencies.append((time.perf_counter() - start) * 1000)
    codes[code] = codes.get(code, 0) + 1
    # Any worker of this run still alive (they would now be children of init).
    alive = [w for w in workers if os.path.exists(f"/proc/{w}") and
             open(f"/proc/{w}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"]
    leftovers += len(alive)

latencies.sort()
over = sum(1 for l in latencies if l > 100)
print(f"{runs} runs: exit after SIGINT p50 {statistics.median(latencies):.1f} ms, "
      f"p99 {latencies[int(0.99 * (runs - 1))]:.1f} ms, max {latencies[-1]:.1f} ms; "
      f"{runs - over} of {runs} within 100 ms; exit codes {codes}; workers left behind: {leftovers}")
