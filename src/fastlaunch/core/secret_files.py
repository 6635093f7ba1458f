"""The ``*_FILE`` convention for secret settings: ``DATABASE_URL_FILE=/run/secrets/database-url`` names a file
that holds the value (a Docker or Swarm secret, a Kubernetes secret volume, a file a Nomad template renders), so
the value is in no service definition, ``docker inspect`` output or job spec.

As the official postgres image's entrypoint does with its ``file_env``, the launcher then puts the value in its
own environment under the plain name and removes ``*_FILE``: the prestart steps, Alembic and the app (which
reads ``DATABASE_URL``) need no change, and a second settings load in the same environment sees one source.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only (settings imports this module)
    from fastlaunch.core.settings import Settings

SUFFIX = "_FILE"


def file_variable(env: str) -> str:
    return env + SUFFIX


def read_secret_file(path: str) -> str:
    """The secret's value: the file's text without the trailing newline that ``echo`` and editors add. A
    ValueError (naming the file, never its content) when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"no such file {path}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a file") from None
    except PermissionError:
        raise ValueError(f"{path} is not readable by this user (uid {os.getuid()})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    return text.rstrip("\r\n")


def export_secret_files(settings: Settings, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Each secret setting read from its ``*_FILE`` goes into the environment under its plain name (and the
    ``*_FILE`` variable leaves it), for the processes the launcher starts and the app; returns the names set."""
    from fastlaunch.core.settings import SETTINGS

    target = os.environ if environ is None else environ
    exported: list[str] = []
    for setting in SETTINGS:
        if not (setting.secret and setting.env):
            continue
        variable = file_variable(setting.env)
        if settings.source(setting.name).where.startswith(variable + " "):
            target[setting.env] = str(getattr(settings, setting.name))
            target.pop(variable, None)
            exported.append(setting.env)
    return exported
