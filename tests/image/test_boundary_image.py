"""The drop-in image's privilege boundary: the hostile app of tests/abuse (tests/assets/hostile), running as
`app` under the root master, plants links to a root-only file, FIFOs and bad names everywhere it reaches and
scribbles over its reports, with MAX_WORKER_MEMORY=auto under a memory limit, METRICS=on and recycling. The
root-only file stays as it was, and the container stops cleanly on SIGTERM."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from image import test_dropin_image as dropin
from image.test_dropin_image import FASTAPI, Containers, Running
from podmanctl import CA, Podman
from support import ASSETS, free_port

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
podman, containers = dropin.podman, dropin.containers  # the drop-in suite's fixtures: its images, its clean-up
CANARY = "/secret/canary"
STAT = ["stat", "-c", "%u %a %s %Y %Z", CANARY]


def test_a_hostile_app_under_app_cannot_reach_the_root_master(
    podman: Podman, containers: Containers, tmp_path: Path
) -> None:
    context = tmp_path / "hostile"
    (context / "app").mkdir(parents=True)
    shutil.copy(ASSETS / "hostile" / "main.py", context / "app" / "main.py")
    (context / "Dockerfile").write_text(
        f"FROM {FASTAPI}\n"
        "RUN mkdir -m 700 /secret && echo root-only > /secret/canary && chmod 600 /secret/canary\n"
        "COPY ./app /app\n"
    )
    image = "localhost/image-hostile:latest"
    podman.build(context, image, "-v", f"{CA}:{CA}:ro")
    port = free_port()
    env = {
        "HOSTILE_CANARY": CANARY,
        "WEB_CONCURRENCY": "2",
        "MAX_WORKER_MEMORY": "auto",
        "MAX_REQUESTS": "4",
        "METRICS": "on",
        "GRACEFUL_TIMEOUT": "5",
    }
    args = [f"-e{key}={value}" for key, value in env.items()]
    cid = podman("run", "-d", "--pull=never", "--memory=512m", "-p", f"127.0.0.1:{port}:80", *args, image).stdout
    containers.started.append(cid.strip())
    app = Running(podman, cid.strip(), port)
    assert app.get().status_code == 200
    before = podman("exec", app.cid, *STAT).stdout
    for i in range(30):
        try:
            httpx.get(f"http://127.0.0.1:{port}/attack" if i % 3 else f"http://127.0.0.1:{port}/", timeout=10)
        except httpx.HTTPError:
            pass  # the app kills its own worker now and then
    assert app.get().status_code == 200
    assert podman("exec", app.cid, "cat", CANARY).stdout == "root-only\n"
    assert podman("exec", app.cid, *STAT).stdout == before
    logs = app.logs()
    podman("stop", "-t", "20", app.cid)
    assert podman("inspect", "--format", "{{.State.ExitCode}}", app.cid).stdout.strip() == "0", app.logs()[-3000:]
    assert "MAX_WORKER_MEMORY=auto:" in logs and "exited (reason:" in logs, logs[-3000:]
