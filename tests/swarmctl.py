"""A single-node Docker Swarm for tests, inside a network namespace of its own.

dockerd (Debian's docker.io) runs in a namespace the test creates (`ip netns add`, then `nsenter --net=`: `ip netns
exec` would remount /sys and hide the cgroup v1 mounts), so its bridges, overlay networks and iptables rules
never touch the host's; its data and state live in directories of its own, its API on a socket of its own.
Nothing can be pulled: images come from podman's storage (`podman save | docker load`), and the daemon runs with
DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 so a service uses them without asking a registry.
Teardown removes the stack, leaves the swarm, stops the daemon by its PID, then removes its directories and the
namespace, and `leftovers()` names anything that would survive (see ../shared/notes/containers.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from podmanctl import Podman
from support import IN_CI

# Debian's client, the one docker.io ships (another `docker` may come first on PATH).
DEBIAN_CLI = Path("/usr/bin/docker")
CGROUPS = Path("/sys/fs/cgroup")
# dockerd keeps its plugin sockets here whatever its --exec-root says.
PLUGINS = Path("/run/docker/plugins")


def wait(check: Callable[[], object], what: str, timeout: float, interval: float = 0.5) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached within {timeout:.0f}s (last: {last!r})")


@dataclass
class Swarm:
    namespace: str
    root: Path  # data-root, exec-root, socket, pid file and log
    cli: str
    process: subprocess.Popen[bytes] | None = None
    made_plugins_dir: bool = False

    @property
    def cgroup(self) -> str:
        """The cgroup the containers go under (in each hierarchy), named for this swarm so it can be removed."""
        return self.namespace

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def netns(self) -> str:
        return f"/run/netns/{self.namespace}"

    def docker(
        self, *args: str, check: bool = True, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.cli, "-H", f"unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            output = result.stdout + result.stderr
            raise AssertionError(f"docker {' '.join(args)} failed ({result.returncode}):\n{output}")
        return result

    def inside(self, *command: str) -> list[str]:
        """A command line that runs in the swarm's network namespace (where its published ports are)."""
        return ["nsenter", f"--net={self.netns}", *command]

    def start(self) -> None:
        self.made_plugins_dir = not PLUGINS.parent.exists()
        subprocess.run(["ip", "netns", "add", self.namespace], check=True, capture_output=True)
        subprocess.run(["ip", "-n", self.namespace, "link", "set", "lo", "up"], check=True, capture_output=True)
        for sub in ("data", "exec"):
            (self.root / sub).mkdir(parents=True)
        log = (self.root / "dockerd.log").open("wb")
        self.process = subprocess.Popen(
            self.inside(
                "dockerd",
                f"--data-root={self.root / 'data'}",
                f"--exec-root={self.root / 'exec'}",
                f"--pidfile={self.root / 'dockerd.pid'}",
                f"--host=unix://{self.socket}",
                f"--cgroup-parent=/{self.cgroup}",
                "--log-level=warn",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE": "1"},
        )
        wait(lambda: self._answers(), "dockerd answering on its socket", 60, 0.1)
        # Loopback only: the machine's other interfaces are never advertised or listened on.
        self.docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--listen-addr", "127.0.0.1:2377")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"dockerd exited with {self.process.returncode}:\n{self.log()}")
        return self.socket.exists() and self.docker("version", check=False, timeout=10).returncode == 0

    def log(self) -> str:
        path = self.root / "dockerd.log"
        return path.read_text(errors="replace")[-4000:] if path.is_file() else ""

    def load(self, podman: Podman, images: Sequence[str]) -> None:
        """Copy images from podman's storage into the daemon."""
        save = subprocess.Popen(["podman", "save", "-m", *images], env=podman.env, stdout=subprocess.PIPE)
        loaded = subprocess.run(
            [self.cli, "-H", f"unix://{self.socket}", "load"],
            stdin=save.stdout,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        save.wait(600)
        assert save.returncode == 0 and loaded.returncode == 0, loaded.stderr

    def service(self, stack: str, name: str) -> dict[str, object]:
        found: list[dict[str, object]] = json.loads(self.docker("service", "inspect", f"{stack}_{name}").stdout)
        return found[0]

    def tasks(self, stack: str, name: str) -> list[dict[str, str]]:
        out = self.docker(
            "service", "ps", f"{stack}_{name}", "--no-trunc", "--format", "{{json .}}", check=False
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def remove_stack(self, stack: str) -> None:
        """`docker stack rm`, then wait until its networks are gone: a deploy before that fails."""
        self.docker("stack", "rm", stack, check=False)
        label = f"label=com.docker.stack.namespace={stack}"

        def gone() -> bool:
            networks = self.docker("network", "ls", "-q", "--filter", label, check=False).stdout.split()
            containers = self.docker("ps", "-aq", "--filter", label, check=False).stdout.split()
            return not networks and not containers

        wait(gone, f"stack {stack} removed", 120)

    def stop(self) -> None:
        """Leave the swarm and stop the daemon by its PID; then remove its files and the namespace."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.docker("swarm", "leave", "--force", check=False, timeout=60)
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(60)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(30)
        finally:
            for mount in [m for m in self.mounts() if m != self.netns]:  # normally none: dockerd unmounts its own
                subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
            shutil.rmtree(self.root, ignore_errors=True)
            subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True, check=False)
            for group in self.cgroups():  # empty once the containers are gone
                with contextlib.suppress(OSError):  # cpu and cpuacct may be one hierarchy under two names
                    group.rmdir()
            if self.made_plugins_dir:
                shutil.rmtree(PLUGINS.parent, ignore_errors=True)

    def cgroups(self) -> list[Path]:
        return sorted(CGROUPS.glob(f"*/{self.cgroup}"))

    def mounts(self) -> list[str]:
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        return [p for p in points if p.startswith(str(self.root)) or p == self.netns]

    def leftovers(self) -> list[str]:
        """What of this swarm is still on the machine: namespace, daemon, mounts, files, host rules."""
        found: list[str] = []
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
        if any(line.split()[0] == self.namespace for line in namespaces.splitlines() if line.strip()):
            found.append(f"network namespace {self.namespace}")
        if self.process is not None and self.process.poll() is None:
            found.append(f"dockerd (pid {self.process.pid})")
        found += [f"mount {m}" for m in self.mounts()]
        if self.root.exists():
            found.append(f"directory {self.root}")
        found += [f"cgroup {group}" for group in self.cgroups()]
        if self.made_plugins_dir and PLUGINS.parent.exists():
            found.append(f"directory {PLUGINS.parent}")
        return found


def host_docker_rules() -> list[str]:
    """The host namespace's iptables rules that mention Docker: the swarm's must never appear there."""
    lines: list[str] = []
    for table in ("filter", "nat"):
        out = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True, check=False).stdout
        lines += [f"{table}: {line}" for line in out.splitlines() if "DOCKER" in line.upper()]
    return lines


@contextmanager
def swarm(root: Path) -> Iterator[Swarm]:
    """A started single-node swarm; stopped and removed afterwards, whatever happened."""
    cli = str(DEBIAN_CLI) if DEBIAN_CLI.is_file() else (shutil.which("docker") or "docker")
    node = Swarm(f"fl-swarm-{os.getpid()}", root, cli)
    try:
        if os.geteuid() != 0:
            unavailable("a network namespace and dockerd need root")
        try:
            node.start()
        except (AssertionError, subprocess.CalledProcessError, OSError) as exc:
            detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
            unavailable(f"dockerd cannot start a swarm here: {detail}\n{node.log()}")
        yield node
    finally:
        node.stop()


def unavailable(reason: str) -> None:
    """Skip where Docker cannot run; in CI, where .ci/run installs it, that is a failure."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)
