"""The drop-in image family (images/), built with podman and run as users of the deprecated
tiangolo/uvicorn-gunicorn(-fastapi) images run theirs: their Dockerfile with only the FROM line changed.

The scenarios are the original images' own test suites', rebuilt with our fixtures (tests/assets/image/):
the image alone, a single-file and a package app, custom module and variable, a custom prestart path, a
Gunicorn config file at each place the original looked, its environment-variable matrices, /start.sh and
/start-reload.sh, and a stop and start of the same container. Then apps that write next to their code (SQLite
files in /app, uploads, a log file), as they run by default and under WORKER_USER=app. The python:3.11-slim
base is a stand-in built from Debian (tests/podmanctl.py): nothing can be pulled here.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from podmanctl import CA, Podman, cleanup_netfilter, prepared
from support import ASSETS, free_port, require_tool

from fastlaunch.core.exceptions import ExitCode

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "images"))
import imagebuild  # noqa: E402 - images/ is not a package

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]
FASTAPI = imagebuild.tag("uvicorn-gunicorn-fastapi", "3.11", "slim")
PLAIN = imagebuild.tag("uvicorn-gunicorn", "3.11", "slim")
# tiangolo/uvicorn-gunicorn-fastapi:python3.11-slim as published (the figure), for the size claim.
ORIGINAL_SLIM_BYTES = 376e6
APP_UID = 10001
UNPRIVILEGED = {"WORKER_USER": "app"}  # the image's default is root, as the original's workers were
SIZES = REPO / "build" / "image-sizes.json"


@pytest.fixture(scope="module")
def podman() -> Iterator[Podman]:
    for tool in ("podman", "runc", "debootstrap"):
        require_tool(tool, "builds and runs the drop-in images")
    podman = prepared()
    imagebuild.build_all(imagebuild.IMAGES, ["3.11"], ["slim"], engine="harness")
    for name in (FASTAPI, PLAIN):
        record_size(podman, name)
    yield podman
    cleanup_netfilter()


def record_size(podman: Podman, name: str) -> None:
    sizes = json.loads(SIZES.read_text()) if SIZES.is_file() else {}
    sizes[name] = {"MB": round(podman.image_size(name) / 1e6, 1)}
    SIZES.parent.mkdir(exist_ok=True)
    SIZES.write_text(json.dumps(sizes, indent=2) + "\n")


def build_user_image(podman: Podman, scenario: str, tmp: Path, base: str = FASTAPI) -> str:
    """A user's project: the fixture, with the original tests' Dockerfile (FROM, COPY ./app /app) unless the
    fixture brings its own. The build sees the host CA the way pip in a RUN step reads it here."""
    context = tmp / scenario
    shutil.copytree(ASSETS / "image" / scenario, context, dirs_exist_ok=True)
    if not (context / "Dockerfile").exists():
        (context / "Dockerfile").write_text(f"FROM {base}\nCOPY ./app /app\n")
    tag = f"localhost/image-{scenario}:{base.rsplit(':', 1)[1]}"
    podman.build(context, tag, "-v", f"{CA}:{CA}:ro")
    return tag


@dataclass
class Running:
    podman: Podman
    cid: str
    port: int  # the host port mapped to the container port under test

    def get(self, path: str = "/", timeout: float = 60) -> httpx.Response:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=3)
            except httpx.HTTPError as exc:
                last = exc
                if self.podman("inspect", "--format", "{{.State.Running}}", self.cid).stdout.strip() != "true":
                    break
                time.sleep(0.25)
        raise AssertionError(f"no answer on {path}: {last}\n{self.logs()[-3000:]}")

    def logs(self) -> str:
        out = self.podman("logs", self.cid)
        return out.stdout + out.stderr

    def processes(self) -> dict[int, tuple[int, str]]:
        """pid -> (real uid, command line) of every process in the container."""
        script = (
            "import json, os\n"
            "for p in filter(str.isdigit, os.listdir('/proc')):\n"
            "    try:\n"
            "        uid = [l.split()[1] for l in open(f'/proc/{p}/status') if l.startswith('Uid:')][0]\n"
            "        cmd = open(f'/proc/{p}/cmdline', 'rb').read().replace(b'\\0', b' ').decode()\n"
            "    except OSError:\n"
            "        continue\n"
            "    print(json.dumps([int(p), int(uid), cmd]))\n"
        )
        out = self.podman("exec", self.cid, "python", "-c", script).stdout
        return {pid: (uid, cmd) for pid, uid, cmd in map(json.loads, out.splitlines())}

    def workers(self, expected: int | None = None) -> list[int]:
        """PIDs of the Gunicorn master's children; waits (bounded) until there are `expected` of them."""
        deadline = time.monotonic() + 60
        children: list[int] = []
        while time.monotonic() < deadline:
            children = [int(p) for p in self.podman("exec", self.cid, "cat", "/proc/1/task/1/children").stdout.split()]
            if expected is None or len(children) == expected:
                break
            time.sleep(0.25)
        return children

    def restart(self) -> None:
        """Stop (SIGTERM, as `docker stop`) and start the same container again."""
        self.podman("stop", "-t", "20", self.cid)
        self.podman("start", self.cid)


