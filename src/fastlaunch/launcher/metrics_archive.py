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
and the exporter read it), and there with plain writes of a whole new file renamed into place: a scrape never
reads half of one, and a filesystem the workers filled up fails a write (logged once) rather than a page of a
mapping, which would kill the master with SIGBUS.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import stat
import struct

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
    """The well-formed (key, value) pairs of a prometheus_client multiprocess file; [] when it is malformed.

    The format (prometheus_client's mmap_dict): a 4-byte used length, 4 bytes of padding, then entries of a
    4-byte key length, the UTF-8 key padded to 8-byte alignment, and two doubles (value, timestamp)."""
    found = []
    try:
        (used,) = struct.unpack_from("<i", data, 0)
        used, pos = min(used, len(data)), 8
        while pos < used:
            (size,) = struct.unpack_from("<i", data, pos)
            key = data[pos + 4 : pos + 4 + size].decode()
            pos += 4 + size + (8 - (size + 4) % 8)
            value, _ = struct.unpack_from("<dd", data, pos)
            pos += 16
            if size <= 0 or pos > used or not (math.isfinite(value) and _well_formed(key, typ)):
                return []
            found.append((key, value))
    except Exception:  # any damage: the whole file says nothing
        return []
    return found


def encode(values: dict[str, float]) -> bytes:
    """``values`` in the format ``entries`` reads."""
    parts = [b""]
    for key, value in values.items():
        encoded = key.encode()
        padded = encoded + b" " * (8 - (len(encoded) + 4) % 8)
        parts.append(struct.pack(f"<i{len(padded)}sdd", len(encoded), padded, value, 0.0))
    body = b"".join(parts)
    return struct.pack("<ii", 8 + len(body), 0) + body


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
        from prometheus_client.mmap_dict import mmap_key

        self.directory, self.live = directory, live
        self.owners = {os.getuid()} if worker_uid is None else {os.getuid(), worker_uid}
        self.values: dict[str, dict[str, float]] = {typ: {} for typ in ARCHIVED}
        name, help_text = RESTARTS
        self.restart_keys = {r: mmap_key(name, f"{name}_total", ["reason"], [r], help_text) for r in REASONS}
        for key in self.restart_keys.values():  # each reads 0, not absent, until it happens
            self.values["counter"][key] = 0.0
        self._save("counter")

    def _save(self, typ: str) -> None:
        path = os.path.join(self.directory, f"{typ}_archive.db")
        try:
            with open(f"{path}.tmp", "wb") as f:  # not *.db: scrapes read only whole files
                f.write(encode(self.values[typ]))
            os.replace(f"{path}.tmp", path)
        except OSError as exc:  # a full filesystem: the totals stay here and are written with the next ones
            _warn_once(f"the archive cannot be written ({exc.strerror})", path)

    def count_restart(self, reason: str) -> None:
        self.values["counter"][self.restart_keys[reason]] += 1
        self._save("counter")

    def compact(self, pid: int) -> None:
        """Folds a reaped worker's totals into the archive and removes its files."""
        for typ in ARCHIVED:
            path = os.path.join(self.live, f"{typ}_{pid}.db")
            data = read_worker_file(path, self.owners)
            if data is not None:
                found = entries(data, typ)
                if not found and data.strip(b"\0"):
                    _warn_once("a malformed metrics file", path)
                totals = self.values[typ]
                for key, value in found:
                    totals[key] = totals.get(key, 0.0) + value
                if found:
                    self._save(typ)
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
