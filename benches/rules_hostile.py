#!/usr/bin/env python3
"""What hostile clients do to `concur life rules-server`: the figures in the README.

    python3 benches/rules_hostile.py target/release/concur noread       # clients that never read
    python3 benches/rules_hostile.py target/release/concur connections [N]   # N idle connections
    python3 benches/rules_hostile.py target/release/concur trickle     # a server that trickles

noread: clients connect and send requests as fast as the server takes them, never
reading a reply, for 10 s: one client of valid requests, one of malformed requests
(state 7, whose error replies are longer than the requests), then two of valid ones.
It prints the server's RSS every 2 s and 2 s after the clients have gone.

connections: N (default 20500) connections are opened from two processes (each has
its own descriptor limit) and held. It counts the ones greeted, the ones refused with
a reason, and the ones that failed; the server's RSS, its open descriptors and the
lines it logged; then whether a new client is served once the idle timeout (10 s
here) has closed the idle ones.

trickle: a fake server sends the greeting one byte every 1.8 s; it times how long
`concur life --rules ADDR --io-timeout 2s` takes to give up.
"""
import os, socket, struct, subprocess, sys, threading, time

exe = sys.argv[1]
what = sys.argv[2] if len(sys.argv) > 2 else "noread"


def start(*extra):
    server = subprocess.Popen(
        [exe, "life", "rules-server", "--addr", "127.0.0.1:0", "--latency", "100ms", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = server.stderr.readline()
    addr = line.split("listening on ")[1].split()[0]
    lines = []
    threading.Thread(target=lambda: lines.extend(server.stderr), daemon=True).start()
    return server, int(addr.rsplit(":", 1)[1]), lines


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def request(i, state=0):
    return struct.pack("<IIIBBH", i, 1, 1, state, 3, 0)


def never_reads(port, seconds, state, sent):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(0.5)
    chunk = b"".join(request(i, state) for i in range(4096))
    end = time.time() + seconds
    while time.time() < end:
        try:
            sent[0] += s.send(chunk)
        except socket.timeout:
            continue  # blocked: the server stopped reading us
        except OSError:
            break  # closed: the server gave up on us
    s.close()


def noread():
    for label, states in [("1 client, valid requests", [0]),
                          ("1 client, malformed requests (state 7)", [7]),
                          ("2 clients, valid requests", [0, 0])]:
        server, port, lines = start()
        time.sleep(0.2)
        sent = [[0] for _ in states]
        clients = [threading.Thread(target=never_reads, args=(port, 10, st, sent[i]))
                   for i, st in enumerate(states)]
        for c in clients:
            c.start()
        samples = []
        for _ in range(5):
            time.sleep(2)
            samples.append(f"{rss_mb(server.pid):.1f}")
        for c in clients:
            c.join()
        time.sleep(2)
        after = rss_mb(server.pid)
        server.terminate()
        server.wait()
        total = sum(s[0] for s in sent) / 2**20
        print(f"{label}: RSS MB at 2,4,6,8,10 s: {', '.join(samples)}; "
              f"2 s after the clients left: {after:.1f}; requests the server took: {total:.1f} MiB")
        for line in lines:
            if "stopped reading" in line:
                print("   server:", line.strip())
                break


def hold(port, count, out):
    """A child process: opens `count` connections, reports, then holds them until stdin closes."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks, greeted, refused, failed = [], 0, 0, 0
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
        except OSError:
            failed += 1
    # Every connection's first bytes, or nothing within 10 s in all (not per socket).
    import selectors
    waiting = selectors.DefaultSelector()
    for s in socks:
        waiting.register(s, selectors.EVENT_READ)
    deadline = time.time() + 10
    while waiting.get_map() and time.time() < deadline:
        for key, _ in waiting.select(timeout=max(0, deadline - time.time())):
            waiting.unregister(key.fileobj)
            try:
                first = key.fileobj.recv(8)
            except OSError:
                first = b""
            if first == b"LIFE\x01\x00\x00\x00":
                greeted += 1
            elif first[:8] == b"LIFE\x01\x00\x01\x00":
                refused += 1
            else:
                failed += 1
    failed += len(waiting.get_map())  # silent for 10 s: neither served nor refused
    out.write(f"{greeted} {refused} {failed}\n")
    out.flush()
    sys.stdin.read()


def connections(n):
    server, port, lines = start("--idle-timeout", "10s")
    time.sleep(0.2)
    halves = [n // 2, n - n // 2]
    opened = time.time()
    holders = [subprocess.Popen([sys.executable, __file__, exe, "hold", str(port), str(h)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for h in halves]
    counts = [0, 0, 0]  # greeted, refused, failed or silent
    for h in holders:
        for i, v in enumerate(h.stdout.readline().split()):
            counts[i] += int(v)
    fds = len(os.listdir(f"/proc/{server.pid}/fd"))
    print(f"{n} connections: {counts[0]} greeted, {counts[1]} refused with a reason, "
          f"{counts[2]} failed or silent for 10 s; server RSS {rss_mb(server.pid):.1f} MB, "
          f"{fds} descriptors open, {len(lines)} lines logged so far")
    for line in lines:
        if "refused" in line:
            print("   server:", line.strip())
            break
    alive = server.poll() is None
    # A new client while the idle ones are still held: refused, with the reason.
    run = subprocess.run([exe, "life", "--strategy", "async", "--rules", f"127.0.0.1:{port}", "--print", "none"],
                         capture_output=True, text=True)
    print(f"server alive: {alive}; a new client now: exit {run.returncode}: {run.stderr.strip()[:160]}")
    started = time.time()
    while True:
        run = subprocess.run([exe, "life", "--strategy", "async", "--rules", f"127.0.0.1:{port}", "--print", "none"],
                             capture_output=True, text=True)
        if run.returncode == 0 or time.time() - started > 60:
            break
        time.sleep(0.5)
    print(f"a new client served again {time.time() - opened:.1f} s after the first connection "
          f"was opened (idle timeout 10 s; opening all took {started - opened:.1f} s): "
          f"exit {run.returncode}")
    for h in holders:
        h.stdin.close()
        h.wait()
    server.terminate()
    server.wait()
    print(f"server logged {len(lines)} lines in all")


def trickle():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]

    def one(conn):
        try:
            for byte in b"LIFE\x01\x00\x00\x00":
                conn.send(bytes([byte]))
                time.sleep(1.8)
            time.sleep(60)
        except OSError:
            pass

    def serve():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    started = time.time()
    run = subprocess.run([exe, "life", "--rules", f"127.0.0.1:{port}", "--io-timeout", "2s"],
                         capture_output=True, text=True)
    print(f"exit {run.returncode} after {time.time() - started:.1f} s: {run.stderr.strip()[:200]}")


if what == "noread":
    noread()
elif what == "connections":
    connections(int(sys.argv[3]) if len(sys.argv) > 3 else 20500)
elif what == "trickle":
    trickle()
elif what == "hold":
    hold(int(sys.argv[3]), int(sys.argv[4]), sys.stdout)
