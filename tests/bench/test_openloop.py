"""bench/openloop.py is open-loop: against a server that accepts connections and never answers, every due
request is still sent, each on a connection of its own, and each times out."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading

from support import ROOT

sys.path.insert(0, str(ROOT))

from bench.openloop import Step, run_steps  # noqa: E402


def test_requests_are_sent_on_schedule_whatever_the_server_does() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:  # accepts and holds every connection, answering nothing
        while not done.is_set() and len(accepted) < 200:
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept)
    acceptor.start()
    step = Step(rate=20, seconds=1)
    try:
        # The deadline outlasts the step: a closed-loop client would have sent one request per connection.
        # Two paths, as the example service's endpoints are loaded: taken in turn.
        asyncio.run(run_steps(port, ["/a", "/b"], [step], deadline=3.0))
    finally:
        done.set()
        acceptor.join(timeout=10)
        lines = []
        for conn in accepted:
            conn.settimeout(5)
            lines.append(conn.recv(4096).split(b"\r\n", 1)[0])
            conn.close()
        listener.close()
    assert len(step.fates) == 20
    assert all(fate.timed_out for fate in step.fates)
    assert len(accepted) == 20  # all twenty in flight at once, none waiting for another's answer
    assert sorted(fate.due for fate in step.fates) == [n / 20 for n in range(20)]
    assert sorted(lines) == [b"GET /a HTTP/1.1"] * 10 + [b"GET /b HTTP/1.1"] * 10
