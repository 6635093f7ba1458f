"""Images a build names: what lint knows of some bases (fastlaunch's drop-in, the tiangolo image it replaces,
images that run as a non-root user), and the rules on image references: unpinned (FL005, FL017) and
deprecated (FL010)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from fastlaunch.kit.lint.findings import Finding
from fastlaunch.kit.lint.grammar import Instruction

# tiangolo/uvicorn-gunicorn(-fastapi), deprecated by its author; fastlaunch publishes the drop-in.
TIANGOLO = re.compile(r"^tiangolo/uvicorn-gunicorn(?:-fastapi)?$")
TIANGOLO_TAG = re.compile(r"^python3\.(?P<minor>\d+)(?P<slim>-slim)?")
DROP_IN = "fastlaunch/uvicorn-gunicorn-fastapi"
# Under any registry or mirror prefix: the repository path is what the images are published as.
DROP_IN_PATH = re.compile(r"(^|/)fastlaunch/uvicorn-gunicorn(-fastapi)?$")
DROP_IN_MINORS = (11, 12, 13)  # the drop-in's tags: python3.X and python3.X-slim
Runs = Literal["root", "nonroot", "workers"]  # "workers": the master as root, the workers as another user


@dataclass(frozen=True)
class ImageRef:
    registry: str  # "" for Docker Hub
    path: str  # lower case, without docker.io/ or library/
    tag: str
    digest: str

    @property
    def pinned(self) -> bool:
        return bool(self.digest) or self.tag not in ("", "latest")


def image_ref(image: str) -> ImageRef:
    name, _, digest = image.lower().partition("@")
    first, slash, rest = name.partition("/")
    registry = first if slash and ("." in first or ":" in first or first == "localhost") else ""
    path = rest if registry else name
    if registry in ("docker.io", "index.docker.io"):
        registry = ""
    path = path.removeprefix("library/")
    path, _, tag = path.partition(":")
    return ImageRef(registry, path, tag, digest)


@dataclass(frozen=True)
class BaseImage:
    """What a known base sets that a Dockerfile built on it inherits without writing it."""

    description: str
    runs: Runs
    env: dict[str, str] = field(default_factory=dict)
    exposed: frozenset[int] = frozenset()
    command: tuple[str, ...] = ()


def known_base(image: str) -> BaseImage | None:
    if "$" in image:
        return None
    ref = image_ref(image)
    if DROP_IN_PATH.search(ref.path):
        return BaseImage(
            "fastlaunch's drop-in image",
            "workers",
            {"PORT": "80", "WORKER_USER": "app"},
            frozenset({80}),
            ("fastlaunch", "run"),
        )
    if not ref.registry and TIANGOLO.match(ref.path):
        # Everything ran as root; its own start script is not judged here (a CMD of the Dockerfile's own is).
        return BaseImage("the tiangolo image", "root", exposed=frozenset({80}))
    if ref.registry == "gcr.io" and ref.path.startswith("distroless/") and "nonroot" in ref.tag:
        return BaseImage("a distroless nonroot image", "nonroot")
    if ref.registry == "cgr.dev" and ref.path.startswith("chainguard/"):
        return BaseImage("a Chainguard image", "nonroot")  # they run as uid 65532 unless told otherwise
    return None


def check_base(ins: Instruction, image: str) -> list[Finding]:
    """FL010 for the deprecated tiangolo base, FL005 for an unpinned one."""
    if not image or image.lower() == "scratch" or "$" in image:
        return []
    ref = image_ref(image)
    if not ref.registry and TIANGOLO.match(ref.path):
        return [_tiangolo(ins, image, ref.tag)]
    if not ref.pinned:
        return [
            Finding(
                ins.line,
                "FL005",
                f"base image {image} is {'untagged' if not ref.tag else ':latest'}: builds change under you",
                "pin a version tag, e.g. FROM python:3.12-slim",
            )
        ]
    return []


def check_reference(ins: Instruction, how: str, image: str) -> list[Finding]:
    """FL017: an image used inside the build (COPY --from=, RUN --mount=from=) with no version."""
    ref = image_ref(image)
    if ref.pinned or "$" in image:
        return []
    return [
        Finding(
            ins.line,
            "FL017",
            f"{how}{image} is {'untagged' if not ref.tag else ':latest'}: the files copied from it change between "
            "builds, without a change in the Dockerfile",
            f"pin a version: {how}{image.partition('@')[0].rsplit(':', 1)[0] if ref.tag else image}:<version> "
            "(or @sha256:<digest>)",
        )
    ]


def _tiangolo(ins: Instruction, image: str, tag: str) -> Finding:
    parsed = TIANGOLO_TAG.match(tag)
    # latest (and an untagged name) was python3.11; dated tags (python3.11-2024-...) keep their Python.
    minor = int(parsed.group("minor")) if parsed else 11
    slim = "-slim" if parsed and parsed.group("slim") else ""
    chosen = min(max(minor, DROP_IN_MINORS[0]), DROP_IN_MINORS[-1])
    rest = " ".join(ins.value[1:])
    replacement = " ".join(filter(None, ["FROM", *ins.flags, f"{DROP_IN}:python3.{chosen}{slim}", rest]))
    why = "" if chosen == minor else f"; Python 3.{minor} -> 3.{chosen}, the oldest the drop-in ships"
    return Finding(
        ins.line,
        "FL010",
        f"base image {image} is deprecated by its author and no longer gets Python or security updates",
        f"{replacement}  (fastlaunch's drop-in replacement for it{why})",
        replacement,
    )
