"""A Dockerfile's instructions as BuildKit reads them (the ``dockerfile`` package is BuildKit's own parser:
heredocs, ``# escape=``, ``# syntax=``), and the few word-level readings the rules share."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from fastlaunch.core.exceptions import LintError

INSTALL_HINT = "Install the parser it uses: pip install 'fastlaunch[lint]' (BuildKit's Dockerfile parser, 4 MB)."
VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)(?::?(?P<op>[-+])(?P<word>[^}]*))?\}|(?P<plain>\w+))")


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str  # upper case: FROM, RUN, ...
    flags: tuple[str, ...]  # --from=..., --mount=...
    value: tuple[str, ...]  # the arguments: exec-form items, ENV key/value pairs, or one shell string
    json: bool  # exec form (a JSON array)
    heredocs: tuple[str, ...] = ()
    original: str = ""  # the instruction as written (continuation lines joined)

    @property
    def script(self) -> str:
        """What a RUN runs: its shell line and any heredoc bodies."""
        return "\n".join((" ".join(self.value), *self.heredocs))

    def argv(self) -> list[str]:
        """The words of a CMD/ENTRYPOINT, exec or shell form."""
        return list(self.value) if self.json else split(" ".join(self.value))

    def flag(self, name: str) -> str | None:
        """The value of ``--name=value``, or None."""
        for flag in self.flags:
            key, _, value = flag.partition("=")
            if key == f"--{name}":
                return value
        return None


def parse(text: str) -> list[Instruction]:
    """The instructions, read by BuildKit's own parser; a Dockerfile Docker refuses is a LintError."""
    try:
        import dockerfile
    except ImportError:
        raise LintError("fastlaunch lint needs the `dockerfile` package.", hint=INSTALL_HINT) from None
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as exc:
        raise LintError(f"Docker cannot parse this Dockerfile: {exc}") from None
    instructions = [
        Instruction(
            c.start_line,
            c.cmd.upper(),
            tuple(c.flags),
            tuple(c.value),
            c.json,
            tuple(h.content for h in c.heredocs),
            c.original,
        )
        for c in commands
    ]
    for ins in instructions:
        # BuildKit's parseBuildStageName; a comment after the image (`FROM x  # note`) is read as arguments.
        if ins.keyword == "FROM" and not (
            len(ins.value) == 1 or (len(ins.value) == 3 and ins.value[1].lower() == "as")
        ):
            raise LintError(
                f"line {ins.line}: Docker refuses `{ins.original}`: FROM requires either one or three arguments "
                "(an image, then optionally AS and a stage name).",
                hint="A comment goes on a line of its own, starting with #.",
            )
    return instructions


def split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def env_pairs(ins: Instruction) -> list[tuple[str, str]]:
    values = list(ins.value)
    return [(k, " ".join(split(v)) if v else "") for k, v in zip(values[::2], values[1::2], strict=False)]


def legacy_env(ins: Instruction) -> bool:
    """``ENV key value`` (one variable, the rest of the line its value) rather than ``ENV key=value``."""
    words = ins.original.split(None, 2)
    return len(words) >= 2 and "=" not in words[1]


def expand(word: str, env: Mapping[str, str]) -> str | None:
    """``word`` with ``$X``/``${X}``/``${X:-default}`` replaced from ``env``; None when one is unknown."""
    unknown = False

    def value(match: re.Match[str]) -> str:
        nonlocal unknown
        name, op = match.group("braced") or match.group("plain"), match.group("op")
        if op == "+":  # ${X:+word}: word when X is set
            return match.group("word") if name in env else ""
        if name in env:
            return env[name]
        if op == "-":
            return str(match.group("word"))
        unknown = True
        return ""

    result = VARIABLE.sub(value, word)
    return None if unknown else result


def truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "0", "false", "off", "no")
