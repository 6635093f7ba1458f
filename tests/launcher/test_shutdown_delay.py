"""SHUTDOWN_DELAY in a rolling update, reproduced on 127.0.0.1.

What removes a pod from service in Kubernetes is not the proxy's own health checking: the kubelet probes
``/readyz``, a failed probe takes the pod out of the Service's endpoints, and every proxy (kube-proxy, an
ingress controller) is reconfigured to stop sending to it. Open-source nginx only has passive checks, so
this test plays the control plane: a thread probes each backend's ``/readyz`` and, when one fails,
rewrites nginx's upstream without it and reloads nginx (SIGHUP), as ingress-nginx does on an endpoint
change. nginx is told neither to retry another backend (``proxy_next_upstream off``) nor to mark a backend
down after a failure (``max_fails=0``): a Service's kube-proxy does neither, so every request routed to a pod
that has stopped listening fails until the endpoint is removed, as it does in a cluster.

Two `fastlaunch run` processes are the two pods; a client sends requests through nginx without pause while
one pod gets SIGTERM.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from hung import hung_app, serve
from support import free_port, require_tool, stop, wait_for_http

PROBE_PERIOD = 0.3  # the kubelet's periodSeconds, shortened


@dataclass
class Endpoints:
    """The control plane: probes /readyz, keeps nginx's upstream to the ready backends."""

    nginx_pid: int
    upstream_file: Path
    ports: list[int]
    ready: set[int] = field(default_factory=set)
    reloads: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def write(self) -> None:
        # max_fails=0: no passive marking, as kube-proxy. With no pod ready, a placeholder marked down.
        servers = "".join(f"    server 127.0.0.1:{p} max_fails=0;\n" for p in sorted(self.ready))
        servers = servers or "    server 127.0.0.1:9 down;\n"
        self.upstream_file.write_text(f"upstream pods {{\n{servers}}}\n")

    def probe_once(self) -> None:
        ready = set()
        for port in self.ports:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    ready.add(port)
            except httpx.HTTPError:
                pass
        if ready != self.ready:
            self.ready = ready
            self.write()
            os.kill(self.nginx_pid, signal.SIGHUP)  # nginx re-reads its configuration; old workers finish
            self.reloads += 1

    def run(self) -> None:
        for _ in range(1000):
            if self._stop.wait(PROBE_PERIOD):
                return
            self.probe_once()


@dataclass
class Load:
    port: int
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        # A fresh connection per request: nginx's reload closes idle client keep-alive connections, and a
        # request racing that close would fail because of the test's reload, not because of the pod.
        for _ in range(100_000):
            if self._stop.is_set():
                break
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
                if response.status == 200:
                    self.ok += 1
                else:
                    self.failed.append(f"{response.status} {body[:60]!r}")
            except (OSError, http.client.HTTPException) as exc:
                self.failed.append(repr(exc))
            finally:
                conn.close()


def wait_for_status(url: str, status: int) -> httpx.Response:
    for _ in range(100):
        response = httpx.get(url, timeout=5)
        if response.status_code == status:
            return response
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered {status}")


@contextmanager
def nginx_in_front(tmp_path: Path, ports: list[int]) -> Iterator[tuple[int, Endpoints]]:
    nginx = require_tool("nginx", "the proxy in front of the rolling pods")
    front = free_port()
    upstream = tmp_path / "upstream.conf"
    (tmp_path / "nginx-temp").mkdir()
    conf = tmp_path / "nginx.conf"
    temp = tmp_path / "nginx-temp"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"  access_log off;\n  client_body_temp_path {temp};\n  proxy_temp_path {temp};\n"
        f"  fastcgi_temp_path {temp};\n  uwsgi_temp_path {temp};\n  scgi_temp_path {temp};\n"
        f"  include {upstream};\n"
        f"  server {{\n    listen 127.0.0.1:{front};\n"
        "    location / {\n      proxy_pass http://pods;\n      proxy_next_upstream off;\n    }\n  }\n}\n"
    )
    endpoints = Endpoints(0, upstream, ports, ready=set(ports))
    endpoints.write()
    proc = subprocess.Popen(
        [nginx, "-e", str(tmp_path / "error.log"), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{front}/", proc=proc)
        endpoints.nginx_pid = proc.pid
        thread = threading.Thread(target=endpoints.run, daemon=True)
        thread.start()
        try:
            yield front, endpoints
        finally:
            endpoints._stop.set()
            thread.join(10)
    finally:
        stop(proc, signal.SIGQUIT)


def roll_one_pod(tmp_path: Path, shutdown_delay: str) -> tuple[Load, int]:
    """SIGTERM one of two pods under load through nginx; the load's result and the pod's exit status."""
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        pods = [
            stack.enter_context(
                serve(
                    hung_app(tmp_path, f"pod{n}"),
                    port,
                    WEB_CONCURRENCY="1",
                    SHUTDOWN_DELAY=shutdown_delay,
                    GRACEFUL_TIMEOUT="10",
                )
            )
            for n, port in enumerate(ports)
        ]
        front, endpoints = stack.enter_context(nginx_in_front(tmp_path, ports))
        load = Load(front)
        client = threading.Thread(target=load.run, daemon=True)
        client.start()
        try:
            for _ in range(300):  # traffic reaches both pods first
                if load.ok >= 200:
                    break
                time.sleep(0.05)
            pods[0].send_signal(signal.SIGTERM)
            if shutdown_delay != "0":  # during the delay the pod is unready yet serves
                assert wait_for_status(f"http://127.0.0.1:{ports[0]}/readyz", 503).json() == {"status": "shutting down"}
                assert httpx.get(f"http://127.0.0.1:{ports[0]}/", timeout=5).text == "ok"
            status = pods[0].wait(60)
            before = load.ok
            for _ in range(300):  # and keeps flowing to the other one afterwards
                if load.ok >= before + 200:
                    break
                time.sleep(0.05)
        finally:
            load._stop.set()
            client.join(30)
        assert endpoints.ready == {ports[1]}, "the stopped pod was never taken out of the upstream"
        return load, status


def test_shutdown_delay_rolls_a_pod_without_a_failed_request(tmp_path: Path) -> None:
    load, status = roll_one_pod(tmp_path, shutdown_delay="3")
    assert status == 0
    assert load.failed == [], f"{len(load.failed)} of {load.ok + len(load.failed)} failed: {load.failed[:5]}"
    assert load.ok >= 400
    log = (tmp_path / "pod0/server.log").read_text()
    assert "SHUTDOWN_DELAY=3s" in log


def test_without_shutdown_delay_requests_fail_while_endpoints_catch_up(tmp_path: Path) -> None:
    load, status = roll_one_pod(tmp_path, shutdown_delay="0")
    assert status == 0
    # nginx still routes to the pod between its SIGTERM and the next probe: those requests get 502.
    assert load.failed, f"no request failed in {load.ok}"
    assert all(f.startswith("502") for f in load.failed), load.failed[:5]
    print(f"without SHUTDOWN_DELAY: {len(load.failed)} of {load.ok + len(load.failed)} requests failed")