class Containers:
    """Containers started by one test; each removed by its id afterwards."""

    def __init__(self, podman: Podman) -> None:
        self.podman = podman
        self.started: list[str] = []

    def start(
        self, image: str, *command: str, port: int = 80, env: dict[str, str] | None = None, user: str = ""
    ) -> Running:
        host_port = free_port()
        args = ["-p", f"127.0.0.1:{host_port}:{port}", *(["--user", user] if user else [])]
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        cid = self.podman("run", "-d", "--pull=never", *args, image, *command).stdout.strip()
        self.started.append(cid)
        return Running(self.podman, cid, host_port)


@pytest.fixture
def containers(podman: Podman) -> Iterator[Containers]:
    running = Containers(podman)
    yield running
    for cid in running.started:
        podman("rm", "-f", "-t", "2", cid, check=False)


def assert_root_master_unprivileged_workers(app: Running, workers: int | None = None) -> None:
    children = app.workers(workers)
    processes = app.processes()
    assert processes[1][0] == 0 and "fastlaunch" in processes[1][1], processes[1]
    assert children and all(processes[pid][0] == APP_UID for pid in children), (children, processes)


def test_the_image_alone_serves_on_port_80_with_unprivileged_workers(containers: Containers) -> None:
    app = containers.start(FASTAPI, env=UNPRIVILEGED)
    assert app.get().json() == {
        "message": "Hello world! From FastAPI served by fastlaunch (Gunicorn + Uvicorn). Using Python 3.11"
    }
    assert_root_master_unprivileged_workers(app)
    assert app.podman("healthcheck", "run", app.cid, check=False).returncode == 0
    app.restart()
    assert app.podman("inspect", "--format", "{{.State.ExitCode}}", app.cid).stdout.strip() == "0"
    assert app.get().status_code == 200
    assert_root_master_unprivileged_workers(app)


def test_the_image_without_fastapi_serves_its_plain_asgi_app(containers: Containers) -> None:
    app = containers.start(PLAIN)
    assert app.get().text == "Hello world! From fastlaunch (Gunicorn + Uvicorn). Using Python 3.11"
    assert app.podman("exec", app.cid, "python", "-c", "import fastapi", check=False).returncode == 1


def test_simple_app_gets_what_a_shebang_less_prestart_sh_exports(
    podman: Podman, containers: Containers, tmp_path: Path
) -> None:
    app = containers.start(build_user_image(podman, "simple", tmp_path), env=UNPRIVILEGED)
    for _ in range(2):  # and again after a stop and start of the same container
        body = app.get().json()
        # No root group left over, and a HOME of its own.
        ids = {"uid": APP_UID, "gid": APP_UID, "groups": [APP_UID], "home": "/home/app"}
        assert body == {"app": "simple", "greeting": "exported by prestart.sh", **ids}
        assert "prestart.sh of the simple app: preparing" in app.logs()
        app.restart()


def test_package_app_and_a_prestart_sh_with_a_shebang(podman: Podman, containers: Containers, tmp_path: Path) -> None:
    app = containers.start(build_user_image(podman, "package", tmp_path))
    assert app.get().json() == {"app": "package", "version": "1.2.3"}
    # The prestart steps run in the master, as root, as they did in the original image.
    assert "prestart.sh of the package app ran with sh as 0" in app.logs()


