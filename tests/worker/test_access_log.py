"""The access-log thread's own path (one string per batch, no LogRecords) against logging's."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastlaunch.core.access_lines import LOGGER, BatchFileHandler, make_record
from fastlaunch.core.log_formats import JsonFormatter, TextFormatter
from fastlaunch.request_id import RequestIdFilter
from fastlaunch.worker.access_log import AccessLog, Entry, access_line

NOW = time.time()
ENTRIES: list[Entry] = [
    Entry(
        "GET",
        b"/items/5",
        "/items/5",
        b"q=somequery",
        ("127.0.0.1", 51234),
        "1.1",
        200,
        0.000123,
        NOW,
        "a" * 32,
        b"wrk",
    ),
    Entry("POST", None, "/posts", b"", None, "1.0", 201, 0.25, NOW + 0.5, "client-id.7", None),
    # Client-supplied text that must not forge a line or a field.
    Entry(
        "GET",
        b'/x"\n[INFO] forged',
        "/x",
        b"a=\x1b[31m",
        ("::1", 1),
        "1.1",
        404,
        0.001,
        NOW + 1,
        "b" * 32,
        b'ag"ent\r\n',
    ),
    # Bytes beyond ASCII, a backslash and a tab, in the path, query and user agent.
    Entry(
        "GET",
        b"/caf\xc3\xa9\\x",
        "/caf\u00e9\\x",
        b"q=\xff\t",
        ("10.0.0.1", 2),
        "1.1",
        500,
        12.5,
        NOW + 2,
        "c" * 32,
        b"\xe2\x98\x83",
    ),
]


@pytest.fixture
def access_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger(LOGGER)
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers, logger.propagate, logger.level = [], False, logging.INFO
    try:
        yield logger
    finally:
        for handler in logger.handlers:
            handler.close()
        logger.handlers, logger.propagate, logger.level = saved


@pytest.mark.parametrize("formatter", [TextFormatter(), JsonFormatter()], ids=["text", "json"])
def test_batched_lines_equal_what_logging_would_write(
    tmp_path: Path, access_logger: logging.Logger, formatter: logging.Formatter
) -> None:
    handler = BatchFileHandler(tmp_path / "access.log")
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    access_logger.addHandler(handler)

    log = AccessLog(interval=3600)  # nothing written until close()
    for entry in ENTRIES:
        log.put(entry)
    log.close()

    written = (tmp_path / "access.log").read_text().splitlines()
    assert written == [formatter.format(make_record(access_line(entry))) for entry in ENTRIES]
    assert len(written) == len(ENTRIES)  # the forged newline stayed inside its line
    if isinstance(formatter, JsonFormatter):
        forged = json.loads(written[2])
        assert forged["path"] == '/x"\n[INFO] forged?a=\x1b[31m'
        assert forged["user_agent"] == 'ag"ent\r\n'
    else:
        assert '"GET /x\\"\\x0a[INFO] forged?a=\\x1b[31m HTTP/1.1" 404' in written[2]
        assert written[1].endswith('- "POST /posts HTTP/1.0" 201 250.0ms "" request_id=client-id.7')


def test_a_handler_of_the_users_own_gets_ordinary_records(access_logger: logging.Logger) -> None:
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    access_logger.addHandler(Collect())
    log = AccessLog(interval=3600)
    for entry in ENTRIES[:2]:
        log.put(entry)
    log.close()

    assert [r.getMessage() for r in records] == [access_line(e).message() for e in ENTRIES[:2]]
    assert records[0].request_id == "a" * 32  # type: ignore[attr-defined]
    assert records[0].access["path"] == "/items/5?q=somequery"  # type: ignore[attr-defined]
    assert records[1].created == NOW + 0.5
    assert records[1].access["client"] == "-"  # type: ignore[attr-defined]
