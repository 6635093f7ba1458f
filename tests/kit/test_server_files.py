"""The classic-server files (`fastlaunch init server`), run with the real programs: Debian's nginx with a
throwaway self-signed certificate in front of `fastlaunch run`, and supervisord from PyPI."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import signal
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from projects import copy_project
from support import FASTLAUNCH, free_port, require_tool, running, wait_for_http

from fastlaunch import __version__
from fastlaunch.core.pyproject import read_tool_table
from fastlaunch.core.settings import Settings, load_settings
from fastlaunch.kit.project import detect
from fastlaunch.kit.render import Options, ServerOptions, render

VENV = Path(sys.executable).parent.parent
CLIENT = "127.0.0.2"  # the "real client": any 127/8 address is loopback; the proxy itself is 127.0.0.1


def project_settings(project: Path) -> Settings:
    table, path = read_tool_table(project)
    return load_settings(cli={}, environ={}, pyproject=table, pyproject_path=path, project_dir=project)


def server_files(project: Path, server: ServerOptions | None, domain: str = "localhost") -> dict[str, str]:
    """The files `fastlaunch init server` writes; server=None: its defaults (/srv/<name>, user <name>)."""
    settings = project_settings(project)
    files = render(detect(settings), settings, ["server"], Options(domain=domain, server=server))
    return {Path(name).name: content for name, content in files.items()}


def self_signed(directory: Path) -> tuple[Path, Path]:
    openssl = require_tool("openssl", "makes the throwaway certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def client(cert: Path | None = None) -> httpx.Client:
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(cert)) if cert else False
    return httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT, verify=verify), timeout=10)


# -- the rendered files, read the way their programs read them (nginx, systemd, supervisord)


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] = field(default_factory=list)

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block if d.name == name]

    def one(self, name: str) -> Directive:
        found = self.all(name)
        assert len(found) == 1, f"{len(found)} {name} directive(s) in {self.name} {' '.join(self.args)}"
        return found[0]


NGINX_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|#[^\n]*|[{};]|[^\s{};"\'#]+')


def parse_nginx(text: str) -> Directive:
    """nginx's configuration syntax: directives end with ';', blocks nest in braces, quotes are stripped."""
    root = Directive("", [])
    stack, words = [root], list[str]()
    for token in NGINX_TOKEN.findall(text):
        if token.startswith("#"):
            continue
        if token in (";", "{"):
            directive = Directive(words[0], words[1:])
            stack[-1].block.append(directive)
            if token == "{":
                stack.append(directive)
            words = []
        elif token == "}":
            assert not words, words
            stack.pop()
        else:
            words.append(token[1:-1] if token[0] in "\"'" else token)
    assert len(stack) == 1 and not words, "unbalanced braces or a missing ';'"
    return root


def nginx_seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|)", value)
    assert match, value
    return int(match[1]) * {"ms": 0.001, "s": 1, "": 1, "m": 60, "h": 3600}[match[2]]


def nginx_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, value
    return int(match[1]) * {"": 1, "k": 1024, "m": 1024 * 1024, "g": 1024 * 1024 * 1024}[match[2].lower()]


def https_server(site: Directive) -> Directive:
    (server,) = [s for s in site.all("server") if any("ssl" in listen.args for listen in s.all("listen"))]
    return server


def peer_ports(port: int, *, established: bool = False) -> set[int]:
    """Client-side ports of the IPv4 TCP connections to 127.0.0.1:port, from either end's entry in
    /proc/net/tcp (closed ones linger in TIME_WAIT; established=True: open ones only)."""
    ports: set[int] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = (int(column.rsplit(":", 1)[-1], 16) for column in line.split()[1:4])
        if state == 0x0A or (established and state != 0x01):  # 0A LISTEN, 01 ESTABLISHED
            continue
        if remote == port:
            ports.add(local)
        elif local == port:
            ports.add(remote)
    return ports


