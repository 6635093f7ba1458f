"""GUNICORN_CMD_ARGS, read before anything runs: checked with Gunicorn's own parser and validators, and the
address it binds, so that the pre-checks look at what Gunicorn will really do."""

from __future__ import annotations

import shlex
from typing import Any, NoReturn

from fastlaunch.core import validators
from fastlaunch.core.exceptions import ConfigError
from fastlaunch.core.settings import Settings


class _ArgsError(Exception):
    pass


def _refuse(message: str) -> NoReturn:
    raise _ArgsError(message)


def cmd_args_options(cmd_args: str) -> dict[str, Any]:
    """GUNICORN_CMD_ARGS as Gunicorn settings, each checked by Gunicorn's own validator. Run before prestart, so
    a typo stops the start with one message naming the variable, not 51 lines of Gunicorn's usage after the
    migrations ran."""
    try:
        words = shlex.split(cmd_args)
    except ValueError as exc:
        raise _cmd_args_error(cmd_args, f"{exc} (quoting)") from None
    if not words:
        return {}
    # Imported here: gunicorn.config reads WEB_CONCURRENCY as it loads, and raises on a value the settings
    # have not yet reported as invalid.
    from gunicorn.config import Config

    config = Config()
    parser = config.parser()
    parser.error = _refuse  # argparse would print its usage and exit 2
    try:
        parsed = parser.parse_args(words)
        options = {
            key.lower(): value
            for key, value in vars(parsed).items()
            if value is not None and key in config.settings and key != "args"
        }
        if parsed.args:
            raise _ArgsError(f"unexpected argument(s) {' '.join(parsed.args)}")
        for key, value in options.items():
            config.set(key, value)
    except (_ArgsError, ValueError, TypeError) as exc:
        raise _cmd_args_error(cmd_args, str(exc)) from None
    return options


def _cmd_args_error(cmd_args: str, problem: str) -> ConfigError:
    return ConfigError(
        f"GUNICORN_CMD_ARGS={cmd_args!r}: {problem}; nothing was run.",
        hint="Use Gunicorn's command-line options (gunicorn --help), e.g. GUNICORN_CMD_ARGS='--keep-alive 10'.",
    )


def bind_addresses(settings: Settings) -> list[validators.Bind]:
    """Where Gunicorn will really listen: GUNICORN_CMD_ARGS' --bind wins over BIND/HOST/PORT, as it does in
    load_config. (A GUNICORN_CONF file is Python, run only by Gunicorn: its bind is not known before.)"""
    binds = cmd_args_options(settings.gunicorn_cmd_args).get("bind")
    if not binds:
        return [settings.address]
    addresses = []
    for raw in binds:
        try:
            addresses.append(validators.bind(raw if ":" in raw else f"{raw}:8000"))  # Gunicorn's default port
        except ValueError:
            continue  # a form Gunicorn accepts and we do not parse (a host name): Gunicorn reports it
    return addresses
