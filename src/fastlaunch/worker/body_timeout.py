"""BODY_TIMEOUT and BODY_MIN_RATE: how long a client may take to send a request's body.

Modelled on Apache's mod_reqtimeout (``body=20,MinRate=500``): a body must arrive within ``timeout`` seconds of
its head, a deadline that each ``min_rate`` bytes received pushes back by one second. A client trickling a byte
now and then (a slow-body attack) is cut after about ``timeout`` seconds; a large upload on a slow link is not,
as long as it moves at ``min_rate``. The same deadline closes the connection of a request the app answered without
reading its body: Uvicorn skips those bytes, and disarms its keep-alive timer whenever some arrive.

Only a body still incomplete after the read that carried its head is watched: nearly every request's body
arrives with its head, and those cost no timer. A watch whose body has completed finds so when it fires.
"""

from __future__ import annotations

import asyncio
from typing import Any, NamedTuple, Protocol


class BodyLimits(NamedTuple):
    timeout: float = 20.0  # BODY_TIMEOUT; 0: off
    min_rate: int = 500  # BODY_MIN_RATE, bytes/s; 0: the whole body within ``timeout``


class TimesOut(Protocol):
    loop: asyncio.AbstractEventLoop

    def _body_timed_out(self) -> None: ...

    def _reading_paused(self) -> bool: ...


class BodyWatch:
    """The deadline of one incomplete body on one connection: one timer, re-armed only when it fires early."""

    __slots__ = ("_limits", "_owner", "_started", "_timer", "cycle", "received")

    def __init__(self, owner: TimesOut, cycle: Any, limits: BodyLimits) -> None:
        self._owner = owner
        self.cycle = cycle  # the request whose body this is
        self._limits = limits
        self._started = owner.loop.time()
        self.received = 0  # body bytes (at most: the reads' sizes) since the head
        self._timer: asyncio.TimerHandle | None = owner.loop.call_later(limits.timeout, self._check)

    def _due(self) -> float:
        rate = self._limits.min_rate
        return self._started + self._limits.timeout + (self.received / rate if rate else 0.0)

    def _check(self) -> None:
        loop = self._owner.loop
        now = loop.time()
        if self._owner._reading_paused():
            # The server stopped reading because the app has not taken what it has: not the client's delay.
            self._started, self.received = now, 0
        due = self._due()
        if now < due:
            self._timer = loop.call_later(due - now, self._check)
            return
        self._timer = None
        self._owner._body_timed_out()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
