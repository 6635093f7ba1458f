"""Small parsers that turn a raw setting value (a string from the environment or the CLI, or a
TOML value) into a typed one. Each raises ``ValueError`` with a message that says what was expected."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Parser = Callable[[object], object]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def as_str(raw: object) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ValueError("expected a string")
    return str(raw)


def as_optional_str(raw: object) -> str | None:
    text = as_str(raw)
    return text or None


def url_path(raw: object) -> str | None:
    """A request path such as ``/health``; empty: none."""
    text = as_str(raw).strip()
    if text and (not text.startswith("/") or any(c.isspace() or c in "?#" for c in text)):
        raise ValueError("expected a path starting with /, without spaces, query or fragment")
    return text or None


def _whole(raw: object) -> int:
    if isinstance(raw, bool):
        raise ValueError("not a whole number")
    if isinstance(raw, int):
        return raw
    text = as_str(raw).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise ValueError("not a whole number")
    return int(text)


def int_at_least(minimum: int) -> Parser:
    def parse(raw: object) -> int:
        value = _whole(raw)
        if value < minimum:
            raise ValueError(f"must be {minimum} or more")
        return value

    return parse


def _number(raw: object) -> float:
    if isinstance(raw, bool):
        raise ValueError("not a number")
    try:
        return float(raw) if isinstance(raw, int | float) else float(as_str(raw).strip())
    except ValueError:
        raise ValueError("not a number") from None


# Beyond these, a value is a mistake: the event loop's and threads' timers overflow (OverflowError deep inside
# Uvicorn or Gunicorn), and a worker count computed from it cannot be an integer.
MOST_SECONDS = 10**8  # over three years
MOST_PER_CORE = 1000


def positive_float(raw: object) -> float:
    value = _number(raw)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("must be a number above 0")
    return value


def per_core(raw: object) -> float:
    value = positive_float(raw)
    if value > MOST_PER_CORE:
        raise ValueError(f"must be at most {MOST_PER_CORE}")
    return value


def seconds(raw: object) -> float:
    """A duration in seconds, 0 or more (0 usually means off)."""
    value = _number(raw)
    if not 0 <= value <= MOST_SECONDS:
        raise ValueError(f"must be a number of seconds, from 0 to {MOST_SECONDS}")
    return value


def whole_seconds(raw: object) -> int:
    """A whole number of seconds, 0 or more."""
    value = _whole(raw)
    if not 0 <= value <= MOST_SECONDS:
        raise ValueError(f"must be a whole number of seconds, from 0 to {MOST_SECONDS}")
    return value


def port(raw: object) -> int:
    value = _whole(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return value


def boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = as_str(raw).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    raise ValueError("expected one of on/off, true/false, yes/no, 1/0")


def choice(*options: str) -> Parser:
    def parse(raw: object) -> str:
        text = as_str(raw).strip().lower()
        if text not in options:
            raise ValueError(f"expected one of: {', '.join(options)}")
        return text

    return parse


_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|ki|kib|m|mb|mi|mib|g|gb|gi|gib)?\s*$")
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def byte_size(raw: object) -> int:
    """``200M``, ``200MiB``, ``1.5G``, ``1Gi`` or a plain number of bytes; units are binary (as in cgroups)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        match = _SIZE.match(as_str(raw))
        if not match:
            raise ValueError("expected a size such as 150M, 1G or a number of bytes")
        number, unit = match.groups()
        value = int(float(number) * _UNITS[(unit or "")[:1].lower()])
    if value <= 0:
        raise ValueError("must be a size above 0")
    return value


def byte_size_or_auto(raw: object) -> int | Literal["auto"] | None:
    """A size, ``auto`` (decided by the launcher), or ``off``/``0`` for none."""
    text = raw.strip().lower() if isinstance(raw, str) else raw
    if text == "auto":
        return "auto"
    if text in ("off", "0", 0):
        return None
    return byte_size(raw)


@dataclass(frozen=True)
class Bind:
    """A listening address: ``host:port``, ``[v6]:port``, ``unix:/path`` or ``fd://N``."""

    kind: Literal["tcp", "unix", "fd"]
    host: str = ""
    port: int = 0
    path: str = ""
    fd: int = -1

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        if self.kind == "fd":
            return f"fd://{self.fd}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def bind(raw: object) -> Bind:
    text = as_str(raw).strip()
    if text.startswith("unix:"):
        if not text[5:]:
            raise ValueError("unix: needs a socket path, e.g. unix:/run/app.sock")
        return Bind("unix", path=text[5:])
    if text.startswith("fd://"):
        return Bind("fd", fd=_whole(text[5:]))
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d+)|([^:\[\]\s]*):(\d+)", text)
    if not match:
        raise ValueError("expected HOST:PORT, [IPv6]:PORT, unix:/path or fd://N (e.g. 0.0.0.0:8000)")
    host = match.group(1) or match.group(3) or "0.0.0.0"
    return Bind("tcp", host=host, port=port(match.group(2) or match.group(4)))


def host(raw: object) -> str:
    text = as_str(raw).strip()
    if not text or any(c.isspace() for c in text) or "/" in text:
        raise ValueError("expected a host name or IP address, e.g. 0.0.0.0 or ::")
    return text.strip("[]")


def worker_class(raw: object) -> str:
    text = as_str(raw).strip()
    if not text:
        raise ValueError("expected a Gunicorn worker class, e.g. fastlaunch.worker.UvicornWorker")
    return text


def worker_user(raw: object) -> str:
    """``USER`` or ``USER:GROUP`` (names or numeric ids) that exist on this machine."""
    text = as_str(raw).strip()
    user_ids(text)
    return text


def user_ids(text: str) -> tuple[int, int]:
    """(uid, gid) of ``USER`` or ``USER:GROUP`` (names or numeric ids): the user's own group unless one is named.
    ValueError when either does not exist here."""
    import grp
    import pwd

    user, _, group = text.partition(":")
    if not user:
        raise ValueError("expected USER or USER:GROUP, e.g. app or 10001:10001")
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"there is no user {user!r} here") from None
    if not group:
        return entry.pw_uid, entry.pw_gid
    try:
        return entry.pw_uid, (grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)).gr_gid
    except KeyError:
        raise ValueError(f"there is no group {group!r} here") from None
