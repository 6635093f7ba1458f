"""Rules on what the final image does when it starts: its user (FL004), its command (FL003, FL011, FL012,
FL013, FL018, FL020), the address its server listens on (FL014, FL015), and which target a plain build gives
(FL019)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastlaunch.kit.lint.build import forwarded
from fastlaunch.kit.lint.findings import Finding
from fastlaunch.kit.lint.grammar import VARIABLE, Instruction, split, truthy
from fastlaunch.kit.lint.servers import SHELLS, Command, Server, commands, find_servers, loopback, option
from fastlaunch.kit.lint.stages import Build

WORKERS_FLAG = re.compile(r"^(?:--workers(?:=(?P<a>\S+))?|-w(?P<b>\S+)?)$")
DEV_TARGET = re.compile(r"^(dev|devel|develop|development|debug|local|tests?|testing)$|[-_](dev|development|debug)$")
ROOT = ("root", "0")
RUN_FIX = 'CMD ["fastlaunch", "run"]'
EXEC = re.compile(r"(^|[;&|]\s*|\s)exec\s")


def check_runtime(build: Build, context: Path | None) -> list[Finding]:
    entrypoint, cmd = build.command()
    base = build.base
    if entrypoint is None and cmd is None and base is not None and base.command:
        # the base image's own command: reported at the FROM that brings it
        cmd = Instruction(build.chain()[0].head.line, "CMD", (), base.command, True)
    env = build.env()
    every = commands(entrypoint, cmd)
    copied = frozenset(
        Path(source).name
        for stage in build.stages
        if stage.index in build.feeding()
        for ins in stage.body
        if ins.keyword in ("COPY", "ADD")
        for source in ins.value[:-1]
    )
    servers = find_servers(every, env, base.command if base else (), context, copied)
    findings = _check_user(build, env, servers)
    for ins in (entrypoint, cmd):
        if ins is not None:
            findings += _check_shell(ins, cmd if ins is entrypoint else None) + _check_server_args(ins)
    findings += _check_address(build, servers) + _check_literal_variables(servers)
    findings += _check_syncing_runner(every, env)
    findings += _check_target(build)
    return findings


def _check_user(build: Build, env: dict[str, str], servers: list[Server]) -> list[Finding]:
    user = build.last("USER")
    name = user.value[0].split(":")[0] if user is not None and user.value else None
    base = build.base
    if name is not None and name not in ROOT:
        return []
    if base is not None and base.runs == "nonroot" and user is None:
        return []
    worker_user = env.get("WORKER_USER", "").split(":")[0]
    for server in servers:
        if server.name == "fastlaunch" and worker_user and worker_user not in ROOT:
            return []  # fastlaunch's master binds as root, its workers (the app) run as WORKER_USER
        if server.name == "gunicorn" and any(u not in ROOT for u in option(list(server.args), "-u", "--user")):
            return []
    ins = user or build.final.head
    what = f"USER {user.value[0]}" if user is not None and user.value else "no USER"
    fix = (
        "create a user (RUN useradd --uid 10001 --user-group app) and add USER 10001:10001 before CMD; the server "
        "must then listen on a port of 1024 or above (e.g. 8000, with EXPOSE 8000): a non-root process may not "
        "bind port 80 (Kubernetes does not allow it)"
    )
    if base is not None and base.runs == "workers" and any(s.name == "fastlaunch" for s in servers):
        what += f", and WORKER_USER={worker_user} keeps the workers as root"
        fix = "remove that WORKER_USER: the drop-in runs its workers as the user app (and its master as root)"
    elif base is not None and base.runs == "workers":
        what += "; the drop-in runs its workers as app only when fastlaunch starts them"
        fix = f"{RUN_FIX} (the image's own command), with the server's options as settings (PORT, WEB_CONCURRENCY...)"
    elif base is not None and base.description == "the tiangolo image":
        fix = "move to fastlaunch's drop-in image (FL010's FROM line): its workers run as the user app"
    return [Finding(ins.line, "FL004", f"the final stage runs as root ({what})", fix)]


def _check_shell(ins: Instruction, cmd: Instruction | None) -> list[Finding]:
    """``cmd``: the CMD after this ENTRYPOINT, which is the script of an ``ENTRYPOINT ["sh", "-c"]``."""
    argv = ins.argv()
    if not ins.json:
        if EXEC.search(" ".join(ins.value)):  # `CMD exec gunicorn ...`: the shell replaces itself
            return []
        return [
            Finding(
                ins.line,
                "FL003",
                f"{ins.keyword} in shell form runs under /bin/sh -c, which does not pass SIGTERM on: no graceful "
                "shutdown",
                f'use the exec form: {ins.keyword} ["fastlaunch", "run"]',
                f'{ins.keyword} ["fastlaunch", "run"]',
            )
        ]
    if len(argv) >= 2 and Path(argv[0]).name in SHELLS and argv[1] == "-c":
        script = " ".join(argv[2:]) or (" ".join(cmd.argv()) if cmd is not None and cmd.json else "")
        # bash 5.1+ execs the last command of an && chain itself (dash, Debian's /bin/sh, does not).
        bash_execs = Path(argv[0]).name == "bash" and not re.search(r"[;|\n]|&(?!&)", script.replace("&&", ""))
        if not bash_execs and (not script or not EXEC.search(script)):
            what = repr(_shorten(script)) if script else "its script comes from CMD"
            return [
                Finding(
                    ins.line,
                    "FL003",
                    f"{ins.keyword} runs the server as a child of {argv[0]} -c ({what}): the shell is PID 1 and "
                    "does not pass SIGTERM on: no graceful shutdown",
                    f"{RUN_FIX}: it runs the migrations and prestart script itself, then execs the server (or end "
                    "the script with `exec <server>`)",
                    RUN_FIX,
                )
            ]
    return []


def _check_server_args(ins: Instruction) -> list[Finding]:
    words = [w for a in ins.argv() for w in (split(a) if ins.json and " " in a else [a])]
    findings: list[Finding] = []
    dev_server = any(
        a == "dev" and i > 0 and Path(words[i - 1]).name in ("fastapi", "fastlaunch") for i, a in enumerate(words)
    )
    if "--reload" in words or dev_server:
        findings.append(
            Finding(
                ins.line,
                "FL011",
                f"{ins.keyword} starts a reloading development server: it watches files, runs one process and "
                "restarts on any change",
                f"{RUN_FIX} (keep --reload and `fastlaunch dev` for your laptop)",
                RUN_FIX,
            )
        )
    for i, word in enumerate(words):
        flag = WORKERS_FLAG.match(word)
        count = (flag.group("a") or flag.group("b") or (words[i + 1] if i + 1 < len(words) else "")) if flag else ""
        if count.isdigit():
            findings.append(
                Finding(
                    ins.line,
                    "FL012",
                    f"{ins.keyword} hard-codes {count} workers: the same count on every machine, whatever the "
                    "container's CPU and memory limits",
                    "drop it: fastlaunch run sizes the workers from the container's limits (set WEB_CONCURRENCY at "
                    "run time to override)",
                )
            )
        if word.startswith("--forwarded-allow-ips"):
            value = word.partition("=")[2] or (words[i + 1] if i + 1 < len(words) else "")
            if "*" in value.strip("'\"").split(","):
                findings.append(forwarded(ins, "--forwarded-allow-ips=*"))
    return findings


def _check_address(build: Build, servers: list[Server]) -> list[Finding]:
    findings: list[Finding] = []
    exposed, unknown = build.exposed()
    for server in servers:
        ins, label = server.command.ins, _label(server)
        if server.hosts and all(loopback(h) for h in server.hosts):
            fix, replacement = _host_fix(server)
            findings.append(
                Finding(
                    ins.line,
                    "FL014",
                    f"{label} listens on {server.hosts[0]} ({server.how}): inside a container that is the "
                    "container's own loopback, which no published port or other container reaches",
                    fix,
                    replacement,
                )
            )
        if server.port is not None and exposed and not unknown and server.port not in exposed:
            shown = ", ".join(str(p) for p in sorted(exposed))
            findings.append(
                Finding(
                    ins.line,
                    "FL015",
                    f"{label} listens on port {server.port} but the image EXPOSEs {shown}: `docker run -P`, "
                    "compose and platforms that read EXPOSE send the traffic where nothing listens",
                    f"make them the same: EXPOSE {server.port}, or start the server on port {min(exposed)}",
                )
            )
    return findings


def _check_literal_variables(servers: list[Server]) -> list[Finding]:
    """``CMD ["gunicorn", "-b", "0.0.0.0:$PORT"]``: no shell, so the server receives the text `$PORT`."""
    findings = []
    for server in servers:
        literal = [w for w in server.args if VARIABLE.search(w)]
        if server.command.shell or not literal:
            continue
        findings.append(
            Finding(
                server.command.ins.line,
                "FL020",
                f"{server.command.ins.keyword} passes {literal[0]!r} to {_label(server)} as written: the exec form "
                "runs no shell, so no variable is expanded and the server gets the literal text",
                "let the server read the variable itself (fastlaunch run, fastapi run and gunicorn read PORT; "
                "fastlaunch run also HOST and BIND), write the value, or run it through a shell: "
                '["sh", "-c", "exec <server> ... $PORT"]',
            )
        )
    return findings


def _label(server: Server) -> str:
    return f"{server.name} run" if server.name in ("fastapi", "fastlaunch") else server.name


def _host_fix(server: Server) -> tuple[str, str | None]:
    """The fix for a loopback address, with the exact CMD line where the command is one exec-form array."""
    command, port = server.command, server.port or 8000
    if server.name in ("gunicorn", "hypercorn"):
        flag, value = "-b", f"0.0.0.0:{port}"
        fix = f"bind every interface: -b 0.0.0.0:{port}"
    else:
        flag, value = "--host", "0.0.0.0"
        fix = "listen on every interface: --host 0.0.0.0"
        if server.how.endswith("set by ENV"):
            variable = server.how.split()[0]
            if server.name == "fastlaunch":
                return f"set {variable}=0.0.0.0, or remove it (fastlaunch's default is 0.0.0.0)", None
            return f"set {variable}=0.0.0.0, or pass --host 0.0.0.0", None
    if not command.exact or server.how.endswith("set by ENV"):
        return fix, None
    words = list(command.words)
    long_flag = "--bind" if flag == "-b" else flag
    for i, word in enumerate(words):
        if word in (flag, long_flag) and i + 1 < len(words):
            words[i + 1] = value
        elif word.startswith(long_flag + "="):
            words[i] = f"{long_flag}={value}"
    if words == command.words:
        words += [flag, value]
    replacement = f"{command.ins.keyword} {json.dumps(words)}"
    return f"{replacement}  ({fix.split(': ')[0]})", replacement


def _check_syncing_runner(every: list[Command], env: dict[str, str]) -> list[Finding]:
    """``uv run`` (and ``hatch run``, ``uvx``) install at every start what the build should have installed."""
    for command in every:
        words = command.words
        for i, word in enumerate(words):
            head = Path(word).name
            if head == "uv" and "run" in words[i + 1 : i + 2]:
                options = _runner_options(words[i + 2 :])
                if "--no-sync" in options or truthy(env.get("UV_NO_SYNC")):
                    break
                replacement = None
                if command.exact:
                    fixed = [*command.words[: i + 2], "--no-sync", *command.words[i + 2 :]]
                    replacement = f"{command.ins.keyword} {json.dumps(fixed)}"
                return [_runner(command.ins, "uv run", "syncs the environment with the lock", replacement)]
            if head == "hatch" and "run" in words[i + 1 : i + 2]:
                return [_runner(command.ins, "hatch run", "creates or syncs its environment", None)]
            if head == "uvx" or (head == "uv" and words[i + 1 : i + 3] == ["tool", "run"]):
                return [_runner(command.ins, "uvx", "installs the tool", None)]
            if not word.startswith("-") and i > 0:
                break
    return []


def _runner_options(words: list[str]) -> list[str]:
    options = []
    for word in words:
        if not word.startswith("-"):
            break
        options.append(word)
    return options


def _runner(ins: Instruction, what: str, does: str, replacement: str | None) -> Finding:
    fix = (
        "start the program from the environment the build installed (e.g. /app/.venv/bin/uvicorn, or put the "
        "environment's bin on PATH)"
    )
    if replacement:
        fix += f", or: {replacement}"
    return Finding(
        ins.line,
        "FL018",
        f"{ins.keyword} starts with {what}, which {does} at every start: slow, may reach the network (and install "
        "the development dependencies the build left out)",
        fix,
        replacement,
    )


def _check_target(build: Build) -> list[Finding]:
    final = build.final
    if len(build.stages) < 2 or final.name is None or not DEV_TARGET.search(final.name):
        return []
    others = [s.name for s in build.stages[:-1] if s.name and not DEV_TARGET.search(s.name)]
    target = f"--target {others[-1]}" if others else "--target <production stage>"
    return [
        Finding(
            final.head.line,
            "FL019",
            f"the last stage is `{final.name}`, a development target: `docker build` without --target builds it, "
            "and the image ships what development needs",
            f"put the production stage last (or build with {target} everywhere the image is built)",
        )
    ]


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
