#!/usr/bin/env python3
"""What hostile clients do to `concur guess serve`: the figures in the README.

    python3 benches/guess_hostile.py target/release/concur flood      # RSS under a REPORT flood
    python3 benches/guess_hostile.py target/release/concur connections [N]   # N idle connections

flood: for each mode, a server whose stdout is /dev/null, then one whose stdout is a
pipe nobody reads, takes REPORT lines (which get no reply) from 4 clients sending as
fast as they can for 10 s. It prints the server's RSS every 2 s, its exit status and
time after SIGTERM (--grace 1s), and what it said about the transcript.

connections: opens N (default 19000) connections to the threaded server and holds them,
then counts the ones it serves, the ones it refuses with `ERROR server full`, and the
ones it drops without a word, and checks that it is still alive.
"""
import os, resource, select, signal, socket, subprocess, sys, threading, time

exe = sys.argv[1]
what = sys.argv[2] if len(sys.argv) > 2 else "flood"


def start(mode, stdout, *extra):
    server = subprocess.Popen(
        [exe, "guess", "serve", "--addr", "127.0.0.1:0", "--mode", mode, *extra],
        stdout=stdout, stderr=subprocess.PIPE, text=True)
    line = server.stderr.readline()
    addr = line.split("listening on ")[1].split()[0]
    return server, int(addr.rsplit(":", 1)[1])


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def flood_client(port, seconds):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PARAMS 1 1000000\nNUMBER\n")
    chunk = b"REPORT Warmer\n" * 4096
    end = time.time() + seconds
    try:
        while time.time() < end:
            s.sendall(chunk)
    except OSError:
        pass
    s.close()


def flood():
    for mode in ["async", "threads"]:
        for label in ["stdout /dev/null", "stdout a pipe nobody reads"]:
            if label.startswith("stdout /dev/null"):
                sink, keep = subprocess.DEVNULL, None
            else:
                r, w = os.pipe()
                sink, keep = w, r  # the read end stays open and unread
            server, port = start(mode, sink, "--grace", "1s")
            if keep is not None:
                os.close(sink)
            clients = [threading.Thread(target=flood_client, args=(port, 10)) for _ in range(4)]
            for c in clients:
                c.start()
            samples = []
            for _ in range(5):
                time.sleep(2)
                samples.append(f"{rss_mb(server.pid):.0f}")
            for c in clients:
                c.join()
            start_stop = time.perf_counter()
            server.send_signal(signal.SIGTERM)
            try:
                code = server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                code = "none: still running 30 s after SIGTERM, killed"
                server.kill()
                server.wait()
            took = time.perf_counter() - start_stop
            said = [l.strip() for l in server.stderr if "transcript" in l]
            print(f"{mode:<7} {label:<28} RSS MB every 2 s: {', '.join(samples)}; "
                  f"exit {code} {took:.2f} s after SIGTERM; {'; '.join(said) or 'no transcript report'}")
            if keep is not None:
                os.close(keep)


def connections(n):
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    server, port = start("threads", subprocess.DEVNULL, "--quiet")
    limit = server.stderr.readline().strip()
    socks, failed, why = [], 0, {}
    t = time.time()
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setblocking(False)
            socks.append(s)
        except OSError as e:
            failed += 1
            why[e.strerror or str(e)] = why.get(e.strerror or str(e), 0) + 1
    took = time.time() - t
    time.sleep(2)
    served = full = dropped = 0
    for s in socks:
        try:
            data = s.recv(64)
            if data.startswith(b"ERROR server full"):
                full += 1
            else:
                dropped += 1
        except BlockingIOError:
            served += 1
        except OSError:
            dropped += 1
    alive = server.poll() is None
    for s in socks:
        s.close()
    print(f"{limit}\n{n} connections in {took:.1f} s ({failed} failed to connect: {why or 'none'}): "
          f"{served} held and served, {full} refused with 'ERROR server full', "
          f"{dropped} dropped without a word; server alive: {alive}")
    if alive:
        server.send_signal(signal.SIGTERM)
    print(f"server exit status: {server.wait()}")


if what == "flood":
    flood()
else:
    connections(int(sys.argv[3]) if len(sys.argv) > 3 else 19000)
