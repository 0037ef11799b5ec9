#!/usr/bin/env python3
"""Worker processes under faults, measured: respawn time after a crash (median of N),
requests lost per crash with 50 concurrent keep-alive clients, and reload time with the
shipped chain. Bounded: about 2.5 s per crash plus 10 s; loopback only.

    cargo build --release --workspace
    python3 bench/workers.py [--crashes 20] [--clients 50] [--reloads 10]

It compiles server/tests/fixtures/plugins/faulty.c (needs cc), starts target/release/server
twice on 127.0.0.1 port 0 and reads the master's log lines "serves again X ms after its
predecessor died" and "reloaded ... in X ms".
"""
import argparse, os, re, signal, socket, statistics, subprocess, sys, tempfile, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
SERVER = os.path.join(TOP, "target/release/server")
PLUGINS = os.path.join(TOP, "target/release")
CHAIN = '["hello", "request_info", "cgi_file", "no_file", "existing_file", "directory_index_file", "directory_no_index_file", "always_fail"]'


def start(tmp, cases, extra=""):
    cfg = os.path.join(tmp, "server.toml")
    with open(cfg, "w") as f:
        f.write(f'listen = "127.0.0.1:0"\nroot = "{tmp}/www"\n'
                f'plugin_dirs = ["{tmp}/plugins", "{PLUGINS}"]\ncases = {cases}\n{extra}\n')
    p = subprocess.Popen([SERVER, "--config", cfg], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    first = p.stdout.readline()
    m = re.match(r"listening on http://([\d.]+):(\d+)/", first)
    if not m:
        p.kill()
        sys.exit("server did not start: " + first + p.stderr.read())
    log = []
    threading.Thread(target=lambda: log.extend(p.stderr), daemon=True).start()
    threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
    return p, (m.group(1), int(m.group(2))), log


REQ = b"GET /1k.html HTTP/1.1\r\nHost: b\r\n\r\n"


def client(addr, stop, counts, lock):
    """Keep-alive GETs; an error is a lost request, then a new connection."""
    sock = None
    while not stop.is_set():
        try:
            if sock is None:
                sock = socket.create_connection(addr, timeout=10)
            sock.sendall(REQ)
            got = b""
            while not got.endswith(b"x" * 16):  # the 1 KiB body ends with x's
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed")
                got += chunk
            with lock:
                counts["ok"] += 1
            if b"connection: close" in got.lower():  # max_requests_per_connection reached
                sock.close()
                sock = None
        except OSError:
            with lock:
                counts["lost"] += 1
            if sock:
                sock.close()
            sock = None
    if sock:
        sock.close()


def crashes(args):
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(f"{tmp}/www")
        os.makedirs(f"{tmp}/plugins")
        with open(f"{tmp}/www/1k.html", "w") as f:
            f.write("y" * 1008 + "x" * 16)
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-I", f"{TOP}/plugin-api/include", "-o",
                        f"{tmp}/plugins/libfaulty.so",
                        f"{TOP}/server/tests/fixtures/plugins/faulty.c"], check=True)
        p, addr, log = start(tmp, '["faulty", "no_file", "existing_file", "always_fail"]',
                             "[limits]\nkeepalive_timeout = 65.0\n")
        stop, lock, counts = threading.Event(), threading.Lock(), {"ok": 0, "lost": 0}
        threads = [threading.Thread(target=client, args=(addr, stop, counts, lock))
                   for _ in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        for _ in range(args.crashes):
            # Crash whichever worker accepts this connection; then wait past the
            # back-off window (a worker that lives 2 s resets its slot's streak).
            try:
                s = socket.create_connection(addr, timeout=10)
                s.sendall(b"GET /fault/segv HTTP/1.1\r\nHost: b\r\n\r\n")
                s.recv(1)
                s.close()
            except OSError:
                pass
            time.sleep(2.5)
        stop.set()
        for t in threads:
            t.join(timeout=15)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        text = "".join(log)
        respawn = [float(x) for x in re.findall(r"serves again ([\d.]+) ms", text)]
        died = len(re.findall(r"killed by signal 11", text))
        print(f"crashes: {died} (of {args.crashes} sent); respawns timed: {len(respawn)}")
        if respawn:
            print(f"respawn, death to serving: median {statistics.median(respawn):.1f} ms, "
                  f"min {min(respawn):.1f}, max {max(respawn):.1f}")
        print(f"{args.clients} keep-alive clients: {counts['ok']} answered, {counts['lost']} lost "
              f"= {counts['lost'] / max(died, 1):.1f} lost per crash")


def reloads(args):
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(f"{tmp}/www")
        os.makedirs(f"{tmp}/plugins")
        extra = "[plugins.cgi_file]\nrun_as_root = true\n" if os.geteuid() == 0 else ""
        p, _, log = start(tmp, CHAIN, extra)
        for i in range(args.reloads):
            p.send_signal(signal.SIGHUP)
            deadline = time.time() + 20
            while time.time() < deadline and len(re.findall(r"\] reloaded ", "".join(log))) <= i:
                time.sleep(0.01)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
        times = [float(x) for x in re.findall(r"\] reloaded .* in ([\d.]+) ms", "".join(log))]
        if times:
            print(f"reload with the shipped chain (8 cases), HUP to new workers serving and old "
                  f"ones drained: median {statistics.median(times):.1f} ms of {len(times)}, "
                  f"min {min(times):.1f}, max {max(times):.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crashes", type=int, default=20)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--reloads", type=int, default=10)
    args = ap.parse_args()
    crashes(args)
    reloads(args)


if __name__ == "__main__":
    main()
