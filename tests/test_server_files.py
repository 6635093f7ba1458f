"""The classic-server files (`fastlaunch init server`), run with the real programs: Debian's nginx with a
throwaway self-signed certificate in front of `fastlaunch run`, and supervisord from PyPI."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from projects import copy_project
from support import FASTLAUNCH, free_port, require_tool, running, wait_for_http

from fastlaunch.project import detect
from fastlaunch.pyproject import read_tool_table
from fastlaunch.render import Options, ServerOptions, render
from fastlaunch.settings import load_settings

VENV = Path(sys.executable).parent.parent
CLIENT = "127.0.0.2"  # the "real client": any 127/8 address is loopback; the proxy itself is 127.0.0.1


def server_files(project: Path, server: ServerOptions) -> dict[str, str]:
    table, path = read_tool_table(project)
    settings = load_settings(cli={}, environ={}, pyproject=table, pyproject_path=path, project_dir=project)
    files = render(detect(settings), settings, ["server"], Options(domain="localhost", server=server))
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
