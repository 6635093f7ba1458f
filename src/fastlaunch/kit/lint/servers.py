"""The servers an image's command starts, and the address each listens on, read as each server reads its
options, environment and defaults (uvicorn, gunicorn, hypercorn, granian, fastapi run, fastlaunch run)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastlaunch.kit.lint.grammar import Instruction, expand, split

SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh"})
SERVERS = frozenset({"uvicorn", "gunicorn", "hypercorn", "granian"})
SUBCOMMAND = {"fastapi": "run", "fastlaunch": "run"}  # `fastapi dev` / `fastlaunch dev` are FL011's
LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$")
NOT_RUNNERS = frozenset({"echo", "printf", "pip", "pip3", "which", "type", "command", "test", "["})
SEPARATORS = re.compile(r"&&|\|\||[;|&\n]")
# Where each server's host and port come from, after its command-line flags: (environment, default).
HOST_SOURCES: dict[str, tuple[str | None, str]] = {
    "uvicorn": ("UVICORN_HOST", "127.0.0.1"),
    "granian": ("GRANIAN_HOST", "127.0.0.1"),
    "fastapi": (None, "0.0.0.0"),
    "fastlaunch": ("HOST", "0.0.0.0"),
}
PORT_SOURCES: dict[str, tuple[str | None, str]] = {
    "uvicorn": ("UVICORN_PORT", "8000"),
    "granian": ("GRANIAN_PORT", "8000"),
    "fastapi": ("PORT", "8000"),
    "fastlaunch": ("PORT", "8000"),
}


@dataclass(frozen=True)
class Command:
    """One command of what the image runs: its words, and whether a shell expands their variables."""

    ins: Instruction
    words: list[str]
    shell: bool
    exact: bool  # the words are the instruction's whole exec-form array (a fix can rewrite it)
    tail: tuple[Instruction, int] | None = None  # ENTRYPOINT + CMD: the CMD, and where its words start

    def at(self, start: int) -> tuple[Command, int]:
        """The command as its instruction wrote it, for a server whose word is at ``start``: a server named
        in the CMD part of ENTRYPOINT + CMD is reported at the CMD."""
        if self.tail is None or start < self.tail[1]:
            return self, start
        cmd, offset = self.tail
        words = self.words[offset:]
        return Command(cmd, words, False, words == list(cmd.value)), start - offset


@dataclass(frozen=True)
class Server:
    name: str  # uvicorn, gunicorn, hypercorn, granian, fastapi, fastlaunch
    command: Command
    start: int  # index of the server's own word in command.words
    hosts: tuple[str, ...] | None  # None: cannot be known from the Dockerfile
    port: int | None
    how: str  # where the address comes from, for messages
    args: tuple[str, ...]  # its options and arguments


def commands(entrypoint: Instruction | None, cmd: Instruction | None) -> list[Command]:
    """What the image runs, split into commands: ``sh -c`` scripts and shell-form lines are cut at ; && || |."""
    if entrypoint is None:
        return _commands(cmd, cmd.argv()) if cmd is not None else []
    head = entrypoint.argv()
    if not entrypoint.json or cmd is None or (len(head) >= 3 and Path(head[0]).name in SHELLS and head[1] == "-c"):
        return _commands(entrypoint, head)
    if (
        len(head) == 2 and Path(head[0]).name in SHELLS and head[1] == "-c"
    ):  # ENTRYPOINT ["sh", "-c"]: CMD is the script
        return [Command(cmd, split(part), True, False) for part in SEPARATORS.split(" ".join(cmd.argv()))]
    return [Command(entrypoint, head + cmd.argv(), False, False, (cmd, len(head)))]


def _commands(ins: Instruction, argv: list[str]) -> list[Command]:
    if not ins.json:
        return [Command(ins, split(part), True, False) for part in SEPARATORS.split(" ".join(ins.value))]
    if len(argv) >= 3 and Path(argv[0]).name in SHELLS and argv[1] == "-c":
        return [Command(ins, split(part), True, False) for part in SEPARATORS.split(" ".join(argv[2:]))]
    return [Command(ins, argv, False, argv == list(ins.value))]


def option(args: list[str], *names: str) -> list[str]:
    """Every value given to the options ``names`` (``--name value``, ``--name=value``, ``-n value``, ``-nvalue``)."""
    values = []
    for i, word in enumerate(args):
        for name in names:
            if word == name and i + 1 < len(args):
                values.append(args[i + 1])
            elif name.startswith("--") and word.startswith(name + "="):
                values.append(word[len(name) + 1 :])
            elif not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                values.append(word[len(name) :])
    return values


def find_servers(
    all_commands: list[Command],
    env: Mapping[str, str],
    implicit: tuple[str, ...],
    context: Path | None,
    copied: frozenset[str] = frozenset(),
) -> list[Server]:
    """``copied``: the names of the files the image's COPY lines name (a gunicorn.conf.py among them is read by
    gunicorn from its working directory)."""
    found = []
    for command in all_commands:
        for i in range(len(command.words)):
            name = _server_name(command.words, i, implicit)
            if name:
                found.append(_address(name, *command.at(i), env, context, copied))
                break
    return found


def _server_name(words: list[str], i: int, implicit: tuple[str, ...]) -> str | None:
    word = Path(words[i]).name
    if Path(words[0]).name in NOT_RUNNERS or "install" in words[:i]:  # `echo starting uvicorn`, `pip install uvicorn`
        return None
    if i > 0 and words[i - 1] == "-m" and word in SERVERS:
        return word
    if i > 0 and words[i - 1] in ("-m", "-c"):
        return None
    if word in SERVERS:
        return word
    if word in SUBCOMMAND and i + 1 < len(words) and words[i + 1] == SUBCOMMAND[word]:
        return word
    if word in ("start.sh", "start") and implicit:  # the drop-in's /start.sh execs `fastlaunch run`
        return implicit[0]
    return None


def _value(word: str, command: Command, env: Mapping[str, str]) -> str | None:
    """A word as the server receives it: exec form passes `$PORT` through unexpanded (unknown here)."""
    if "$" not in word:
        return word
    return expand(word, env) if command.shell else None


def _address(
    name: str, command: Command, start: int, env: Mapping[str, str], context: Path | None, copied: frozenset[str]
) -> Server:
    word = Path(command.words[start]).name
    args = [] if word in ("start.sh", "start") else command.words[start + (2 if word in SUBCOMMAND else 1) :]

    def server(hosts: list[str | None] | None, port: str | None, how: str) -> Server:
        known = hosts is not None and all(h is not None for h in hosts)
        number = int(port) if port is not None and port.isdigit() else None
        found = tuple(h for h in hosts or [] if h) if known else None
        return Server(name, command, start, found, number, how, tuple(args))

    if option(args, "--uds", "--fd") or (name == "fastlaunch" and _configured(context, "pyproject")):
        return server(None, None, "")
    if name in ("gunicorn", "hypercorn"):
        extra = split(env.get("GUNICORN_CMD_ARGS", "")) if name == "gunicorn" else []
        binds = [_value(b, command, env) for b in option(args, "-b", "--bind")] + option(extra, "-b", "--bind")
        if binds:
            addresses = [_split_bind(b) for b in binds]
            if any(a is None for a in addresses):
                return server(None, None, "")
            pairs = [a for a in addresses if a is not None]
            return server([h for h, _ in pairs], pairs[0][1], "-b")
        if option(args + extra, "-c", "--config") or (
            name == "gunicorn" and ("gunicorn.conf.py" in copied or _configured(context, "gunicorn"))
        ):
            return server(None, None, "")
        if name == "gunicorn" and "PORT" in env:  # gunicorn's default bind is 0.0.0.0:$PORT when PORT is set
            return server(["0.0.0.0"], env["PORT"], "PORT set by ENV")
        return server(["127.0.0.1"], "8000", "its default")
    if name == "fastlaunch":
        cli_bind = option(args, "--bind")
        if cli_bind or (not option(args, "--host", "--port") and "BIND" in env):
            address = _split_bind(_value(cli_bind[-1], command, env) if cli_bind else env["BIND"])
            if address is None:
                return server(None, None, "")
            return server([address[0]], address[1], "--bind" if cli_bind else "BIND set by ENV")
    host_env, host_default = HOST_SOURCES[name]
    port_env, port_default = PORT_SOURCES[name]
    hosts = option(args, "--host")
    if hosts:
        host, how = _value(hosts[-1], command, env), "--host"
    elif host_env and host_env in env:
        host, how = env[host_env], f"{host_env} set by ENV"
    else:
        host, how = host_default, "its default"
    ports = option(args, "--port")
    port = _value(ports[-1], command, env) if ports else env.get(port_env, port_default) if port_env else port_default
    return server([host], port, how)


def _split_bind(bind: str | None) -> tuple[str, str] | None:
    """(host, port) of host:port, [v6]:port or a bare host; None for unix:/fd:// or what is unknown."""
    if bind is None or bind.startswith(("unix:", "fd://")):
        return None
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<host>[^:]*)(?::(?P<port>[^:]+))?", bind)
    if not match:
        return None
    host = match.group("v6") or match.group("host") or "0.0.0.0"
    return host, match.group("p6") or match.group("port") or "8000"


def _configured(context: Path | None, what: str) -> bool:
    """Whether a file the server reads by itself may set its address (gunicorn's ./gunicorn.conf.py,
    fastlaunch's [tool.fastlaunch] host/port/bind)."""
    if context is None or not context.is_dir():
        return False
    if what == "gunicorn":
        return any(context.glob("gunicorn.conf.py")) or any(context.glob("*/gunicorn.conf.py"))
    pyproject = context / "pyproject.toml"
    if not pyproject.is_file():
        return False
    text = pyproject.read_text(encoding="utf-8", errors="replace")
    table = text.partition("[tool.fastlaunch]")[2].split("\n[", 1)[0]
    return bool(re.search(r"^\s*(host|port|bind)\s*=", table, re.M))


def loopback(host: str) -> bool:
    return bool(LOOPBACK.match(host))
