"""``fastlaunch run``'s command line: the one reader of its options, generated from the settings table.

Every way ``run`` is reached goes through ``run_command``: the console script and ``python -m fastlaunch``
(``cli/entry.py``), and the Typer CLI's ``run`` entry, which forwards its arguments here. It is a few lines over
the table rather than Typer and click, which cost about 90 ms of every start (0.59 s against 0.50 s to the first
response, measured) and would stay in the master and every worker it forks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, NoReturn

from fastlaunch.core.exceptions import UsageError
from fastlaunch.core.settings import SETTINGS

NO_PRESTART = "--no-prestart"
HELP = "--help"
FLAGS = {NO_PRESTART: "Skip the prestart steps.", HELP: "Show this message and exit."}
SUMMARY = (
    "Serve the app for production: Gunicorn managing Uvicorn workers, sized to the CPUs and memory this process "
    "may use, after the prestart steps."
)


class RunArgs(NamedTuple):
    overrides: dict[str, object]  # raw strings by setting name, validated like the environment's
    prestart: bool
    help: bool


def options() -> dict[str, str]:
    """Setting name by command-line option, e.g. ``{"--workers": "workers"}``."""
    return {s.cli: s.name for s in SETTINGS if s.cli}


def read_run_args(args: Sequence[str]) -> RunArgs:
    """``run``'s options, as ``--option value`` or ``--option=value`` (the last one counts); every problem at
    once as a ``UsageError``."""
    by_option = options()
    overrides: dict[str, object] = {}
    flags: set[str] = set()
    problems: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":  # the end of the options; run takes no arguments after it either
            problems += [f"unexpected argument {extra!r}" for extra in rest]
            break
        option, has_value, value = arg.partition("=")
        if option in FLAGS:
            if has_value:
                problems.append(f"{option} takes no value")
            flags.add(option)
        elif not arg.startswith("-"):
            problems.append(f"unexpected argument {arg!r}")
        elif option not in by_option:
            problems.append(f"no such option {option}{_did_you_mean(option, [*by_option, *FLAGS])}")
            if not has_value and rest and not rest[0].startswith("--"):
                rest.pop(0)  # its value, most likely: not an argument of its own
        elif has_value:
            overrides[by_option[option]] = value
        elif rest and not rest[0].startswith("--"):
            overrides[by_option[option]] = rest.pop(0)
        else:
            # A value that starts with "--" is written --option=--value.
            problems.append(f"{option} needs a value: {option} VALUE or {option}=VALUE")
    if problems:
        message = f"fastlaunch run: {problems[0]}." if len(problems) == 1 else "fastlaunch run: bad command line:"
        raise UsageError(
            message, problems=problems if len(problems) > 1 else [], hint="`fastlaunch run --help` lists the options."
        )
    return RunArgs(overrides, prestart=NO_PRESTART not in flags, help=HELP in flags)


def _did_you_mean(option: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(option, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def run_help() -> str:
    """``fastlaunch run --help``: the options by section, each with its variable, wrapped to the terminal."""
    import shutil
    import textwrap

    width = max(shutil.get_terminal_size().columns, 60)
    rows: dict[str, list[tuple[str, str]]] = {"Options": list(FLAGS.items())}
    for s in SETTINGS:
        if s.cli:
            rows.setdefault(s.section, []).append((f"{s.cli} VALUE", f"{s.help} [env:\0{s.env}]"))
    left = max(len(option) for section in rows.values() for option, _ in section) + 4

    def wrapped(text: str, indent: int) -> str:
        # "\0": a space the lines are not broken at, so "[env: NAME]" stays whole.
        filled = textwrap.fill(
            text, width, initial_indent=" " * indent, subsequent_indent=" " * indent, break_on_hyphens=False
        )
        return filled.replace("\0", " ")

    lines = ["Usage: fastlaunch run [OPTIONS]", "", wrapped(SUMMARY, 2), ""]
    lines.append(
        wrapped(
            "Each option is also read from its environment variable (in brackets) or from pyproject.toml's "
            "[tool.fastlaunch], as its name with underscores (workers_per_core = 2); `fastlaunch settings` shows "
            "the values here and where each came from.",
            2,
        )
    )
    for section, entries in rows.items():
        lines += ["", f"{section}:"]
        for option, text in entries:
            body = wrapped(text, left)
            lines.append(f"  {option}".ljust(left) + body[left:])
    return "\n".join(lines) + "\n"


def run_command(args: Sequence[str]) -> NoReturn:
    """``fastlaunch run ARGS``: serve, or print the help; a bad command line is one message and exit code 2."""
    import sys

    from fastlaunch.cli.errors import rendered_errors

    with rendered_errors():
        parsed = read_run_args(args)
    if parsed.help:
        sys.stdout.write(run_help())
        raise SystemExit(0)
    from fastlaunch.launcher.serve import serve

    with rendered_errors():
        serve(parsed.overrides, prestart=parsed.prestart)
    raise SystemExit(0)