def test_nginx_site_terminates_tls_and_the_app_sees_https_and_the_client(tmp_path: Path) -> None:
    nginx = require_tool("nginx", "the generated site is served by the real nginx")
    project = copy_project("single", tmp_path)
    cert, key = self_signed(tmp_path)
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    options = ServerOptions(
        install_dir=str(project),
        venv=str(VENV),
        user=None,
        port=app_port,
        http_port=http_port,
        https_port=https_port,
        certificate=str(cert),
        certificate_key=str(key),
    )
    site = tmp_path / "site.conf"
    site.write_text(server_files(project, options)["single-nginx.conf"])
    temp = tmp_path / "nginx-temp"
    temp.mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\nhttp {\n"
        f"  access_log {tmp_path}/access.log;\n"
        + "".join(
            f"  {kind}_temp_path {temp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {site};\n}}\n"
    )
    check = subprocess.run(
        [nginx, "-t", "-e", str(tmp_path / "error.log"), "-c", str(conf)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    env = {"HOST": "127.0.0.1", "PORT": str(app_port), "WEB_CONCURRENCY": "1"}
    with running(
        [FASTLAUNCH, "run"], cwd=project, env=env, log=tmp_path / "app.log", ready_url=f"http://127.0.0.1:{app_port}/"
    ):
        with running(
            [nginx, "-e", str(tmp_path / "error.log"), "-c", str(conf)],
            cwd=tmp_path,
            log=tmp_path / "nginx.log",
            ready_url=f"http://127.0.0.1:{http_port}/",
        ):
            with client(cert) as https:
                seen = https.get(f"https://127.0.0.1:{https_port}/whoami")
                assert seen.status_code == 200 and seen.json() == {"client": CLIENT, "scheme": "https"}
                assert seen.headers["strict-transport-security"] == "max-age=31536000"
                # A client-supplied X-Forwarded-For does not win over what nginx appends.
                spoofed = https.get(
                    f"https://127.0.0.1:{https_port}/whoami", headers={"X-Forwarded-For": "203.0.113.9"}
                )
                assert spoofed.json() == {"client": CLIENT, "scheme": "https"}
                # Sequential requests share one kept-alive connection to the app instead of one each.
                before = peer_ports(app_port)
                for _ in range(5):
                    assert https.get(f"https://127.0.0.1:{https_port}/").status_code == 200
                idle = peer_ports(app_port, established=True)
                assert idle and len(peer_ports(app_port) - before) <= 1, (before, peer_ports(app_port), idle)
                # nginx refuses a body one byte over the site's limit; a small one reaches the app (405: GET-only).
                limit = nginx_bytes(https_server(parse_nginx(site.read_text())).one("client_max_body_size").args[0])
                assert https.post(f"https://127.0.0.1:{https_port}/", content=b"x" * (limit + 1)).status_code == 413
                assert https.post(f"https://127.0.0.1:{https_port}/", content=b"x" * 1024).status_code == 405
            with client() as plain:
                redirect = plain.get(f"http://127.0.0.1:{http_port}/whoami?x=1")
                assert redirect.status_code == 301
                assert redirect.headers["location"] == f"https://127.0.0.1:{https_port}/whoami?x=1"
                # Straight to the app from an untrusted peer: its forwarded headers are ignored.
                direct = plain.get(
                    f"http://127.0.0.1:{app_port}/whoami",
                    headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"},
                )
                assert direct.json() == {"client": CLIENT, "scheme": "http"}


def test_supervisord_restarts_a_killed_fastlaunch_master(tmp_path: Path) -> None:
    supervisord, supervisorctl = VENV / "bin/supervisord", VENV / "bin/supervisorctl"
    if not supervisord.exists():
        pytest.fail("supervisor is missing from the dev extra (pip install -e '.[dev]')")
    project = copy_project("single", tmp_path)
    port = free_port()
    options = ServerOptions(install_dir=str(project), venv=str(VENV), user=None, port=port, log_dir=str(tmp_path))
    program = tmp_path / "program.conf"
    program.write_text(server_files(project, options)["single-supervisor.conf"])
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[unix_http_server]\nfile={tmp_path}/supervisor.sock\n"
        f"[supervisord]\nnodaemon=true\nlogfile={tmp_path}/supervisord.log\npidfile={tmp_path}/supervisord.pid\n"
        f"childlogdir={tmp_path}\n"
        "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl=unix://{tmp_path}/supervisor.sock\n"
        f"[include]\nfiles = {program}\n"
    )

    def master_pid() -> int:
        out = subprocess.run([str(supervisorctl), "-c", str(conf), "pid", "single"], capture_output=True, text=True)
        return int(out.stdout.strip()) if out.stdout.strip().isdigit() else 0

    url = f"http://127.0.0.1:{port}/healthz"
    with running([str(supervisord), "-c", str(conf)], cwd=tmp_path, log=tmp_path / "sd.log", ready_url=url, timeout=60):
        first = master_pid()
        assert first > 0
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        second = 0
        while time.monotonic() < deadline and second in (0, first):
            time.sleep(0.5)
            second = master_pid()
        assert second not in (0, first), (tmp_path / "supervisord.log").read_text()
        # The orphaned workers notice their master is gone and exit; then the new master can bind.
        assert wait_for_http(url, timeout=60).status_code == 200
        assert master_pid() == second


def with_timeouts(project: Path) -> Path:
    """Non-default TIMEOUT and GRACEFUL_TIMEOUT in [tool.fastlaunch], which the files must follow."""
    with (project / "pyproject.toml").open("a") as pyproject:  # [tool.fastlaunch] is its last table
        pyproject.write("timeout = 75\ngraceful_timeout = 45\n")
    return project


def test_nginx_site_reuses_upstream_connections_and_bounds_bodies_and_waits(tmp_path: Path) -> None:
    project = with_timeouts(copy_project("sqlite", tmp_path))
    settings = project_settings(project)
    options = ServerOptions(install_dir="/srv/notes", venv="/srv/notes/.venv", user="notes", port=8123)
    site = parse_nginx(server_files(project, options)["notes-service-nginx.conf"])
    upstream = site.one("upstream")
    assert [s.args for s in upstream.all("server")] == [["127.0.0.1:8123"]]
    assert int(upstream.one("keepalive").args[0]) > 0  # idle connections kept per worker
    # nginx drops an idle connection before fastlaunch would close it under a request nginx is sending.
    assert nginx_seconds(upstream.one("keepalive_timeout").args[0]) < settings.keep_alive
    server = https_server(site)
    location = server.one("location")
    assert location.args == ["/"] and location.one("proxy_pass").args == [f"http://{upstream.args[0]}"]
    # Upstream keep-alive needs HTTP/1.1 and no "Connection: close" passed on.
    assert location.one("proxy_http_version").args == ["1.1"]
    headers = {d.args[0].lower(): d.args[1:] for d in location.all("proxy_set_header")}
    assert headers["connection"] == [""]
    assert nginx_bytes(server.one("client_max_body_size").args[0]) > 0  # 0 would lift the limit
    # nginx waits for a response at least as long as fastlaunch lets a worker take (TIMEOUT).
    assert nginx_seconds(location.one("proxy_read_timeout").args[0]) >= settings.timeout == 75


def test_nginx_site_defaults_to_the_certificate_certbot_writes(tmp_path: Path) -> None:
    project = copy_project("sqlite", tmp_path)
    files = server_files(project, None, domain="notes.example.org")
    server = https_server(parse_nginx(files["notes-service-nginx.conf"]))
    live = "/etc/letsencrypt/live/notes.example.org"
    assert server.one("ssl_certificate").args == [f"{live}/fullchain.pem"]
    assert server.one("ssl_certificate_key").args == [f"{live}/privkey.pem"]
    assert "`certbot certonly --nginx -d notes.example.org`" in files["README.md"]


class UnitFile(configparser.ConfigParser):
    """The INI files of systemd and supervisord: case-sensitive keys, no interpolation ($MAINPID stays)."""

    def __init__(self, text: str) -> None:
        super().__init__(strict=False, interpolation=None)
        self.read_string(text)

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def fake_venv(directory: Path) -> Path:
    venv = directory / "venv"
    (venv / "bin").mkdir(parents=True)
    script = venv / "bin/fastlaunch"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    return venv


def test_systemd_unit_runs_fastlaunch_and_outwaits_its_graceful_stop(tmp_path: Path) -> None:
    project = with_timeouts(copy_project("sqlite", tmp_path))
    options = ServerOptions(install_dir=str(project), venv="/srv/notes/.venv", user="notes", port=8123)
    files = server_files(project, options)
    service = UnitFile(files["notes-service.service"])["Service"]
    assert shlex.split(service["ExecStart"]) == ["/srv/notes/.venv/bin/fastlaunch", "run"]  # with prestart
    assert service["User"] == "notes" and service["WorkingDirectory"] == str(project)
    assert service["EnvironmentFile"] == f"-{project}/.env"  # optional ("-"), read at each start
    env = dict(word.partition("=")[::2] for word in shlex.split(service["Environment"]))
    assert env["HOST"] == "127.0.0.1" and env["PORT"] == "8123"  # only nginx, on this host, reaches it
    assert env["FORWARDED_ALLOW_IPS"].split(",") == ["127.0.0.1", "::1"]
    assert service["Restart"] in ("on-failure", "always")
    # SIGTERM (systemd's default KillSignal) is Gunicorn's graceful stop; SIGKILL comes after TimeoutStopSec.
    assert service.get("KillSignal", "SIGTERM") in ("SIGTERM", "TERM", "15")
    assert service.get("KillMode", "control-group") in ("mixed", "control-group")  # workers die with it
    assert int(service["TimeoutStopSec"]) > 45
    program = UnitFile(files["notes-service-supervisor.conf"])["program:notes-service"]
    assert program["stopsignal"] == "TERM" and int(program["stopwaitsecs"]) > 45


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "verifies the generated unit (Debian's systemd package)")
    project = copy_project("sqlite", tmp_path)
    # verify checks that ExecStart's program exists and is executable: point it at a stand-in.
    options = ServerOptions(install_dir=str(project), venv=str(fake_venv(tmp_path)), user="notes")
    unit = tmp_path / "notes-service.service"
    unit.write_text(server_files(project, options)["notes-service.service"])
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False)
    # Unknown or malformed settings are only warnings ("..., ignoring") with exit status 0.
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "notes-service" in line]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


