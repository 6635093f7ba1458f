from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
from support import FASTLAUNCH, free_port, running, wait_for_http

APP = 'from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get("/")\ndef root():\n    return {{"version": {n}}}\n'


def test_dev_serves_reloads_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(APP.format(n=1))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with running(
        [FASTLAUNCH, "dev", "--port", str(port)], cwd=tmp_path, log=tmp_path / "dev.log", ready_url=url
    ) as proc:
        assert httpx.get(url).json() == {"version": 1}
        (tmp_path / "main.py").write_text(APP.format(n=2))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).json() == {"version": 2}:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert httpx.get(url).json() == {"version": 2}
        # A browser-style idle keep-alive connection must not hold Ctrl-C up.
        client = httpx.Client()
        client.get(url)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("fastlaunch dev did not exit after Ctrl-C") from None
        took = time.monotonic() - started
        client.close()
    assert code == 0
    (tmp_path / "ctrl-c-seconds.txt").write_text(f"{took:.2f}\n")  # reported in the README, not asserted
    log = (tmp_path / "dev.log").read_text()
    assert "detected changes in 'main.py'. Reloading..." in log


def test_dev_listens_on_loopback_by_default(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(APP.format(n=1))
    port = free_port()
    with running(
        [FASTLAUNCH, "dev", "--port", str(port), "--no-reload"],
        cwd=tmp_path,
        log=tmp_path / "dev.log",
        ready_url=f"http://127.0.0.1:{port}/",
    ):
        wait_for_http(f"http://127.0.0.1:{port}/")
        listening = Path("/proc/net/tcp").read_text()
    # 0100007F is 127.0.0.1 in /proc/net/tcp's little-endian hex; the port follows the colon.
    assert f"0100007F:{port:04X}" in listening
    assert f"00000000:{port:04X}" not in listening
