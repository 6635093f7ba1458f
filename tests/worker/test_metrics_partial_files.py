"""METRICS=on: a scrape reads the workers' files while they write them, without a lock. A file caught half
made (just created and still empty, or with a header naming bytes not yet there) is left out of that scrape,
logged once; every whole file is still counted, and the scrape answers."""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families
from support import ASSETS, FASTLAUNCH, free_port, running

from fastlaunch.worker.metrics import ARCHIVE_ENV, MULTIPROC_ENV, render

KEY = mmap_key("http_requests", "http_requests_total", ["route"], ["/items"], "HTTP requests answered.")


def requests_counted() -> float:
    body, _ = render()
    return sum(
        s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "http_requests_total"
    )


def worker_file(path: Path, count: float) -> None:
    """A worker's counters, written by prometheus_client itself."""
    values = MmapedDict(str(path))  # type: ignore[no-untyped-call]
    values.write_value(KEY, count, 0.0)  # type: ignore[no-untyped-call]
    values.close()  # type: ignore[no-untyped-call]


def header_ahead_of_entry(path: Path) -> None:
    """What a reader sees of a file whose writer has stored the new length but whose first entry's bytes
    have not reached it yet: the length counts an entry whose key is still zeros."""
    key = KEY.encode()
    entry = 4 + len(key) + (8 - (len(key) + 4) % 8) + 16
    data = bytearray(2**16)
    data[0:8] = struct.pack("<ii", 8 + entry, 0)
    data[8:12] = struct.pack("<i", len(key))
    path.write_bytes(bytes(data))


PARTIAL: dict[str, Callable[[Path], object]] = {
    "created, not yet sized": lambda path: path.write_bytes(b""),
    "length ahead of the first key": header_ahead_of_entry,
    "length past the end of the file": lambda path: path.write_bytes(struct.pack("<ii", 4096, 0)),
}


@pytest.mark.parametrize("plant", PARTIAL.values(), ids=PARTIAL.keys())
def test_a_half_made_file_is_left_out_and_the_scrape_answers(
    plant: Callable[[Path], object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    live, archive = tmp_path / "live", tmp_path / "archive"
    live.mkdir()
    archive.mkdir()
    monkeypatch.setenv(MULTIPROC_ENV, str(live))
    monkeypatch.setenv(ARCHIVE_ENV, str(archive))
    worker_file(live / "counter_101.db", 3)
    worker_file(live / "counter_102.db", 4)
    fresh = live / "counter_103.db"
    plant(fresh)
    with caplog.at_level(logging.WARNING, logger="fastlaunch"):
        assert requests_counted() == 7
        assert requests_counted() == 7
    warnings = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(warnings) == 1 and str(fresh) in warnings[0], warnings
    fresh.unlink()
    worker_file(fresh, 5)  # once whole, it counts
    assert requests_counted() == 12


def test_a_served_scrape_answers_while_a_worker_file_is_half_made(tmp_path: Path) -> None:
    directory = tmp_path / "prom"
    directory.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [FASTLAUNCH, "run", "--host", "127.0.0.1", "--port", str(port)]
    env = {"METRICS": "on", "WEB_CONCURRENCY": "1", "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    log = tmp_path / "server.log"
    with running(command, cwd=ASSETS / "obsapp", env=env, log=log, ready_url=f"{base}/metrics"):
        assert httpx.get(f"{base}/items/1").status_code == 200
        (directory / "counter_999999.db").write_bytes(b"")  # a worker starting: its file not yet sized
        response = httpx.get(f"{base}/metrics", headers={"Connection": "close"})
        assert response.status_code == 200, response.text
        assert 'http_requests_total{method="GET",route="/items/{item_id}",status="200"} 1.0' in response.text
    assert log.read_text(errors="replace").count("counter_999999.db cannot be read") == 1
