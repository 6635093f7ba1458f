"""Under REQUEST_TIMEOUT, a sync handler cut by its deadline keeps its place in the thread pool until its
thread returns.

FastAPI and Starlette run ``def`` handlers and dependencies through ``anyio.to_thread.run_sync``, limited by
AnyIO's default limiter (40 threads). A thread cannot be stopped: when REQUEST_TIMEOUT cancels the request, the
thread runs on, but AnyIO gives its limiter token back at once, and the next request starts another thread. A
handler hanging in ``time.sleep(90)`` with 100 clients and REQUEST_TIMEOUT=2 grew a worker to 596 threads in
20 s. Here the token is held for the thread, not for the request: the pool stays at its size, the requests
queued behind a full pool of stuck threads are cut by their own deadline (504), and a thread that returns gives
its place back.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_installed: Callable[..., Any] | None = None


def hold_threads_until_they_return() -> None:
    """Route ``anyio.to_thread.run_sync`` (what Starlette and FastAPI call, by attribute) through
    ``_run_sync``. Idempotent."""
    global _installed
    import anyio.to_thread

    if _installed is not None:
        return
    original = anyio.to_thread.run_sync
    unlimited: dict[asyncio.AbstractEventLoop, Any] = {}

    async def run_sync(func: Callable[..., T], *args: Any, limiter: Any = None, **kwargs: Any) -> T:
        limiter = limiter or anyio.to_thread.current_default_thread_limiter()
        loop = asyncio.get_running_loop()
        inner = unlimited.get(loop)
        if inner is None:  # the pool is bounded by ``limiter`` below; AnyIO's own limit would count twice
            inner = unlimited[loop] = anyio.CapacityLimiter(math.inf)
        return await _run_sync(original, loop, limiter, inner, func, args, kwargs)

    _installed = anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]


async def _run_sync(
    original: Callable[..., Any],
    loop: asyncio.AbstractEventLoop,
    limiter: Any,
    inner: Any,
    func: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    token = object()  # the limiter's borrower: this call, not the task (which may have gone)
    await limiter.acquire_on_behalf_of(token)
    lock = threading.Lock()
    state = {"running": False, "released": False}

    def release() -> None:
        with lock:
            if state["released"]:
                return
            state["released"] = True
        try:
            loop.call_soon_threadsafe(limiter.release_on_behalf_of, token)
        except RuntimeError:  # the loop has closed: the worker is exiting, the pool with it
            pass

    def call() -> T:
        with lock:
            if state["released"]:  # the request left before the thread began: nothing to run
                raise asyncio.CancelledError
            state["running"] = True
        try:
            return func(*args)
        finally:
            release()

    try:
        result: T = await original(call, limiter=inner, **kwargs)
    except BaseException:
        with lock:
            # Never reached a thread: the place is given back now. A running thread gives it back when it
            # returns (``call``'s finally).
            give_back = not state["running"] and not state["released"]
            state["released"] = state["released"] or give_back
        if give_back:
            limiter.release_on_behalf_of(token)
        raise
    return result