CUSTOM = {"MODULE_NAME": "custom_app.custom_main", "VARIABLE_NAME": "custom_var"}
CUSTOM_PRESTART = {"PRE_START_PATH": "/app/custom_app/custom-prestart.sh"}
DEFAULT_RAN, CUSTOM_RAN = "the default /app/prestart.sh ran", "custom-prestart.sh under /app/custom_app ran"


@pytest.mark.parametrize(
    ("env", "ran", "not_ran"),
    [
        (CUSTOM, DEFAULT_RAN, CUSTOM_RAN),
        ({"APP_MODULE": "custom_app.custom_main:custom_var"}, DEFAULT_RAN, CUSTOM_RAN),
        ({**CUSTOM, **CUSTOM_PRESTART}, CUSTOM_RAN, DEFAULT_RAN),
        ({"APP_MODULE": "custom_app.custom_main:custom_var", **CUSTOM_PRESTART}, CUSTOM_RAN, DEFAULT_RAN),
    ],
    ids=["module-variable", "app-module", "module-variable-prestart-path", "app-module-prestart-path"],
)
def test_custom_module_variable_and_prestart_path(
    env: dict[str, str], ran: str, not_ran: str, podman: Podman, containers: Containers, tmp_path: Path
) -> None:
    app = containers.start(build_user_image(podman, "custom", tmp_path), env=env)
    assert app.get().json() == {"app": "custom"}
    logs = app.logs()
    assert ran in logs and not_ran not in logs, logs


@pytest.mark.parametrize(
    ("scenario", "env", "port"),
    [
        ("conf_root", {}, 8001),  # /app/gunicorn_conf.py
        ("conf_sub", {}, 8002),  # /app/app/gunicorn_conf.py
        ("conf_custom", {"GUNICORN_CONF": "/app/custom_gunicorn_conf.py"}, 8003),
    ],
)
def test_gunicorn_conf_at_each_place_the_original_looked(
    scenario: str, env: dict[str, str], port: int, podman: Podman, containers: Containers, tmp_path: Path
) -> None:
    app = containers.start(build_user_image(podman, scenario, tmp_path), port=port, env=env)
    assert app.get().json() == {"app": scenario}
    assert len(app.workers(3)) == 3
    # The HEALTHCHECK finds the port the config file chose (not PORT=80).
    assert app.podman("healthcheck", "run", app.cid, check=False).returncode == 0


def test_env_port_log_level_timeouts_and_no_logs(containers: Containers) -> None:
    env = {"PORT": "8000", "LOG_LEVEL": "warning", "GRACEFUL_TIMEOUT": "20", "TIMEOUT": "20", "KEEP_ALIVE": "20"}
    app = containers.start(FASTAPI, port=8000, env={**env, "ACCESS_LOG": "", "ERROR_LOG": ""})
    for _ in range(2):
        assert app.get().status_code == 200
        logs = app.logs()
        assert '"GET / HTTP/1.1" 200' not in logs and "Application startup complete" not in logs, logs
        app.restart()


def test_env_web_concurrency_host_cmd_args_and_the_old_h11_worker(containers: Containers) -> None:
    env = {
        "WEB_CONCURRENCY": "1",
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
        "GUNICORN_CMD_ARGS": "--log-level debug",
        "WORKER_CLASS": "uvicorn.workers.UvicornH11Worker",
    }
    app = containers.start(FASTAPI, env=env)
    probe = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:80/', timeout=3).status)"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if app.podman("exec", app.cid, "python", "-c", probe, check=False).stdout.strip() == "200":
            break
        time.sleep(0.25)
    else:
        raise AssertionError(app.logs()[-3000:])
    assert len(app.workers(1)) == 1
    logs = app.logs()
    assert "Using worker: uvicorn_worker.UvicornH11Worker" in logs, logs
    assert "[DEBUG]" in logs  # GUNICORN_CMD_ARGS wins over LOG_LEVEL
    with pytest.raises(httpx.HTTPError):  # HOST=127.0.0.1: not reachable through the published port
        httpx.get(f"http://127.0.0.1:{app.port}/", timeout=3)


def test_env_bind_wins_over_host_and_port_and_max_workers(containers: Containers) -> None:
    env = {"BIND": "0.0.0.0:8080", "HOST": "127.0.0.1", "PORT": "9000", "MAX_WORKERS": "1"}
    app = containers.start(FASTAPI, port=8080, env=env)
    assert app.get().status_code == 200
    assert len(app.workers(1)) == 1