@pytest.mark.parametrize(
    ("name", "install"),
    [
        ("single", "{venv}/bin/pip install -r requirements.txt"),
        ("sqlite", "{venv}/bin/pip install ."),
        ("poetry", "poetry export --only main -o requirements.txt && {venv}/bin/pip install -r requirements.txt"),
        ("uv", "uv export --frozen --no-dev --no-emit-project -o requirements.txt && "),
    ],
)
def test_server_readme_gives_a_command_for_each_step(name: str, install: str, tmp_path: Path) -> None:
    project = copy_project(name, tmp_path)
    settings = project_settings(project)
    detected = detect(settings)
    files = server_files(project, None, domain="notes.example.org")
    service = UnitFile(files[f"{detected.name}.service"])["Service"]
    site_file = f"{detected.name}-nginx.conf"
    assert site_file in files and f"{detected.name}-supervisor.conf" in files
    home, venv, python = f"/srv/{detected.name}", f"/srv/{detected.name}/.venv", detected.python
    commands = re.findall(r"`([^`\n]+)`", files["README.md"])
    assert f"pyenv install {python}" in commands and f"python{python} -m venv {venv}" in commands
    assert f"git clone <repo> {home}" in commands and service["WorkingDirectory"] == home
    # One command installs the dependencies and fastlaunch (the project does not list it) where the unit runs it.
    (installs,) = [c for c in commands if c.startswith(f"cd {home} && ") and "install" in c]
    assert install.format(venv=venv) in installs and installs.endswith(f" fastlaunch=={__version__}")
    assert shlex.split(service["ExecStart"])[0] == f"{venv}/bin/fastlaunch"
    assert f"systemctl enable --now {detected.name}" in commands and "supervisorctl update" in commands
    assert "certbot certonly --nginx -d notes.example.org" in commands
    assert f"/etc/nginx/sites-available/{detected.name}.conf" in commands  # where the table puts the site
    assert (
        f"ln -s ../sites-available/{detected.name}.conf /etc/nginx/sites-enabled/ && nginx -t && systemctl reload nginx"
        in commands
    )
