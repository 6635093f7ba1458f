"""scripts/install-system-deps installs every tool the suite drives: a tool a test requires (support.require_tool)
and what podman needs to run what the tests ask of it, each mapped to the Debian package that ships it.

On a machine where a tool is installed from Debian, the package that owns its file is checked against the
table too, so the table cannot name the wrong package."""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent  # tests/
SCRIPT = TESTS.parent / "scripts" / "install-system-deps"
# tool -> (the package install-system-deps lists, packages that may own the file: the listed one's
# dependencies, or another source the script accepts)
TOOLS: dict[str, tuple[str, frozenset[str]]] = {
    "chromium": ("chromium", frozenset()),
    "make": ("make", frozenset()),
    "curl": ("curl", frozenset()),
    "initdb": ("postgresql", frozenset({"postgresql-15", "postgresql-16", "postgresql-17"})),
    "postgres": ("postgresql", frozenset({"postgresql-15", "postgresql-16", "postgresql-17"})),
    # the script installs kubernetes-client only when another kubectl is already there
    "kubectl": ("kubernetes-client", frozenset({"kubectl"})),
    "nginx": ("nginx", frozenset({"nginx-core", "nginx-light", "nginx-full", "nginx-extras"})),
    "openssl": ("openssl", frozenset()),
    "runuser": ("util-linux", frozenset()),
    "unshare": ("util-linux", frozenset()),
    "systemd-analyze": ("systemd", frozenset()),
    "wrk": ("wrk", frozenset()),
    "valgrind": ("valgrind", frozenset()),  # make bench's instruction counts (bench/instructions.py)
    "podman": ("podman", frozenset()),
    "buildah": ("buildah", frozenset()),
    "runc": ("runc", frozenset()),
    "debootstrap": ("debootstrap", frozenset()),
    "iptables": ("iptables", frozenset()),
    # podman's own helpers, found by podman rather than on PATH: kube play's pause image needs catatonit
    # (only recommended by podman, so --no-install-recommends leaves it out), networks need the other two.
    "catatonit": ("catatonit", frozenset()),
    "netavark": ("netavark", frozenset()),
    "aardvark-dns": ("aardvark-dns", frozenset()),
    # fastlaunch init swarm's stack, deployed on a single-node swarm in a network namespace of its own
    "dockerd": ("docker.io", frozenset()),
    "containerd": ("docker.io", frozenset({"containerd"})),
    "nsenter": ("util-linux", frozenset()),
    "ip": ("iproute2", frozenset()),
}
PODMAN_HELPERS = ("catatonit", "netavark", "aardvark-dns")
HELPER_DIRS = ("/usr/libexec/podman", "/usr/lib/podman")
# There before the script runs: util-linux is Essential in Debian, and make is what runs the script (make test).
ESSENTIAL = frozenset({"util-linux", "make"})


def required_tools() -> dict[str, str]:
    """Every tool name passed to require_tool in the tests, with the file it is required in. A name must be a
    literal (or a for-loop over literals) so this test can check it."""
    found: dict[str, str] = {}
    for file in sorted(TESTS.rglob("*.py")):
        if "assets" in file.relative_to(TESTS).parts:
            continue
        tree = ast.parse(file.read_text(), filename=str(file))
        loops: dict[str, list[str]] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                if isinstance(node.iter, ast.Tuple | ast.List):
                    loops[node.target.id] = [
                        e.value for e in node.iter.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
                    ]
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "require_tool" and node.args):
                continue
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names = [arg.value]
            elif isinstance(arg, ast.Name) and arg.id in loops:
                names = loops[arg.id]
            else:
                pytest.fail(f"{file}:{node.lineno}: require_tool needs a literal name (or a loop over literals)")
            for name in names:
                found.setdefault(name, str(file.relative_to(TESTS)))
    return found


def listed_packages() -> set[str]:
    result = subprocess.run([str(SCRIPT), "--list"], capture_output=True, text=True, check=True, timeout=30)
    return set(result.stdout.split())


def test_every_required_tool_has_a_package_the_script_installs() -> None:
    tools = required_tools()
    assert {"podman", "kubectl", "initdb"} <= tools.keys()  # the scan finds literals and loops
    unmapped = sorted(f"{tool} (in {where})" for tool, where in tools.items() if tool not in TOOLS)
    assert not unmapped, f"add these tools to TOOLS here and their package to install-system-deps: {unmapped}"
    listed = listed_packages()
    missing = sorted(
        f"{tool}: {package}"
        for tool, (package, _) in TOOLS.items()
        if package not in listed and package not in ESSENTIAL
    )
    assert not missing, f"scripts/install-system-deps does not install: {missing}"


def test_list_mode_prints_what_the_script_would_install_and_installs_nothing() -> None:
    listed = listed_packages()
    assert {"podman", "catatonit", "runc", "postgresql"} <= listed
    # --list must never reach apt: no lock taken, no root needed.
    assert (
        "apt-get"
        not in subprocess.run(
            ["bash", "-x", str(SCRIPT), "--list"], capture_output=True, text=True, check=True, timeout=30
        ).stderr
    )


def _located(tool: str) -> str | None:
    if tool in PODMAN_HELPERS:
        return shutil.which(tool) or next((f"{d}/{tool}" for d in HELPER_DIRS if Path(f"{d}/{tool}").exists()), None)
    return shutil.which(tool) or next((str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))), None)


def _owner(path: str) -> str | None:
    """The Debian package that owns a file (tried as found, resolved, and without /usr for merged-usr)."""
    resolved = str(Path(path).resolve())
    for candidate in dict.fromkeys((resolved, path, resolved.removeprefix("/usr"), path.removeprefix("/usr"))):
        result = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False, timeout=30)
        if result.returncode == 0:
            return result.stdout.split(":", 1)[0].split(",")[0].strip()
    return None


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_the_installed_tool_comes_from_the_package_the_table_names(tool: str) -> None:
    if shutil.which("dpkg") is None:
        pytest.skip("not a Debian machine: no dpkg to ask")
    path = _located(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed here")
    owner = _owner(path)
    if owner is None:
        pytest.skip(f"{path} was not installed from a Debian package")
    package, others = TOOLS[tool]
    assert owner == package or owner in others, f"{path} belongs to {owner}, the table says {package}"
