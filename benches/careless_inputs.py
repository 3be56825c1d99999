#!/usr/bin/env python3
"""Careless arguments against a concur binary: the "before and now" table in the README.

    python3 benches/careless_inputs.py target/release/concur

Each case runs in a temporary directory with stdin from /dev/null and its stderr read
as it comes (so a full pipe never stalls it). A case still running after 5 s gets
SIGTERM; one still running 2 s later gets SIGKILL. It prints the exit status (negative:
killed by that signal), the time, the peak RSS and the first words of its message.
"""
import os, resource, signal, subprocess, sys, tempfile, threading, time

exe = os.path.abspath(sys.argv[1])

CASES = [
    ["tail", "--state", "/dev/zero", "-o", "out", "a.log"],
    ["run", "--slf", "/dev/zero", "echo", ":::", "a"],
    ["run", "--resume", "--joblog", "/dev/zero", "echo", ":::", "a"],
    ["run", "-0", "echo", ":::", "a", "::::", "/dev/zero"],
    ["run", "echo", ":::", "a", "::::", "/dev/zero"],
    ["run", "-N", "4294967296", "echo", ":::", "a"],
    ["guess", "load", "--clients", "18446744073709551615"],
    ["factorize", "--repeat", "4294967296"],
    ["slow-io", "--count", "100000", "--mode", "threads", "--timeout", "1ms"],
    ["gcd", "--mode", "threads", "-j", "20000"],
    ["run", "--joblog", "fifo", "echo", ":::", "a"],
]


def run(args, cwd):
    started = time.time()
    p = subprocess.Popen([exe] + args, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    err = []
    threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True).start()
    status, fate = None, ""
    while time.time() < started + 5:
        pid, st, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            status = (st, usage)
            break
        time.sleep(0.01)
    if status is None:
        os.killpg(p.pid, signal.SIGTERM)
        fate = "SIGTERM at 5 s: "
        t = time.time()
        while time.time() < t + 2:
            pid, st, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                status = (st, usage)
                fate += "obeyed"
                break
            time.sleep(0.01)
        if status is None:
            os.killpg(p.pid, signal.SIGKILL)
            _, st, usage = os.wait4(p.pid, 0)
            status = (st, usage)
            fate += "ignored, SIGKILL"
    took = time.time() - started
    time.sleep(0.05)
    said = (err[0] if err else b"").decode(errors="replace").strip().splitlines()
    # The message, not a backtrace or clap's closing hint.
    said = next((l for l in said if l.startswith(("concur:", "error:", "fatal", "memory"))), "")
    said = said[:110].replace("|", "/")
    code = os.waitstatus_to_exitcode(status[0])
    return code, took, status[1].ru_maxrss / 1024, fate, said


with tempfile.TemporaryDirectory() as cwd:
    open(os.path.join(cwd, "a.log"), "w").write("x\n")
    os.mkfifo(os.path.join(cwd, "fifo"))
    for args in CASES:
        code, took, rss, fate, said = run(args, cwd)
        print(f"| `{' '.join(args)}` | {code} | {took:.2f} s | {rss:,.0f} MB | {fate} | {said} |")
