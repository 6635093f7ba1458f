"""The ``fastlaunch`` console script (and ``python -m fastlaunch``).

``fastlaunch run`` with plain ``--option value`` arguments (a container's CMD, a unit's ExecStart) is served
straight from here, without loading Typer and click: they cost about 90 ms of every start (0.59 s against
0.50 s to the first response, measured) and would stay in the master and every worker. Anything else (other
commands, ``--help``, a form the small reader below does not take) goes to the Typer CLI, the reference for
the syntax, which validates it and then hands over to the same serving code (``fastlaunch.cli.handoff``).
"""

from __future__ import annotations

import gc
import sys
from typing import NoReturn

from fastlaunch.cli.handoff import NO_PRESTART, handed_over
from fastlaunch.core.settings import SETTINGS


def read_run_args(args: list[str]) -> tuple[dict[str, object], bool] | None:
    """``run``'s options as (overrides by setting name, prestart), or None for the Typer CLI to handle."""
    options = {s.cli: s.name for s in SETTINGS if s.cli}
    overrides: dict[str, object] = {}
    prestart = True
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == NO_PRESTART:
            prestart = False
            continue
        flag, has_value, value = arg.partition("=")
        if flag not in options:
            return None
        if not has_value:
            if not rest or rest[0].startswith("--"):
                return None
            value = rest.pop(0)
        overrides[options[flag]] = value
    return overrides, prestart


def serve_and_exit(overrides: dict[str, object], prestart: bool) -> NoReturn:
    from fastlaunch.cli.errors import rendered_errors
    from fastlaunch.launcher.serve import serve

    with rendered_errors():
        serve(overrides, prestart=prestart)
    raise SystemExit(0)


def main() -> None:
    # Starting up is mostly importing (Gunicorn, Uvicorn, fastlaunch): many objects, almost no garbage, and a
    # collection every 700 of them. The collector stays off until the server runs (launcher/serve.py).
    gc.disable()
    parsed = handed_over()
    argv = sys.argv[1:]
    if parsed is None and argv[:1] == ["run"]:
        parsed = read_run_args(argv[1:])
    if parsed is not None:
        serve_and_exit(*parsed)
    gc.enable()
    from fastlaunch.cli.commands import main as cli_main

    cli_main()
