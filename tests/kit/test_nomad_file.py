"""`fastlaunch init nomad`: the job file parses as HCL2 (python-hcl2) and every block, attribute and type in it is one
the Nomad job specification defines, with its required fields present. No Nomad agent runs here (none can be
installed), so `nomad job validate` is not part of the suite: SPEC below is the part of the job specification
the generated file uses, written from Nomad's documentation."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions
from projects import copy_project
from support import run_cli

from fastlaunch.kit.cluster import DEFAULT_REPLICAS

DURATION = re.compile(r"\d+(ns|us|ms|s|m|h)")
REFERENCE = re.compile(r"\$\{var\.[a-z_]+\}")  # an HCL2 expression referring to a variable


def duration(value: object) -> bool:
    return isinstance(value, str) and bool(DURATION.fullmatch(value))


def string(value: object) -> bool:
    return isinstance(value, str)


def integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def boolean(value: object) -> bool:
    return isinstance(value, bool)


def strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def one_of(*choices: str) -> Any:
    return lambda value: value in choices


@dataclass(frozen=True)
class Block:
    attributes: dict[str, Any]  # name -> type check
    required: tuple[str, ...] = ()
    blocks: dict[str, Block] = field(default_factory=dict)
    required_blocks: tuple[str, ...] = ()
    labelled: bool = False  # `task "web" { ... }`
    any_attributes: Any = None  # env: every attribute is a string


CHECK = Block(
    {
        "type": one_of("http", "tcp", "grpc", "script"),
        "path": string,
        "interval": duration,
        "timeout": duration,
        "port": string,
    },
    required=("type", "interval", "timeout"),
)
SPEC = Block(
    {},
    blocks={
        "variable": Block({"type": string, "description": string, "default": lambda v: True}, labelled=True),
        "job": Block(
            {
                "type": one_of("service", "batch", "system", "sysbatch"),
                "datacenters": lambda v: strings(v) or bool(REFERENCE.fullmatch(str(v))),
                "region": string,
                "namespace": string,
                "priority": integer,
            },
            labelled=True,
            required_blocks=("group",),
            blocks={
                "update": Block(
                    {
                        "max_parallel": integer,
                        "canary": integer,
                        "auto_promote": boolean,
                        "auto_revert": boolean,
                        "health_check": one_of("checks", "task_states", "manual"),
                        "min_healthy_time": duration,
                        "healthy_deadline": duration,
                        "progress_deadline": duration,
                        "stagger": duration,
                    }
                ),
                "group": Block(
                    {"count": integer},
                    labelled=True,
                    required_blocks=("task",),
                    blocks={
                        "network": Block(
                            {"mode": string},
                            blocks={
                                "port": Block({"to": integer, "static": integer, "host_network": string}, labelled=True)
                            },
                        ),
                        "service": Block(
                            {"name": string, "port": string, "provider": one_of("consul", "nomad"), "tags": strings},
                            blocks={"check": CHECK},
                        ),
                        "restart": Block(
                            {
                                "attempts": integer,
                                "interval": duration,
                                "delay": duration,
                                "mode": one_of("delay", "fail"),
                            }
                        ),
                        "task": Block(
                            {
                                "driver": string,
                                "kill_timeout": duration,
                                "kill_signal": string,
                                "shutdown_delay": duration,
                                "user": string,
                            },
                            required=("driver",),
                            labelled=True,
                            blocks={
                                "lifecycle": Block(
                                    {"hook": one_of("prestart", "poststart", "poststop"), "sidecar": boolean},
                                    required=("hook",),
                                ),
                                # The Docker driver's config block.
                                "config": Block(
                                    {
                                        "image": string,
                                        "command": string,
                                        "args": strings,
                                        "ports": strings,
                                        "readonly_rootfs": boolean,
                                    },
                                    required=("image",),
                                    blocks={
                                        "mount": Block(
                                            {"type": one_of("bind", "volume", "tmpfs"), "target": string},
                                            required=("type", "target"),
                                            blocks={"tmpfs_options": Block({"size": integer, "mode": integer})},
                                        )
                                    },
                                ),
                                "env": Block({}, any_attributes=string),
                                "template": Block(
                                    {
                                        "data": string,
                                        "destination": string,
                                        "uid": integer,
                                        "gid": integer,
                                        "perms": lambda v: isinstance(v, str) and bool(re.fullmatch(r"0[0-7]{3}", v)),
                                        "change_mode": one_of("noop", "restart", "signal", "script"),
                                    },
                                    required=("destination",),
                                ),
                                "resources": Block(
                                    {"cpu": integer, "memory": integer, "memory_max": integer, "cores": integer}
                                ),
                            },
                        ),
                    },
                ),
            },
        ),
    },
)


def problems(spec: Block, body: dict[str, Any], where: str) -> list[str]:
    found: list[str] = []
    for key, value in body.items():
        if key in spec.blocks:
            child = spec.blocks[key]
            if not (isinstance(value, list) and all(isinstance(b, dict) for b in value)):
                found.append(f"{where}.{key}: a block expected, found {value!r}")
                continue
            for block in value:
                if child.labelled:
                    if len(block) != 1:
                        found.append(f"{where}.{key}: one label expected, found {list(block)}")
                        continue
                    ((label, inner),) = block.items()
                    found += problems(child, inner, f"{where}.{key}[{label}]")
                else:
                    found += problems(child, block, f"{where}.{key}")
        elif key in spec.attributes or spec.any_attributes:
            check = spec.attributes.get(key, spec.any_attributes)
            if not check(value) and not (isinstance(value, str) and REFERENCE.fullmatch(value)):
                found.append(f"{where}.{key} = {value!r}: wrong type or value")
        else:
            found.append(f"{where}.{key}: not in the job specification")
    found += [f"{where}: {name} is required" for name in spec.required if name not in body]
    found += [f"{where}: a {name} block is required" for name in spec.required_blocks if not body.get(name)]
    return found


def parse(text: str) -> dict[str, Any]:
    options = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    parsed: dict[str, Any] = hcl2.loads(text, serialization_options=options)
    return parsed


def job_file(project: Path, **env: str) -> tuple[str, dict[str, Any]]:
    result = run_cli(["init", "nomad"], cwd=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    (path,) = (project / "deploy/nomad").glob("*.nomad.hcl")
    text = path.read_text()
    return text, parse(text)


def unlabel(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {label: body for block in blocks for label, body in block.items()}


@pytest.mark.parametrize("name", ["example", "single"])
def test_the_job_file_follows_the_job_specification(tmp_path: Path, name: str) -> None:
    project = copy_project(name, tmp_path)
    _, parsed = job_file(project)
    assert problems(SPEC, parsed, "file") == []


def test_the_validator_catches_unknown_fields_wrong_types_and_missing_requirements() -> None:
    broken = parse(
        'job "x" {\n  type = "service"\n  group "g" {\n    count = "two"\n    task "t" {\n      drivr = "docker"\n'
        "    }\n  }\n}\n"
    )
    assert problems(SPEC, broken, "file") == [
        "file.job[x].group[g].count = 'two': wrong type or value",
        "file.job[x].group[g].task[t].drivr: not in the job specification",
        "file.job[x].group[g].task[t]: driver is required",
    ]


def test_canary_rollout_prestart_migration_and_file_secret(tmp_path: Path) -> None:
    project = copy_project("example", tmp_path)
    text, parsed = job_file(project, GRACEFUL_TIMEOUT="40", SHUTDOWN_DELAY="6")
    job = unlabel(parsed["job"])["posts-service"]
    (update,) = job["update"]
    assert update["canary"] >= 1 and update["auto_revert"] is True and update["health_check"] == "checks"
    group = unlabel(job["group"])["web"]
    assert group["count"] == DEFAULT_REPLICAS
    (check,) = group["service"][0]["check"]
    assert (check["type"], check["path"]) == ("http", "/readyz")
    tasks = unlabel(group["task"])
    migrate, web = tasks["migrate"], tasks["web"]
    assert migrate["lifecycle"] == [{"hook": "prestart", "sidecar": False}]
    assert migrate["config"][0]["args"] == ["prestart"] and web["config"][0]["args"] == ["run", "--no-prestart"]
    assert int(web["kill_timeout"].removesuffix("s")) > 40 and web["shutdown_delay"] == "6s"
    env = web["env"][0]
    assert env["WEB_CONCURRENCY"] == "1" and env["SHUTDOWN_DELAY"] == "0" and env["GRACEFUL_TIMEOUT"] == "40"
    for task in (migrate, web):
        (template,) = task["template"]
        assert task["env"][0]["DATABASE_URL_FILE"] == template["destination"]
        assert template["destination"].startswith("${NOMAD_SECRETS_DIR}/") and template["perms"] == "0400"
        assert 'nomadVar "nomad/jobs/posts-service"' in template["data"]
        assert task["resources"][0]["memory"] >= 128
    assert "never-in-the-image" not in text and "PASSWORD@" in text  # a placeholder in a comment only


def test_a_project_without_a_database_gets_no_migration_task_and_no_secret(tmp_path: Path) -> None:
    project = copy_project("single", tmp_path)
    _, parsed = job_file(project)
    group = unlabel(unlabel(parsed["job"])[project.name]["group"])["web"]
    tasks = unlabel(group["task"])
    assert set(tasks) == {"web"} and "template" not in tasks["web"]
    assert tasks["web"]["config"][0]["args"] == ["run"]  # the prestart steps (prestart.sh) run in the task
    assert "DATABASE_URL_FILE" not in tasks["web"]["env"][0]
