"""The settings of what is served and by how many workers (application, database, workers), declared once.

The rest and the full ``Settings`` class are in ``core/settings_serving.py``; ``core/setting.py`` says how a
field declares a setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastlaunch.core import validators as v
from fastlaunch.core.setting import SettingsBase, setting


@dataclass(frozen=True, kw_only=True, init=False, repr=False, eq=False)  # a base only, as SettingsBase
class WorkerSettings(SettingsBase):
    """The first sections of ``Settings``, in the order the docs and ``--help`` list them."""

    # -- the application
    app: str | None = setting(
        env="APP_MODULE",
        parse=v.as_optional_str,
        default=None,
        help="Import string of the ASGI app, e.g. `main:app`, or of a factory that returns it, `main:create_app()`; "
        "also a file or package path (`src/mypkg`).",
        section="Application",
        cli="--app",
        fix="use MODULE:ATTRIBUTE, e.g. main:app",
        doc_default="discovered",
        image="same; the attribute may be omitted (then `app`, `api`, or the first ASGI app)",
    )
    module_name: str | None = setting(
        env="MODULE_NAME",
        parse=v.as_optional_str,
        default=None,
        help="Module holding the app (used with VARIABLE_NAME).",
        section="Application",
        doc_default="discovered",
        image="same; discovery also tries app.py, api.py, app/app.py, app/api.py",
    )
    variable_name: str | None = setting(
        env="VARIABLE_NAME",
        parse=v.as_optional_str,
        default=None,
        help="Name of the app inside MODULE_NAME.",
        section="Application",
        doc_default="app, then api, then the first ASGI app",
    )
    pre_start_path: str = setting(
        env="PRE_START_PATH",
        parse=v.as_str,
        default="prestart.sh",
        help="Script run before the server starts (a relative path is in the project directory). With a shebang it is "
        "executed; without one it is sourced by `sh` under `set -e` in a shell of its own, and what it exports "
        "reaches the app. A missing default is skipped; a missing explicit path is an error.",
        section="Application",
        cli="--pre-start-path",
        image="a script with a shebang is executed instead of sourced; a missing explicit path stops the start",
    )
    # -- database (prestart)
    database_url: str | None = setting(
        env="DATABASE_URL",
        parse=v.as_optional_str,
        default=None,
        help="Database the prestart steps wait for and migrate, e.g. `postgresql+asyncpg://user:pw@db/app`; "
        "the app reads the same variable (also from the project's `.env`, below the environment, as the app "
        "does). Unset: no wait. Never shown or logged with its password. `DATABASE_URL_FILE` may name a file "
        "holding it instead (Docker secrets).",
        section="Database",
        secret=True,
        image="new",
        dotenv=True,
    )
    db_wait_timeout: int = setting(
        env="DB_WAIT_TIMEOUT",
        parse=v.whole_seconds,
        default=60,
        help="Seconds prestart waits for DATABASE_URL to accept connections (backoff from 0.25 s up to 5 s "
        "between attempts) before giving up with exit code 6; 0 skips the wait.",
        section="Database",
        cli="--db-wait-timeout",
        fix="set a whole number of seconds, 0 to skip the wait",
        image="new; replaces `sleep 10` in prestart.sh",
    )
    migrate: str = setting(
        env="MIGRATE",
        parse=v.choice("auto", "on", "off"),
        default="auto",
        help="Run `alembic upgrade head` in prestart, under a lock so that one replica migrates: auto (when the "
        "project has alembic.ini), on (alembic.ini required), off.",
        section="Database",
        cli="--migrate",
        fix="use auto, on or off",
        image="new",
    )
    # -- workers
    workers: int | None = setting(
        env="WEB_CONCURRENCY",
        parse=v.int_at_least(1),
        default=None,
        help="Number of worker processes; wins over the formula (the memory cap still applies).",
        section="Workers",
        cli="--workers",
        fix="set a whole number of 1 or more, or unset it to size workers from the CPUs and memory",
        doc_default="from the plan",
    )
    workers_per_core: float = setting(
        env="WORKERS_PER_CORE",
        parse=v.per_core,
        default=1.0,
        help="Workers per effective CPU.",
        section="Workers",
        cli="--workers-per-core",
        fix="set a number above 0 and at most 1000, e.g. 1 or 0.5",
        image="same, but applied to the CPUs the process may really use (affinity, cgroup quota)",
    )
    max_workers: int | None = setting(
        env="MAX_WORKERS",
        parse=v.int_at_least(1),
        default=None,
        help="Upper limit on the formula's result.",
        section="Workers",
        cli="--max-workers",
        fix="set a whole number of 1 or more",
    )
    worker_memory: int | None = setting(
        env="WORKER_MEMORY",
        parse=v.byte_size,
        default=None,
        help="Memory one worker needs, e.g. 150M. Unset: measured from the first booted worker.",
        section="Workers",
        cli="--worker-memory",
        fix="use a size such as 150M or 1G",
        doc_default="measured",
        image="new",
    )
    worker_class: str | None = setting(
        env="WORKER_CLASS",
        parse=v.worker_class,
        default=None,  # the launcher's choice: fastlaunch's own worker (launcher/worker_class.py)
        help="Gunicorn worker class (`MODULE.CLASS`). Unset: fastlaunch's worker, `fastlaunch.worker.UvicornWorker`.",
        section="Workers",
        cli="--worker-class",
        doc_default="fastlaunch's worker",
        image="default is fastlaunch's subclass of uvicorn-worker's UvicornWorker (uvloop + httptools); the old "
        "`uvicorn.workers.UvicornWorker` is mapped to it, `uvicorn.workers.UvicornH11Worker` to "
        "`uvicorn_worker.UvicornH11Worker`",
    )
    worker_user: str | None = setting(
        env="WORKER_USER",
        parse=v.worker_user,
        default=None,
        help="When fastlaunch starts as root: the user (`USER` or `USER:GROUP`, names or ids) the workers run as. The "
        "master keeps root to bind ports below 1024 and run the prestart steps; the workers, which import and run "
        "the app, do not (`root` keeps them root). Ignored when started as another user.",
        section="Workers",
        cli="--worker-user",
        fix="name a user that exists (useradd --system app), or unset it to keep the workers' user",
        doc_default="the master's user",
        image="new; fastlaunch's images set `root` (the original's workers' user) and have a user `app` (uid 10001)",
    )
    max_requests: int = setting(
        env="MAX_REQUESTS",
        parse=v.int_at_least(0),
        default=0,
        help="Restart a worker after this many requests (0: never).",
        section="Workers",
        cli="--max-requests",
        fix="set a whole number of 0 or more",
        image="new",
    )
    max_requests_jitter: int = setting(
        env="MAX_REQUESTS_JITTER",
        parse=v.int_at_least(0),
        default=0,
        help="Random extra requests added per worker, so workers do not restart together.",
        section="Workers",
        cli="--max-requests-jitter",
        fix="set a whole number of 0 or more",
        image="new",
    )
    max_worker_memory: int | Literal["auto"] | None = setting(
        env="MAX_WORKER_MEMORY",
        parse=v.byte_size_or_auto,
        default=None,
        help="Replace a worker whose private memory (USS: the pages only it holds, what its exit frees) passes "
        "this size, e.g. 512M: it stops accepting, finishes its requests and exits, like MAX_REQUESTS. "
        "`auto`: the worker's share of the cgroup memory limit, after the master and the plan's headroom. "
        "Unset or `off`: never.",
        section="Workers",
        cli="--max-worker-memory",
        fix="use a size such as 512M or 1G, auto, or off",
        doc_default="off",
        image="new",
    )
    preload: bool = setting(
        env="PRELOAD",
        parse=v.boolean,
        default=False,
        help="Import the app once in the master (after prestart), freeze its heap, then fork the workers, so they "
        "share its memory copy-on-write. Replacements then start by a fork, but code changes need a restart "
        "(SIGUSR2), not SIGHUP. Warns about threads, event loops and connections the app opened at import.",
        section="Workers",
        cli="--preload",
        fix="use on or off",
        image="new",
    )