def test_the_old_worker_class_path_gets_fastlaunchs_worker(containers: Containers) -> None:
    app = containers.start(FASTAPI, env={"WORKER_CLASS": "uvicorn.workers.UvicornWorker"})
    assert app.get().status_code == 200
    assert "Using worker: fastlaunch.worker.UvicornWorker" in app.logs()


def test_start_sh_execs_fastlaunch_as_pid_1(containers: Containers) -> None:
    app = containers.start(FASTAPI, "/start.sh", env=UNPRIVILEGED)
    assert app.get().status_code == 200
    assert_root_master_unprivileged_workers(app)
    app.restart()
    assert app.podman("inspect", "--format", "{{.State.ExitCode}}", app.cid).stdout.strip() == "0"


def test_start_reload_sh_reloads_on_a_code_change(containers: Containers) -> None:
    app = containers.start(FASTAPI, "/start-reload.sh", port=8000, env={"PORT": "8000"})
    assert "served by fastlaunch" in app.get().json()["message"]
    app.podman("exec", app.cid, "sed", "-i", "s/served by fastlaunch/reloaded/", "/app/app/main.py")
    deadline = time.monotonic() + 60
    message = ""
    while time.monotonic() < deadline and "reloaded" not in message:
        time.sleep(0.5)
        try:
            message = httpx.get(f"http://127.0.0.1:{app.port}/", timeout=3).json()["message"]
        except httpx.HTTPError:
            continue
    assert "reloaded" in message, app.logs()[-3000:]


def test_a_non_root_container_user_serves_without_switching(containers: Containers) -> None:
    """`docker run --user` (or a USER line): nothing to drop, WORKER_USER is left alone."""
    app = containers.start(FASTAPI, port=8000, env={"PORT": "8000"}, user=f"{APP_UID}:{APP_UID}")
    assert app.get().status_code == 200
    assert {uid for uid, _ in app.processes().values()} == {APP_UID}


def test_fastapi_docs_dockerfile_with_only_from_changed(podman: Podman, containers: Containers, tmp_path: Path) -> None:
    """FastAPI's docs' Dockerfile for the deprecated image (requirements installed by the user's own RUN pip
    line), with its FROM line changed, and the docs' main.py."""
    assert (ASSETS / "image/docs/Dockerfile").read_text().startswith(f"FROM {FASTAPI}\n")
    (tmp_path / "docs/app").mkdir(parents=True)
    shutil.copy(ASSETS / "docsapp/main.py", tmp_path / "docs/app/main.py")
    app = containers.start(build_user_image(podman, "docs", tmp_path))
    assert app.get("/items/5?q=somequery").json() == {"item_id": 5, "q": "somequery"}
    # The user's `RUN pip install -r requirements.txt` went into the environment the app runs in.
    assert app.podman("exec", "-u", "app", app.cid, "python", "-c", "import python_multipart").returncode == 0


def test_the_same_recipe_on_python_3_13(podman: Podman, containers: Containers, tmp_path: Path) -> None:
    """Another Python is a build argument: here on the stand-in for python:3.13-slim (Debian trixie)."""
    imagebuild.build_all(["uvicorn-gunicorn-fastapi"], ["3.13"], ["slim"], engine="harness")
    image = imagebuild.tag("uvicorn-gunicorn-fastapi", "3.13", "slim")
    record_size(podman, image)
    assert containers.start(image).get().json()["message"].endswith("Using Python 3.13")
    app = containers.start(build_user_image(podman, "simple", tmp_path, base=image), env=UNPRIVILEGED)
    assert app.get().json()["greeting"] == "exported by prestart.sh"
    assert_root_master_unprivileged_workers(app)


def test_images_are_smaller_than_the_original(podman: Podman) -> None:
    sizes = {name: podman.image_size(name) for name in (FASTAPI, PLAIN)}
    print("\n" + "\n".join(f"{name}: {size / 1e6:.1f} MB" for name, size in sizes.items()))
    assert sizes[FASTAPI] < ORIGINAL_SLIM_BYTES
    assert sizes[PLAIN] < sizes[FASTAPI]


