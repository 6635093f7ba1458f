"""The master-worker channel across a real fork: what a worker reports, the master reads; what a worker scribbles,
the master reads as no information, saying so once."""

from __future__ import annotations

import logging
import os
import struct

import pytest

from fastlaunch.core import channel
from fastlaunch.core.channel import MEMORY_CAP, WorkerSlot


def in_child(action: str, slot: WorkerSlot) -> None:
    pid = os.fork()
    if pid == 0:  # the worker's side
        try:
            if action == "report":
                slot.report_booted(123 * 2**20)
                slot.report_serving()
                slot.report_exit("max_requests")
            elif action == "scribble":
                memory = slot._memory
                memory[:] = os.urandom(len(memory))
            elif action == "out-of-range":
                memory = slot._memory
                memory[:] = struct.pack("<qq", 2**60, ~(2**60)) * (len(memory) // 16)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def test_reports_cross_the_fork() -> None:
    slot = WorkerSlot()
    assert (slot.booted(), slot.serving(), slot.exit_reason()) == (None, False, None)  # nothing said yet
    in_child("report", slot)
    assert (slot.booted(), slot.serving(), slot.exit_reason()) == (123 * 2**20, True, "max_requests")


@pytest.mark.parametrize("action", ["scribble", "out-of-range"])
def test_scribbles_read_as_no_information_logged_once(
    action: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel, "_warned", set())
    slot = WorkerSlot()
    in_child(action, slot)
    with caplog.at_level(logging.WARNING, logger="fastlaunch"):
        for _ in range(3):
            assert (slot.booted(), slot.serving(), slot.exit_reason()) == (None, False, None)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == len(set(warnings)) >= 1, warnings


def test_the_memory_cap_reaches_workers_forked_before_it_is_published() -> None:
    slot = WorkerSlot()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(write_fd)
        os.read(read_fd, 1)  # until the master has published
        slot.report_booted(MEMORY_CAP.read() or 0)
        os._exit(0)
    os.close(read_fd)
    MEMORY_CAP.publish(77 * 2**20)
    os.write(write_fd, b"x")
    os.waitpid(pid, 0)
    os.close(write_fd)
    assert slot.booted() == 77 * 2**20
