"""How a parsed ``fastlaunch run`` reaches the serving process.

The Typer CLI replaces itself (exec: same PID, so signals and supervisors see no difference) with
``python -m fastlaunch``, handing over what it parsed in one environment variable: the Gunicorn master and the
workers it forks never carry Typer or Rich (a few MiB in every process).
"""

from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

NO_PRESTART = "--no-prestart"
# The parsed command line, handed from the CLI process to the one that replaces it.
ARGS_ENV = "FASTLAUNCH_RUN_ARGS"


def become_server(overrides: dict[str, object], *, prestart: bool) -> NoReturn:
    os.environ[ARGS_ENV] = json.dumps({"overrides": overrides, "prestart": prestart})
    sys.stdout.flush()
    sys.stderr.flush()
    # -P: the working directory does not go first on sys.path, where a project's module could shadow ours.
    os.execv(sys.executable, [sys.executable, "-P", "-m", "fastlaunch"])


def handed_over() -> tuple[dict[str, object], bool] | None:
    """What ``become_server`` handed over (once: the variable is removed), or None."""
    raw = os.environ.pop(ARGS_ENV, None)
    if raw is None:
        return None
    args = json.loads(raw)
    return dict(args.get("overrides", {})), bool(args.get("prestart", True))
