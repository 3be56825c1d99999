#!/usr/bin/env python3
"""concur tail beside GNU tail -F through real logrotate rotations: lines lost,
duplicated and split, per rotation config x write rate x tailer, all tailers in the
same run over the same files.

    benches/tail_rotation.py [--concur PATH] [--seconds 10] [--rates 1000,20000]
                             [--configs create,copytruncate,...] [--json FILE]

It installs logrotate with apt-get when it is missing. Four log files are written at
RATE lines/s in total by a writer that behaves like an application: it reopens its
file by name within 10 ms of a rename rotation (as after logrotate's postrotate
signal), and keeps its O_APPEND descriptor under copytruncate. logrotate -f runs
every 200 ms. When run as root, the tailers run as `nobody` (setpriv), so that
logrotate's `create` window, when the new file is still root's, is seen as a
non-root service sees it.

A line is lost if its sequence number never came out, duplicated if it came out more
than once, split if a line that came out is not one whole line the writer wrote.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

FILES = 4
LINE = re.compile(rb"^f(\d) (\d{9}) x{40}$")

CONFIGS = {
    "create": "create 0640 {user} {group}\nrotate 5\n",
    "copytruncate": "copytruncate\nrotate 5\n",
    "compress+delaycompress": "create 0640 {user} {group}\nrotate 5\ncompress\ndelaycompress\n",
    "olddir": "create 0640 {user} {group}\nrotate 5\nolddir {dir}/old\n",
    "dateext": "create 0640 {user} {group}\nrotate 5\ndateext\ndateformat -%s\n",
    "rotate-0": "create 0640 {user} {group}\nrotate 0\n",
}


def ensure_logrotate():
    if shutil.which("logrotate") or os.path.exists("/usr/sbin/logrotate"):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "logrotate"], check=False)
    if not (shutil.which("logrotate") or os.path.exists("/usr/sbin/logrotate")):
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq", "logrotate"], check=True)


def logrotate_bin():
    return shutil.which("logrotate") or "/usr/sbin/logrotate"


class Writer(threading.Thread):
    """Writes `rate` lines/s over FILES files; reopens a file renamed away."""

    def __init__(self, paths, rate, seconds):
        super().__init__(daemon=True)
        self.paths, self.rate, self.seconds = paths, rate, seconds
        self.written = [0] * len(paths)

    def run(self):
        fds = [os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for p in self.paths]
        per_tick = max(1, self.rate // 100)
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < self.seconds:
            for i, path in enumerate(self.paths):
                # Reopen once logrotate has created the new file; never create it here
                # (that would race logrotate's own create, which truncates).
                try:
                    if os.stat(path).st_ino != os.fstat(fds[i]).st_ino:
                        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                        os.close(fds[i])
                        fds[i] = fd
                except OSError:
                    pass
                share = per_tick // len(self.paths) + (1 if i < per_tick % len(self.paths) else 0)
                n = self.written[i]
                chunk = b"".join(b"f%d %09d %s\n" % (i, n + k, b"x" * 40) for k in range(share))
                os.write(fds[i], chunk)
                self.written[i] = n + share
            tick += 1
            time.sleep(max(0.0, start + tick * 0.01 - time.monotonic()))
        for fd in fds:
            os.close(fd)


def rotator(conf, state, stop):
    while not stop.is_set():
        subprocess.run([logrotate_bin(), "-f", "-s", state, conf],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stop.wait(0.2)


def cpu_seconds(pid):
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100.0
    except OSError:
        return None


def count(out_path, written):
    seen = [dict() for _ in written]
    split = 0
    with open(out_path, "rb") as out:
        for line in out:
            m = LINE.match(line.rstrip(b"\n"))
            if not m or not line.endswith(b"\n"):
                split += 1
                continue
            f, n = int(m.group(1)), int(m.group(2))
            seen[f][n] = seen[f].get(n, 0) + 1
    lost = sum(w - sum(1 for n in s if n < w) for w, s in zip(written, seen))
    dup = sum(c - 1 for s in seen for c in s.values())
    return lost, dup, split


def one(config, rate, seconds, concur, modes, as_nobody):
    work = tempfile.mkdtemp(prefix="concur-rotation-")
    os.chmod(work, 0o777)
    logs = os.path.join(work, "logs")
    os.mkdir(logs)
    os.chmod(logs, 0o755)
    os.mkdir(os.path.join(logs, "old"))
    paths = [os.path.join(logs, f"app{i}.log") for i in range(FILES)]
    for p in paths:
        open(p, "w").close()
        os.chmod(p, 0o644)
    user, group = ("nobody", "nogroup") if as_nobody else ("root", "root")
    conf = os.path.join(work, "logrotate.conf")
    with open(conf, "w") as f:
        f.write(" ".join(paths) + " {\n" + CONFIGS[config].format(user=user, group=group, dir=logs)
                + "missingok\n}\n")
    os.chmod(conf, 0o644)
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] if as_nobody else []
    tailers = []
    for mode in modes:
        out = os.path.join(work, f"{mode}.out")
        cmd = drop + [concur, "tail", "--mode", mode, "-F", "-o", out] + paths
        tailers.append((f"concur {mode}", out, subprocess.Popen(cmd, stderr=subprocess.DEVNULL, cwd=work)))
    gnu_out = os.path.join(work, "gnu.out")
    gnu = subprocess.Popen(drop + ["tail", "-F", "-q", "-n", "+1"] + paths,
                           stdout=open(gnu_out, "wb"), stderr=subprocess.DEVNULL, cwd=work)
    tailers.append(("GNU tail -F", gnu_out, gnu))
    time.sleep(0.5)
    writer = Writer(paths, rate, seconds)
    stop = threading.Event()
    rot = threading.Thread(target=rotator, args=(conf, os.path.join(work, "state"), stop), daemon=True)
    writer.start()
    rot.start()
    writer.join()
    stop.set()
    rot.join()
    time.sleep(2.5)  # let every tailer drain
    rows = []
    for name, out, proc in tailers:
        cpu = cpu_seconds(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        lost, dup, split = count(out, writer.written)
        total = sum(writer.written)
        rows.append({"config": config, "rate": rate, "tailer": name, "written": total,
                     "lost": lost, "lost_percent": 100.0 * lost / max(1, total),
                     "duplicated": dup, "split": split, "cpu_seconds": cpu,
                     "alive_at_end": proc.returncode in (0, -signal.SIGTERM)})
    shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concur", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "concur"))
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rates", default="1000,20000")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--modes", default="events,threads,mixed,async")
    ap.add_argument("--json", metavar="FILE", help="also write every row as JSON to FILE")
    args = ap.parse_args()
    ensure_logrotate()
    as_nobody = os.geteuid() == 0 and shutil.which("setpriv") is not None
    concur = os.path.abspath(args.concur)
    if as_nobody:
        # nobody must be able to run the binary: a copy in a world-readable place.
        copy = os.path.join(tempfile.mkdtemp(prefix="concur-bin-"), "concur")
        shutil.copy(concur, copy)
        os.chmod(os.path.dirname(copy), 0o755)
        os.chmod(copy, 0o755)
        concur = copy
    rows = []
    for config in args.configs.split(","):
        for rate in (int(r) for r in args.rates.split(",")):
            rows += one(config, rate, args.seconds, concur, args.modes.split(","), as_nobody)
            for r in rows[-(len(args.modes.split(",")) + 1):]:
                print(f"{r['config']:<24} {r['rate']:>6} {r['tailer']:<16} {r['written']:>8} "
                      f"{r['lost']:>7} {r['lost_percent']:>7.2f}% {r['duplicated']:>5} {r['split']:>5} "
                      f"{r['cpu_seconds'] or 0:>6.2f}", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"user": "nobody" if as_nobody else os.environ.get("USER", "?"),
                       "seconds": args.seconds, "rows": rows}, out)


if __name__ == "__main__":
    main()
