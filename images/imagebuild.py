"""Builds the image family from this checkout (`make image`; `python images/imagebuild.py --help`).

Each tag is images/Dockerfile with its build arguments; fastlaunch comes from a wheel of this checkout.
The default engine, `harness`, is podman with the tests' private configuration and storage
(tests/podmanctl.py): it works offline, on stand-in bases built from Debian releases (python:3.11-slim from
bookworm, python:3.13-slim from trixie). `--engine podman` or `--engine docker` use the machine's own engine
and the real python:* bases.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CA = Path("/etc/ssl/certs/ca-certificates.crt")
# The tags README names; any 3.X with a python:3.X image builds.
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
VARIANTS = ("slim", "full")
IMAGES = ("uvicorn-gunicorn-fastapi", "uvicorn-gunicorn")


def tag(image: str, python: str, variant: str) -> str:
    """fastlaunch/uvicorn-gunicorn-fastapi:python3.11-slim, as the original names its tags."""
    return f"fastlaunch/{image}:python{python}{'-slim' if variant == 'slim' else ''}"


def build_args(image: str, python: str, variant: str, wheel: str) -> list[str]:
    return [
        *("--build-arg", f"PYTHON_VERSION={python}"),
        *("--build-arg", f"VARIANT={'-slim' if variant == 'slim' else ''}"),
        *("--build-arg", f"IMAGE={image}"),
        *("--build-arg", f"FASTLAUNCH=/wheels/{wheel}"),
    ]


def build_context(into: Path) -> str:
    """images/ with a wheel of this checkout in wheels/ (where the Dockerfile's builder stage looks)."""
    shutil.copytree(HERE, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "imagebuild.py"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(into / "wheels")],
        check=True,
        capture_output=True,
        # Fixed zip timestamps: the same checkout gives the same wheel, so the install layer stays cached.
        env={**os.environ, "SOURCE_DATE_EPOCH": "315532800"},
    )
    return next((into / "wheels").glob("fastlaunch-*.whl")).name


class BuildFailed(Exception):
    """A tag could not be built; the message says why and what to do."""


def engine_runner(engine: str, pythons: Sequence[str]) -> Callable[[str, str, Sequence[str]], None]:
    """A function running one `build` with the chosen engine: (tag, its base image, the arguments)."""
    if engine == "harness":
        sys.path.insert(0, str(REPO / "tests"))
        from podmanctl import STANDIN_SUITES, prepared

        podman = prepared(pythons=sorted({"3.11", *(p for p in pythons if p in STANDIN_SUITES)}))
        standins = ", ".join(f"python:{p}-slim" for p in STANDIN_SUITES)

        def harness(name: str, base: str, args: Sequence[str]) -> None:
            if podman("image", "exists", base, check=False).returncode != 0:
                raise BuildFailed(
                    f"{name}: there is no {base} here. Nothing can be pulled on this machine, and tests/podmanctl.py "
                    f"builds stand-ins for {standins} only (from Debian's releases); build this tag with --engine "
                    "docker (or podman) where python images can be pulled."
                )
            result = podman(*args, check=False)
            if result.returncode != 0:
                raise BuildFailed(f"{name}: podman build failed:\n{result.stderr[-3000:]}")

        return harness

    def run(name: str, base: str, args: Sequence[str]) -> None:
        result = subprocess.run([engine, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BuildFailed(f"{name}: {engine} build failed:\n{result.stderr[-3000:]}")

    return run


def build_all(
    images: Sequence[str], pythons: Sequence[str], variants: Sequence[str], engine: str = "harness"
) -> list[str]:
    run = engine_runner(engine, pythons)
    built = []
    with tempfile.TemporaryDirectory(prefix="fastlaunch-image-") as tmp:
        context = Path(tmp)
        wheel = build_context(context)
        for python in pythons:
            for variant in variants:
                for image in images:
                    name = tag(image, python, variant)
                    args = ["build", "--format", "docker"] if engine != "docker" else ["build"]
                    if engine == "harness":
                        args += ["--pull=never", "--secret", f"id=ca,src={CA}"]
                    args += [*build_args(image, python, variant, wheel), "-t", name, str(context)]
                    print(f"building {name}", flush=True)
                    run(name, f"python:{python}{'-slim' if variant == 'slim' else ''}", args)
                    built.append(name)
    return built


def python_version(text: str) -> str:
    if not re.fullmatch(r"3\.\d+", text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected 3.X, e.g. {', '.join(PYTHONS)}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", choices=IMAGES, action="append", help="default: both")
    parser.add_argument("--python", type=python_version, action="append", help="3.X; default: 3.11")
    parser.add_argument("--variant", choices=VARIANTS, action="append", help="default: slim")
    parser.add_argument("--engine", choices=("harness", "podman", "docker"), default="harness")
    args = parser.parse_args(argv)
    try:
        built = build_all(args.image or IMAGES, args.python or ["3.11"], args.variant or ["slim"], args.engine)
    except BuildFailed as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    print("built: " + ", ".join(built))
    return 0


if __name__ == "__main__":
    sys.exit(main())
