"""METRICS=on: what dead workers counted, kept in one place, and the master's own counter.

prometheus_client's multiprocess mode gives every process its own files in PROMETHEUS_MULTIPROC_DIR, and a
scrape merges all of them, dead processes' included, so that counters never go back. With MAX_REQUESTS or
MAX_WORKER_MEMORY recycling that directory would grow by a few files per replaced worker, forever, and every
scrape would read them all. When the master reaps a worker it folds the worker's counters, histograms and
summaries into the archive, then removes the worker's files (its live gauges too, as ``mark_process_dead``
does). Gauges of other modes stay, as prometheus_client keeps them.

The workers write the multiprocess directory, so the root master treats it as hostile ground: it opens a
dead worker's file only with ``O_NOFOLLOW | O_NONBLOCK``, reads it only when ``fstat`` shows a regular file of
the workers' user within a size cap, keeps only well-formed entries, and removes names it built itself (an
unlink never follows a link). It writes only in the archive directory, its own (not writable by workers; they
and the exporter read it).
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import stat
from typing import Any

from fastlaunch.core.channel import REASONS

log = logging.getLogger("fastlaunch")

ARCHIVED = ("counter", "histogram", "summary")  # summed over processes: a dead worker's share stays
LIVE_GAUGES = ("liveall", "livesum", "livemax", "livemin", "livemostrecent")  # dropped with the worker
MAX_FILE = 64 * 2**20  # far above what a worker's metrics take: a bigger file is not prometheus_client's
RESTARTS = ("fastlaunch_worker_restarts", "Workers that exited and were replaced.")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_warned: set[str] = set()


def _warn_once(what: str, path: str) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning("METRICS: %s (%s) is ignored (this warning is shown once)", what, path)


def read_worker_file(path: str, owners: set[int]) -> bytes | None:
    """A dead worker's file, or None when it is missing or is anything but a regular file of ``owners`` within
    MAX_FILE: never a link, a FIFO, a device, a directory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        _warn_once("a worker's metrics file that is a link" if exc.errno == errno.ELOOP else str(exc), path)
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid not in owners or info.st_size > MAX_FILE:
            _warn_once("a worker's metrics file that is not a regular file of the workers' user", path)
            return None
        chunks, left = [], info.st_size
        while left > 0 and (chunk := os.read(fd, min(left, 2**20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def entries(data: bytes, typ: str) -> list[tuple[str, float]]:
    """The well-formed (key, value) pairs of a prometheus_client multiprocess file; [] when it is malformed."""
    from prometheus_client.mmap_dict import _read_all_values

    found = []
    try:
        used = int.from_bytes(data[:4], "little", signed=True)
        for key, value, _, _ in _read_all_values(data, min(used, len(data))):  # type: ignore[no-untyped-call]
            if not (math.isfinite(value) and _well_formed(key, typ)):
                raise ValueError(key)
            found.append((key, value))
    except Exception:  # any damage: the whole file says nothing
        return []
    return found


def _well_formed(key: str, typ: str) -> bool:
    """Whether a scrape can merge this key (it parses every key and, for a histogram bucket, its ``le``)."""
    metric, name, labels, help_text = json.loads(key)
    if not (isinstance(metric, str) and isinstance(name, str) and isinstance(help_text, str)):
        return False
    if not (_NAME.match(metric) and _NAME.match(name) and isinstance(labels, dict)):
        return False
    if not all(isinstance(k, str) and _NAME.match(k) and isinstance(v, str) for k, v in labels.items()):
        return False
    if typ == "histogram" and "le" in labels:
        float(labels["le"])  # raises if not a number
    return True


class Archive:
    """The master's files in its own directory: dead workers' totals and the restarts counter."""

    def __init__(self, directory: str, live: str, worker_uid: int | None) -> None:
        from prometheus_client.mmap_dict import MmapedDict, mmap_key

        self.live = live
        self.owners = {os.getuid()} if worker_uid is None else {os.getuid(), worker_uid}
        self.files: dict[str, Any] = {
            typ: MmapedDict(os.path.join(directory, f"{typ}_archive.db"))  # type: ignore[no-untyped-call]
            for typ in ARCHIVED
        }
        name, help_text = RESTARTS
        self.restart_keys = {r: mmap_key(name, f"{name}_total", ["reason"], [r], help_text) for r in REASONS}
        for key in self.restart_keys.values():  # each reads 0, not absent, until it happens
            self._add("counter", key, 0.0)

    def _add(self, typ: str, key: str, value: float) -> None:
        current, _ = self.files[typ].read_value(key)
        self.files[typ].write_value(key, current + value, 0.0)

    def count_restart(self, reason: str) -> None:
        self._add("counter", self.restart_keys[reason], 1.0)

    def compact(self, pid: int) -> None:
        """Folds a reaped worker's totals into the archive and removes its files."""
        for typ in ARCHIVED:
            path = os.path.join(self.live, f"{typ}_{pid}.db")
            data = read_worker_file(path, self.owners)
            if data is not None:
                found = entries(data, typ)
                if not found and data.strip(b"\0"):
                    _warn_once("a malformed metrics file", path)
                for key, value in found:
                    self._add(typ, key, value)
            self._remove(path)
        for mode in LIVE_GAUGES:
            self._remove(os.path.join(self.live, f"gauge_{mode}_{pid}.db"))

    def _remove(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # a directory planted under that name, say: leave it
            _warn_once(f"a metrics entry that cannot be removed ({exc.strerror})", path)

    def close(self) -> None:
        for file in self.files.values():
            file.close()
