"""A real ``fastlaunch run`` where httptools cannot be imported (hidden by a stand-in that raises ImportError):
the workers fall back to Uvicorn's h11 protocol, one startup warning names every protection that is then off,
and what h11 still bounds (a whole head at 16 KiB) holds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from abuse_kit import Server, exchange, serve, status_of


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("h11")
    (root / "hidden" / "httptools").mkdir(parents=True)
    (root / "hidden" / "httptools" / "__init__.py").write_text("raise ImportError('httptools hidden by the test')\n")
    path = os.pathsep.join(filter(None, [str(root / "hidden"), os.environ.get("PYTHONPATH")]))
    with serve(root / "server.log", {"PYTHONPATH": path, "WEB_CONCURRENCY": "2"}) as running_server:
        yield running_server


def test_one_startup_warning_names_what_is_off(server: Server) -> None:
    server.good()
    text = server.log.read_text()
    assert text.count("httptools cannot be imported here") == 1, text
    line = next(line for line in text.splitlines() if "httptools cannot be imported here" in line)
    for off in ("HEADER_TIMEOUT", "BODY_TIMEOUT", "limit_request_line", "limit_request_fields", "KEEP_ALIVE"):
        assert off in line
    assert "Traceback" not in text


def test_h11_still_refuses_a_huge_head(server: Server) -> None:
    data, closed = exchange(server.port, b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 100_000 + b"\r\n\r\n", timeout=10)
    assert status_of(data) in (400, 431), data[:200]
    assert closed
    server.good()


def test_an_ordinary_request_is_served_by_h11(server: Server) -> None:
    response = server.good()
    assert response.json()["ok"] is True
    assert "x-request-id" in response.headers  # fastlaunch's middleware still runs


def test_the_warning_is_absent_with_httptools(tmp_path: Path) -> None:
    with serve(tmp_path / "server.log") as running_server:
        running_server.good()
        assert "httptools cannot be imported" not in running_server.log.read_text()
