"""Hostile client text in the text access log of a real ``fastlaunch run``: every value read back by a parser of
the documented format (docs/observability.md) is the value sent, and no value adds a line or a field."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from abuse_kit import Server, exchange, serve, status_of
from support import wait_until

# The documented text access line: quoted fields escape ", \ and control characters (\xHH).
LINE = re.compile(
    r'^\[[^\]]+\] \[\d+\] \[INFO\] (?P<client>\S+) - "(?P<method>[A-Z]+) (?P<target>(?:[^"\\]|\\.)*) '
    r'HTTP/(?P<version>[\d.]+)" (?P<status>\d{3}) (?P<ms>[\d.]+)ms "(?P<ua>(?:[^"\\]|\\.)*)" request_id=(?P<rid>\S+)$'
)


def unescape(text: str) -> str:
    return re.sub(r"\\x([0-9a-f]{2})|\\(.)", lambda m: chr(int(m[1], 16)) if m[1] else m[2], text)


USER_AGENTS = [
    b'ua\\" request_id=forged',  # ends the quoted field early for a parser that reads escapes, unless escaped
    b"next\x85line",  # C1 NEL: str.splitlines() ends a line there
    b"csi\x9b31m",  # C1 CSI: a terminal escape
    b"del\x7f",
    b"tab\there",
    b"\\x41 is not A",  # a literal backslash sequence must not read back as an escape
    b"trailing\\",
    b"caf\xe9",
]
TARGETS = [b'/a"b', b"/back\\slash", b"/q?x=\x85"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("access") / "server.log") as running_server:
        yield running_server


def request(server: Server, target: bytes, user_agent: bytes) -> int:
    data, _ = exchange(
        server.port,
        b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nUser-Agent: " + user_agent + b"\r\nConnection: close\r\n\r\n",
        timeout=10,
    )
    return status_of(data)


def test_hostile_values_read_back_as_sent(server: Server) -> None:
    sent: list[tuple[str, str]] = []
    for target, user_agent in [(b"/", ua) for ua in USER_AGENTS] + [(t, b"plain") for t in TARGETS]:
        if request(server, target, user_agent) in (400, 0):  # refused by the HTTP parser (DEL): never logged
            continue
        sent.append((target.decode("latin-1"), user_agent.decode("latin-1")))
    assert {ua for _, ua in sent} >= {'ua\\" request_id=forged', "next\x85line", "csi\x9b31m", "trailing\\"}
    assert request(server, b"/", b"last") == 200
    assert wait_until(lambda: '"last"' in server.log.read_text(encoding="latin-1"), timeout=10)

    text = server.log.read_text(encoding="utf-8", errors="strict")
    access = [line for line in text.splitlines() if ' - "GET ' in line]  # splitlines: every Unicode line end
    parsed = []
    for line in access:
        match = LINE.match(line)
        assert match, f"not a line of the documented format: {line!r}"
        parsed.append((unescape(match["target"]), unescape(match["ua"])))
    assert parsed[-1] == ("/", "last")
    for pair in sent:
        assert pair in parsed, (pair, parsed)
    assert "request_id=forged" not in [m["rid"] for m in map(LINE.match, access) if m]
    server.good()
