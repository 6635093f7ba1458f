"""The master's reading of dead workers' metrics files: only regular files of the workers' user, within a size
cap, never through a link, never blocking on a FIFO; malformed contents count for nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.mmap_dict import MmapedDict, _read_all_values, mmap_key

from fastlaunch.launcher import metrics_archive
from fastlaunch.launcher.metrics_archive import MAX_FILE, Archive, entries, read_worker_file

OWNERS = {os.getuid()}


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_archive, "_warned", set())


def counter_file(path: Path, value: float) -> None:
    data: Any = MmapedDict(str(path))  # type: ignore[no-untyped-call]
    data.write_value(mmap_key("jobs", "jobs_total", ["kind"], ["a"], "Jobs."), value, 0.0)
    data.close()


def test_reads_only_regular_files_it_expects(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.write_text("secret")
    (tmp_path / "link").symlink_to(canary)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    with open(tmp_path / "huge", "wb") as f:
        f.truncate(MAX_FILE + 1)
    for name in ("link", "fifo", "dir", "huge", "missing"):
        assert read_worker_file(str(tmp_path / name), OWNERS) is None, name  # and the FIFO did not block
    assert read_worker_file(str(canary), {os.getuid() + 1}) is None  # someone else's file
    assert read_worker_file(str(canary), OWNERS) == b"secret"


@pytest.mark.parametrize(
    "data",
    [b"", b"\xff" * 64, b"\x40\x00\x00\x00" + b"\x10\x00\x00\x00" * 40, b"\x00\x10\x00\x00" + b"\x00" * 12],
)
def test_malformed_contents_count_for_nothing(data: bytes) -> None:
    assert entries(data, "counter") == []


def test_a_dead_workers_counters_survive_in_the_archive(tmp_path: Path) -> None:
    live, archive_dir = tmp_path / "live", tmp_path / "archive"
    live.mkdir()
    archive_dir.mkdir()
    archive = Archive(str(archive_dir), str(live), None)
    counter_file(live / "counter_101.db", 3)
    counter_file(live / "counter_102.db", 4)
    (live / "histogram_101.db").symlink_to(live / "counter_102.db")
    (live / "gauge_livesum_101.db").write_bytes(b"")
    archive.compact(101)
    archive.compact(102)
    archive.count_restart("memory")
    assert sorted(p.name for p in live.iterdir()) == []
    data = (archive_dir / "counter_archive.db").read_bytes()  # as a scrape reads it
    totals = {key: value for key, value, _, _ in _read_all_values(data)}  # type: ignore[no-untyped-call]
    assert totals[mmap_key("jobs", "jobs_total", ["kind"], ["a"], "Jobs.")] == 7
    assert totals[archive.restart_keys["memory"]] == 1 and totals[archive.restart_keys["crash"]] == 0
