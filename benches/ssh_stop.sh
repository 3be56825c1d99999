#!/usr/bin/env bash
# How soon the remote side stops, on a private sshd on 127.0.0.2 (this machine):
#   * `concur gcd --hosts` with its worker hung mid-task (the hidden --fault-hang-on),
#     Ctrl-C: the time from the signal until no worker process is left;
#   * `concur run --pipe -S --timeout 1 --grace 1` whose job reads its input and then
#     sleeps: the time from the timeout (when the local ssh, stopped by it, is gone)
#     until the remote sleep is gone.
# Processes are looked for every 5 ms in /proc (the "host" is this machine). Medians of
# $RUNS runs. BEFORE=path/to/an/older/concur runs the --pipe case with that build, for
# $BEFORE_WAIT seconds at most each (default 15): what is still running then is counted
# as that long.
#
# Usage: benches/ssh_stop.sh [RUNS]      (default 5; needs sshd)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
. benches/need.sh
. benches/sshd.sh
ssh_bench_start 127.0.0.2

python3 - "$concur" "${BEFORE:-}" "$RUNS" "$out" "$SSH" "$port" "${BEFORE_WAIT:-15}" <<'PY'
import os, signal, statistics, subprocess, sys, time
concur, before, runs, out, ssh, port, cap = sys.argv[1:8]
runs, cap = int(runs), float(cap)
open(os.path.join(out, "pairs"), "w").write("12 18\n")

def running(marker):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmd.startswith(marker) and state != "Z":
            return True
    return False

def running_ssh(marker):
    """Whether the local ssh of the job whose line holds `marker` is still there."""
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if cmd[0] == b"ssh" and any(marker.encode() in word for word in cmd):
                return True
    return False

def wait_gone(marker, since):
    while running(marker):
        if time.monotonic() - since > cap:
            return cap
        time.sleep(0.005)
    return time.monotonic() - since

def gcd(binary, tag):
    program = os.path.join(out, f"concur-{tag}")
    if not os.path.exists(program):
        os.symlink(binary, program)
    p = subprocess.Popen([binary, "gcd", "--pairs", "pairs", "--fault-hang-on", "0", "--ssh", ssh,
                          "--remote-concur", program, "--hosts", f"1/127.0.0.2:{port}"],
                         cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not running(f"{program} worker"):
        time.sleep(0.005)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    gone = wait_gone(f"{program} worker", sent)
    p.wait()
    subprocess.run(["pkill", "-f", f"{program} worker"])
    return gone

def pipe(binary, n):
    marker = f"sleep 44{n:03d}"
    p = subprocess.Popen([binary, "run", "--pipe", "--ssh", ssh, "-S", f"1/127.0.0.2:{port}",
                          "--timeout", "1", "--grace", "1", f"cat >/dev/null; {marker}"],
                         cwd=out, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p.stdin.write(b"x\n"); p.stdin.close()
    while not running(marker):
        time.sleep(0.005)
    # The timeout fires when the local ssh is stopped (it exits at once on SIGTERM).
    while running_ssh(marker):
        time.sleep(0.001)
    gone = wait_gone(marker, time.monotonic())
    p.wait()
    subprocess.run(["pkill", "-f", marker])
    return gone

# An older build has no --fault-hang-on: the gcd row is this build's only.
rows = [("gcd --hosts, Ctrl-C: worker gone after", lambda b, t, i: gcd(b, t), False),
        ("run --pipe -S, timeout: job gone after", lambda b, t, i: pipe(b, i), True)]
n = 0
print(f"medians of {runs} runs (ms)")
for name, measure, compare in rows:
    for label, binary in [("concur", concur)] + ([("before", before)] if before and compare else []):
        times = []
        for _ in range(runs):
            n += 1
            times.append(measure(binary, label, n))
        capped = " (still running at the cap)" if statistics.median(times) >= cap else ""
        print(f"{name:42} {label:8} {statistics.median(times)*1000:9.1f}{capped}")
PY
