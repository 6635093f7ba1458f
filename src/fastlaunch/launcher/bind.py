"""Checks, before any server starts, that the listening address can be bound."""

from __future__ import annotations

import errno
import os
import socket
import stat

from fastlaunch.core.exceptions import BindError
from fastlaunch.core.validators import Bind


def check_bindable(address: Bind, *, where: str) -> None:
    if address.kind == "fd":
        check_passed_socket(address, where=where)
        return
    if address.kind != "tcp":
        if address.kind == "unix" and os.path.exists(address.path) and not _unix_is_stale(address.path):
            raise BindError(f"{address} is in use by another process ({where}).", hint="Stop it or pick another path.")
        return
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Same option Gunicorn sets, so only a socket that is really in use (LISTEN) makes this fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((address.host, address.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise BindError(
                f"Port {address.port} on {address.host} is already in use ({where}).",
                hint="Stop the other process, or choose another port with PORT=... or --port.",
            ) from None
        if exc.errno == errno.EACCES:
            raise BindError(
                f"Not allowed to bind {address} ({where}): ports below 1024 need root.",
                hint="Listen on a port above 1024 (the default is 8000) and map it in your proxy or container.",
            ) from None
        raise BindError(f"Cannot bind {address} ({where}): {exc.strerror}.", hint="Check HOST/BIND.") from None
    finally:
        probe.close()


def _unix_is_stale(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return False
    except OSError:
        return True
    finally:
        probe.close()


def check_passed_socket(address: Bind, *, where: str) -> None:
    """BIND=fd://N: N must be an open socket (passed by systemd or a supervisor)."""
    try:
        mode = os.fstat(address.fd).st_mode
    except OSError as exc:
        raise BindError(
            f"{address} ({where}): file descriptor {address.fd} is not open here ({exc.strerror}).",
            hint="Pass the listening socket to fastlaunch on that descriptor, or listen on HOST:PORT or unix:/path.",
        ) from None
    if not stat.S_ISSOCK(mode):
        raise BindError(
            f"{address} ({where}): file descriptor {address.fd} is not a socket.",
            hint="Pass the listening socket on that descriptor, or listen on HOST:PORT or unix:/path.",
        )
