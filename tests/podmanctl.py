"""Podman for tests: private config and storage, a base image built from Debian with debootstrap (nothing
can be pulled here), and builds that pass the host's CA bundle as a build secret.

Storage lives under FASTLAUNCH_PODMAN_DIR (default /var/tmp/fastlaunch-podman) so the base image and the
layer cache survive between test sessions; CI starts from an empty directory and builds everything.
See ../shared/notes/containers.md for why each setting is here (runc, ulimits, cgroupfs).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import resource
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(os.environ.get("FASTLAUNCH_PODMAN_DIR", "/var/tmp/fastlaunch-podman"))
BASE = "localhost/python:3.11-slim"
CA = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_PACKAGES = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
# What Debian's slim images leave out (dpkg path-excludes), python:3.X-slim's base among them; the stand-in
# would otherwise be 33 MB (locales) heavier than the image it stands for.
SLIM_EXCLUDES = ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")
RECIPE_LABEL = "fastlaunch.base-recipe"
# The Debian release whose python3 stands in for python:3.X-slim (the drop-in images are built on more than one).
STANDIN_SUITES = {"3.11": "bookworm", "3.13": "trixie"}
BASE_RECIPE = hashlib.sha256(f"{DEBIAN_PACKAGES}|{'|'.join(SLIM_EXCLUDES)}|no-pyc".encode()).hexdigest()[:12]


def _mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    for line in Path("/etc/apt/sources.list").read_text().splitlines():
        if line.startswith("deb "):
            return line.split()[1]
    return "http://deb.debian.org/debian"


@dataclass(frozen=True)
class Podman:
    root: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.root / "conf/containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.root / "conf/storage.conf"),
            "TMPDIR": str(self.root / "run/tmp"),
        }

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 900, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def configure(self) -> None:
        for sub in ("conf/networks", "run/tmp", "storage"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        _replace(
            self.root / "conf/storage.conf",
            f'[storage]\ndriver = "overlay"\nrunroot = "{self.root}/run/storage"\ngraphroot = "{self.root}/storage"\n',
        )
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        _replace(
            self.root / "conf/containers.conf",
            "[containers]\n"
            f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc=32768:32768"]\n'
            "[engine]\n"
            'runtime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{self.root}/run/events.log"\ntmp_dir = "{self.root}/run/libpod"\n'
            f'volume_path = "{self.root}/storage/volumes"\n'
            f'[network]\nnetwork_config_dir = "{self.root}/conf/networks"\n',
        )

    def ensure_base(self, python: str = "3.11") -> None:
        """The stand-in for python:3.X-slim (3.11 unless another of STANDIN_SUITES is named): Debian minbase
        with Python, imported once (again when the recipe below changes: the image carries a label naming it)."""
        base = f"localhost/python:{python}-slim"
        if self.base_recipe(base) == BASE_RECIPE:
            return
        suite = STANDIN_SUITES[python]
        rootfs = self.root / ("rootfs" if suite == "bookworm" else f"rootfs-{suite}")
        if not (rootfs / "usr/bin/python3").exists():
            shutil.rmtree(rootfs, ignore_errors=True)
            subprocess.run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={DEBIAN_PACKAGES}",
                    suite,
                    str(rootfs),
                    _mirror(),
                ],
                check=True,
                capture_output=True,
                timeout=1200,
            )
            subprocess.run(["chroot", str(rootfs), "apt-get", "clean"], check=True, capture_output=True)
        for sub in SLIM_EXCLUDES:
            shutil.rmtree(rootfs / sub, ignore_errors=True)
            (rootfs / sub).mkdir(parents=True)
        # The official images ship Python without bytecode (docker-library/python#615: ~30 MB); Debian
        # compiles it at install.
        for cache in list(rootfs.glob("usr/lib/python3*/**/__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)
        # The official images allow a global pip install; Debian's PEP 668 marker forbids it.
        (rootfs / f"usr/lib/python{python}/EXTERNALLY-MANAGED").unlink(missing_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            [
                *("podman", "import", "--change", 'CMD ["python3"]', "--change", "ENV LANG=C.UTF-8"),
                *("--change", f"LABEL {RECIPE_LABEL}={BASE_RECIPE}", "-", base),
            ],
            stdin=tar.stdout,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        tar.wait()
        self("tag", base, f"docker.io/library/python:{python}-slim")

    def base_recipe(self, image: str = BASE) -> str | None:
        """The recipe label of a stand-in base image, or None when there is no such image."""
        found = self("image", "inspect", "--format", f'{{{{index .Labels "{RECIPE_LABEL}"}}}}', image, check=False)
        return found.stdout.strip() if found.returncode == 0 else None

    @property
    def build_secret(self) -> Path:
        """The `ca` build secret: the host CA bundle plus a throwaway certificate of our own, so a test can
        always look for the secret in an image, even where the host's bundle is the stock one."""
        path = self.root / "run/build-ca.pem"
        if not path.is_file() or path.stat().st_mtime < CA.stat().st_mtime:
            marker = self.root / "run/marker.pem"
            subprocess.run(
                [
                    *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
                    *("-nodes", "-keyout", "/dev/null", "-subj", "/CN=fastlaunch build secret marker"),
                    *("-days", "3650", "-out", str(marker)),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            path.write_text(CA.read_text().rstrip("\n") + "\n" + marker.read_text())
        return path

    def build(self, context: Path, tag: str, *extra: str) -> str:
        """Build with the `ca` build secret (the generated Dockerfile mounts it for its pip steps only);
        returns the build log."""
        secret = f"id=ca,src={self.build_secret}"
        args = ["build", "--pull=never", "--format", "docker", "--secret", secret, "-t", tag, *extra]
        return self(*args, str(context)).stdout

    def image_size(self, tag: str) -> int:
        return int(self("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())

    @contextmanager
    def container(self, image: str, *args: str, run_args: Sequence[str] = ()) -> Iterator[str]:
        """Run a detached container; removed by its id afterwards."""
        cid = self("run", "-d", "--pull=never", *run_args, image, *args).stdout.strip()
        try:
            yield cid
        finally:
            self("rm", "-f", "-t", "2", cid, check=False)


def _replace(path: Path, text: str) -> None:
    """Write a config file atomically, and only when it changes: another test session's podman may be reading
    it (a build outside the lock read a half-written storage.conf: "runroot must be set")."""
    if path.is_file() and path.read_text() == text:
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepared(root: Path = ROOT, pythons: Sequence[str] = ("3.11",)) -> Podman:
    """Podman configured, with the stand-in base for each Python named (of STANDIN_SUITES)."""
    podman = Podman(root)
    with _locked(root):
        podman.configure()
        for python in pythons:
            podman.ensure_base(python)
    return podman


if __name__ == "__main__":  # warm the cache: python tests/podmanctl.py
    prepared()
    print(f"base image {BASE} ready under {ROOT}")


def cleanup_netfilter() -> None:
    """Remove the iptables chains netavark leaves behind once nothing uses them: no port forward, no
    network's masquerade or forward rule (other podman users on this host may still need them)."""

    def rules(*table: str) -> list[str]:
        out = subprocess.run(["iptables", *table, "-S"], capture_output=True, text=True, check=False).stdout
        return out.splitlines()

    nat, filter_ = rules("-t", "nat"), rules()
    fixed = ("-A NETAVARK-HOSTPORT-MASQ ", "-A NETAVARK-HOSTPORT-SETMARK ", "-A PREROUTING ", "-A OUTPUT ")
    live = [
        line
        for line in nat + filter_
        if line.startswith("-A ")
        and "NETAVARK" in line
        and not line.startswith(fixed)
        and "-j NETAVARK-HOSTPORT-MASQ" not in line
        and "-j NETAVARK_FORWARD" not in line
    ]
    if live:
        return
    commands = [
        ["-t", "nat", "-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT"],
        ["-t", "nat", "-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "NETAVARK-HOSTPORT-DNAT"],
        ["-t", "nat", "-D", "POSTROUTING", "-j", "NETAVARK-HOSTPORT-MASQ"],
        ["-D", "FORWARD", "-m", "comment", "--comment", "netavark firewall plugin rules", "-j", "NETAVARK_FORWARD"],
    ]
    for line in nat:
        if line.startswith("-N NETAVARK"):
            chain = line.split()[1]
            commands += [["-t", "nat", "-F", chain], ["-t", "nat", "-X", chain]]
    commands += [["-F", "NETAVARK_FORWARD"], ["-X", "NETAVARK_FORWARD"]]
    for args in commands:
        subprocess.run(["iptables", *args], capture_output=True, check=False)
