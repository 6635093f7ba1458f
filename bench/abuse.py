"""``python -m bench.abuse``: the abuse suite's attacks against one ``fastlaunch run`` (2 workers, 127.0.0.1) while a
client keeps sending plain requests; prints the table of docs/reliability.md (attacks tried, plain requests
failed, connections left open, seconds until a plain request succeeded again). Bounded: a few seconds per row."""

from __future__ import annotations

import http.client
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.measure import free_port

APP = Path(__file__).resolve().parent.parent / "tests" / "assets" / "abuse"
FASTLAUNCH = str(Path(sys.executable).parent / "fastlaunch")
KEEP_ALIVE = 2
HEADER_TIMEOUT = 3
BODY_TIMEOUT = 3
REQUEST_TIMEOUT = 2
H = b"Host: x\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLING = [
    b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 0\r\nContent-Length: 37\r\n\r\n" + SMUGGLED,
    b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\n\n" + SMUGGLED,
    b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n" + SMUGGLED,
]
OVERSIZED = [
    b"GET /" + b"a" * 4100 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(10_000)) + b"\r\n",
    b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 100_000 + b"\r\n\r\n",
]
FORGED = [
    b"GET /seen HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    b'X-Forwarded-For: 6.6.6.6" 200 "x" request_id=forged, 203.0.113.9\r\n\r\n',
    b"GET /seen HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Request-ID: one\r\nX-Request-ID: two\r\n\r\n",
    # C1 controls (a line end for str.splitlines()) and an escaped quote in the user agent of the text log.
    b'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nUser-Agent: ua\\" request_id=forged \x85\x9b\r\n\r\n',
]
TRICKLED_BODIES = [
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",  # read by the app
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",  # answered at once, body unread
]


@dataclass
class Row:
    attack: str
    tried: int
    failed: int = 0
    plain: int = 0
    leaked: int = 0
    recover_s: float = 0.0


