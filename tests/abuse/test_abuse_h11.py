"""A real ``fastlaunch run`` where httptools cannot be imported (hidden by a stand-in that raises ImportError):
the workers serve with Uvicorn's h11 protocol and keep every bound the httptools one has. The head-limit,
slow-head and idle-connection attacks of test_abuse_http.py and the slow-body attacks of test_abuse_body.py run
here, against this module's server, with the same timeouts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from abuse_kit import Server, serve
from test_abuse_body import (  # noqa: F401 (collected here too)
    BODY_TIMEOUT,
    TRICKLED,
    cut,
    test_200_trickling_clients_are_all_cut_while_others_are_served,
    test_an_upload_that_moves_outlasts_the_timeout,
)
from test_abuse_http import (  # noqa: F401 (collected here too)
    HEADER_TIMEOUT,
    KEEP_ALIVE,
    test_a_connection_that_sends_nothing_is_closed_after_keep_alive,
    test_heads_within_the_limits_are_served,
    test_oversized_heads_are_refused_and_closed,
    test_slowloris_head_gets_408_and_is_closed,
)

NOTE = "httptools cannot be imported here"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("h11")
    (root / "hidden" / "httptools").mkdir(parents=True)
    (root / "hidden" / "httptools" / "__init__.py").write_text("raise ImportError('httptools hidden by the test')\n")
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "hidden"), os.environ.get("PYTHONPATH")])),
        "WEB_CONCURRENCY": "2",
        "HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "KEEP_ALIVE": str(KEEP_ALIVE),
        "BODY_TIMEOUT": str(BODY_TIMEOUT),
    }
    with serve(root / "server.log", env) as running_server:
        yield running_server


def test_one_startup_note_and_nothing_said_off(server: Server) -> None:
    server.good()
    text = server.log.read_text()
    assert text.count(NOTE) == 1, text
    assert " is off" not in text and "protections are off" not in text
    assert "Traceback" not in text


@pytest.mark.parametrize("shape", TRICKLED)
def test_a_trickling_body_is_cut_under_h11(server: Server, shape: str) -> None:
    cut(server, shape)
    # The app's failed read of the body is not logged as an error. (The access log gives the 408 as 500 here:
    # the status comes from the middleware's view of the app's response, which never started.)
    assert "Traceback" not in server.log.read_text()


def test_an_ordinary_request_is_served_by_h11(server: Server) -> None:
    response = server.good()
    assert response.json()["ok"] is True
    assert "x-request-id" in response.headers  # fastlaunch's middleware still runs


def test_the_note_is_absent_with_httptools(tmp_path: Path) -> None:
    with serve(tmp_path / "server.log") as running_server:
        running_server.good()
        assert NOTE not in running_server.log.read_text()
