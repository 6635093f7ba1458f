"""The ``fastlaunch`` console script (and ``python -m fastlaunch``).

``fastlaunch run`` is served straight from here, its options read by ``fastlaunch.cli.run``, without loading
Typer and click, which would stay in the master and every worker. Every other command goes to the Typer CLI.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    # Starting up is mostly importing (Gunicorn, Uvicorn, fastlaunch): many objects, almost no garbage, and a
    # collection every 700 of them. The collector stays off until the server runs (launcher/serve.py).
    gc.disable()
    if sys.argv[1:2] == ["run"]:
        from fastlaunch.cli.run import run_command

        run_command(sys.argv[2:])
    gc.enable()
    from fastlaunch.cli.commands import main as cli_main

    cli_main()