class Plain:
    """Plain requests on fresh connections, one after another, until stopped; counts failures."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ok = self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            if get(self.port):
                self.ok += 1
            else:
                self.failed += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def get(port: int, path: str = "/") -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def raw(port: int, request: bytes, *, until_closed: bool = True) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(request)
            while sock.recv(65536) and until_closed:
                pass
        except OSError:
            pass


def sending(port: int, requests: list[bytes], *, until_closed: bool = True) -> Callable[[], None]:
    def send_all() -> None:
        for request in requests:
            raw(port, request, until_closed=until_closed)

    return send_all


def workers(master: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return []


def sockets(master: int) -> int:
    count = 0
    for pid in workers(master):
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                count += str(fd.readlink()).startswith("socket:")
            except OSError:
                continue
    return count


def recovered(port: int, since: float, limit: float = 30.0) -> float:
    while time.monotonic() - since < limit and not get(port):
        time.sleep(0.01)
    return time.monotonic() - since


def slow_clients(port: int, idle: int = 1000, slow: int = 300) -> None:
    """Open idle and trickling connections and wait (bounded) until the server has closed all of them."""
    held = []
    for n in range(idle + slow):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if n >= idle:
            sock.sendall(b"GET / HTTP/1.1\r\n")
        sock.setblocking(False)
        held.append((sock, n >= idle))
    deadline = time.monotonic() + HEADER_TIMEOUT + 10
    while held and time.monotonic() < deadline:
        for sock, trickle in list(held):
            try:
                if trickle:
                    sock.send(b"X")
            except OSError:
                pass
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:  # the 408 of a trickling head: its close follows
                continue
            sock.close()
            held.remove((sock, trickle))
        time.sleep(0.5)
    for sock, _ in held:
        sock.close()


def slow_bodies(port: int, count: int = 200) -> None:
    """Open ``count`` connections that trickle a request body a byte every 0.5 s; wait (bounded) until the
    server has closed all of them."""
    held = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(TRICKLED_BODIES[n % 2])
        sock.setblocking(False)
        held.append(sock)
    deadline = time.monotonic() + BODY_TIMEOUT + 15
    while held and time.monotonic() < deadline:
        for sock in list(held):
            try:
                sock.send(b"x")
                while sock.recv(65536):  # the 408 or the 200: the close follows
                    pass
            except BlockingIOError:
                continue
            except OSError:
                pass
            sock.close()
            held.remove(sock)
        time.sleep(0.5)
    print(f"slow bodies: {len(held)} of {count} still open", file=sys.stderr, flush=True)
    for sock in held:
        sock.close()


def stuck_sync_handlers(port: int, master: int, clients: int = 100, seconds: float = 8.0) -> None:
    """``clients`` clients calling a sync handler stuck in time.sleep under REQUEST_TIMEOUT; prints the most
    threads a worker had."""
    stop_at = time.monotonic() + seconds
    most = 0

    def client() -> None:
        while time.monotonic() < stop_at:
            get(port, "/sync-sleep")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    while time.monotonic() < stop_at:
        for pid in workers(master):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            most = max(most, int(status.split("Threads:")[1].split()[0]))
        time.sleep(0.25)
    for thread in threads:
        thread.join(15)
    print(f"stuck sync handlers: at most {most} threads in a worker", file=sys.stderr, flush=True)


def attack(port: int, master: int, name: str, tried: int, action: Callable[[], None]) -> Row:
    time.sleep(KEEP_ALIVE + 1)  # the plain client's closed connections are gone from the baseline
    before = sockets(master)
    plain = Plain(port)
    action()
    end = time.monotonic()
    seconds = recovered(port, end)
    time.sleep(1.0)  # and a second of plain traffic after it
    plain.stop()
    time.sleep(KEEP_ALIVE + 1)
    print(f"{name}: done", file=sys.stderr, flush=True)
    return Row(name, tried, plain.failed, plain.ok + plain.failed, max(0, sockets(master) - before), seconds)


def main() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8192)), hard))
    port = free_port()
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "KEEP_ALIVE": str(KEEP_ALIVE),
        "HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "BODY_TIMEOUT": str(BODY_TIMEOUT),
        "REQUEST_TIMEOUT": str(REQUEST_TIMEOUT),
        "FORWARDED_ALLOW_IPS": "*",
        "GRACEFUL_TIMEOUT": "30",
    }
    log = Path(tempfile.mkdtemp(prefix="fastlaunch-abuse-")) / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([FASTLAUNCH, "run"], cwd=APP, env=env, stdout=out, stderr=subprocess.STDOUT)
    rows: list[Row] = []
    try:
        recovered(port, time.monotonic(), limit=60)
        for _ in range(300):
            if len(workers(proc.pid)) >= 2:
                break
            time.sleep(0.1)
        print(f"serving on {port}, workers {workers(proc.pid)}", file=sys.stderr, flush=True)
        m = proc.pid
        rows.append(attack(port, m, "request smuggling shapes", 80, sending(port, SMUGGLING * 10)))
        rows.append(
            attack(
                port,
                m,
                "oversized heads (line, 10,000 headers, 100 KB)",
                60,
                sending(port, OVERSIZED * 20),
            )
        )
        rows.append(attack(port, m, "forged X-Forwarded-For / X-Request-ID", 200, sending(port, FORGED * 100)))
        rows.append(
            attack(
                port,
                m,
                "HEAD on an endless event stream",
                50,
                sending(port, [b"HEAD /events HTTP/1.1\r\nHost: x\r\n\r\n"] * 50, until_closed=False),
            )
        )
        rows.append(attack(port, m, "1,000 idle + 300 slowloris connections", 1300, lambda: slow_clients(port)))
        rows.append(attack(port, m, "200 request bodies trickling a byte every 0.5 s", 200, lambda: slow_bodies(port)))
        rows.append(
            attack(
                port,
                m,
                "100 clients on a sync handler stuck in time.sleep (REQUEST_TIMEOUT=2)",
                100,
                lambda: stuck_sync_handlers(port, m),
            )
        )

        def hup() -> None:
            for _ in range(3):
                old = set(workers(m))
                proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and (set(workers(m)) & old or len(workers(m)) < 2):
                    time.sleep(0.1)

        rows.append(attack(port, m, "SIGHUP reload ×3", 3, hup))

        def kill() -> None:
            os.kill(workers(m)[0], signal.SIGKILL)

        rows.append(attack(port, m, "SIGKILL of a worker", 1, kill))
        # A forged id would end a line (the real one is the line's last field); inside a quoted field it is text.
        forged = re.search(r"request_id=forged$", log.read_text(), re.M) is not None
        started = time.monotonic()
        proc.send_signal(signal.SIGQUIT)
        proc.wait(60)
        quit_s = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    print("| attack | tried | plain requests failed | connections left open | seconds until served again |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        failed = f"{row.failed} of {row.plain:,}"
        print(f"| {row.attack} | {row.tried:,} | {failed} | {row.leaked} | {row.recover_s:.2f} |")
    print(f"\nSIGQUIT: the master exited {quit_s:.2f} s after the signal (status {proc.returncode}).")
    print(f"Forged request id in the access log: {'yes' if forged else 'no'}. Log: {log}")


if __name__ == "__main__":
    main()