# Apps that write next to their code, each with the tiangolo image's Dockerfile and only FROM changed
# (tests/assets/image/writes_*): what the request writes, the file it lands in, where it is read back, and
# the path a worker running as `app` is denied.
@dataclass(frozen=True)
class Writer:
    write: tuple[str, str]  # method, path
    file: str  # under /app
    read: str
    shows: str
    denied: str


WRITERS = {
    "writes_sqlite3": Writer(("POST", "/heroes/?name=Deadpond"), "database.db", "/heroes/", "Deadpond", "/app"),
    "writes_sqlalchemy": Writer(("POST", "/users/?email=a@example.com"), "sql_app.db", "/users/", "a@example", "/app"),
    "writes_sqlmodel": Writer(("POST", "/heroes/?name=Rusty-Man"), "database.db", "/heroes/", "Rusty-Man", "/app"),
    "writes_uploads": Writer(
        ("PUT", "/upload/note.txt"),
        "static/uploads/note.txt",
        "/static/uploads/note.txt",
        "uploaded",
        "/app/static/uploads",
    ),
    "writes_logfile": Writer(("GET", "/"), "logs/app.log", "/", "logs/app.log", "/app/logs"),
}


@pytest.fixture(scope="module")
def writers(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each writing app's image, built once for the tests below (the SQL ones share their pip layer)."""
    contexts = tmp_path_factory.mktemp("writers")
    images = {}
    for scenario in WRITERS:
        dockerfile = (ASSETS / "image" / scenario / "Dockerfile").read_text().splitlines()
        assert dockerfile[0] == f"FROM {FASTAPI}" and not any("chown" in line or "USER" in line for line in dockerfile)
        images[scenario] = build_user_image(podman, scenario, contexts)
    return images


@pytest.mark.parametrize("scenario", sorted(WRITERS))
def test_an_app_writing_in_app_serves_with_only_from_changed(
    scenario: str, writers: dict[str, str], containers: Containers
) -> None:
    writer = WRITERS[scenario]
    app = containers.start(writers[scenario])
    assert app.get("/docs").status_code == 200
    method, path = writer.write
    written = httpx.request(method, f"http://127.0.0.1:{app.port}{path}", content=b"uploaded bytes", timeout=10)
    assert written.status_code == 200, (written.text, app.logs()[-3000:])
    assert writer.shows in app.get(writer.read).text
    assert app.podman("exec", app.cid, "test", "-s", f"/app/{writer.file}", check=False).returncode == 0
    # Workers as root, as in the original image, and one line at start saying how to change that.
    assert {uid for uid, _ in app.processes().values()} == {0}
    assert "Workers run as root (WORKER_USER=root), as in the tiangolo images: set WORKER_USER=app" in app.logs()


@pytest.mark.parametrize("scenario", sorted(WRITERS))
def test_the_same_app_under_worker_user_app_says_what_was_denied_and_the_fixes(
    scenario: str, writers: dict[str, str], containers: Containers
) -> None:
    app = containers.start(writers[scenario], env=UNPRIVILEGED)
    status = app.podman("wait", app.cid, timeout=120).stdout.strip()
    logs = app.logs()
    assert status == str(int(ExitCode.WORKER_ACCESS)), logs[-3000:]
    denied = WRITERS[scenario].denied
    assert f"WORKER_USER=app (uid {APP_UID}), which was denied '{denied}'" in logs, logs[-3000:]
    assert "chown app:app /app/data" in logs and "WORKER_USER=root" in logs, logs[-3000:]
    assert "Traceback" in logs  # the app's own traceback stays, above the message


def test_an_app_the_worker_user_cannot_read_is_refused_naming_it(
    writers: dict[str, str], containers: Containers
) -> None:
    """Files copied without read permission for others (a umask 077 checkout): the master can read them, the
    workers as `app` cannot. Said before anything listens, instead of "Could not import module 'main'"."""
    command = ("sh", "-c", "chmod 700 /app && exec fastlaunch run")
    app = containers.start(writers["writes_sqlite3"], *command, env=UNPRIVILEGED)
    status = app.podman("wait", app.cid, timeout=120).stdout.strip()
    logs = app.logs()
    assert status == str(int(ExitCode.WORKER_ACCESS)), logs[-3000:]
    assert f"WORKER_USER=app (uid {APP_UID}), which was denied '/app' reading the app's module main" in logs, logs
    assert "chmod -R a+rX /app" in logs and "Could not import module" not in logs and "Booting worker" not in logs
