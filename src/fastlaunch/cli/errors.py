"""The one place where fastlaunch's errors become a message on stderr and an exit code.

Shared by the CLI and the serving process (``fastlaunch.launcher.serve``), which carries no CLI library: Rich is
imported only once there is an error to print.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastlaunch.core.exceptions import FastlaunchError


def print_error(exc: FastlaunchError) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[bold red]Error:[/] {escape(exc.message)}")
    for problem in exc.problems:
        console.print(f"  - {escape(problem)}")
    if exc.hint:
        console.print(f"[yellow]Fix:[/] {escape(exc.hint)}")
    console.print(f"[dim](exit code {exc.exit_code}; see 'Exit codes' in fastlaunch's documentation)[/]")


@contextmanager
def rendered_errors() -> Iterator[None]:
    """A FastlaunchError raised inside becomes its message and ``SystemExit(exit code)``, no traceback."""
    try:
        yield
    except FastlaunchError as exc:
        print_error(exc)
        raise SystemExit(int(exc.exit_code)) from None
