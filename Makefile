# `make run` serves the example; `make test` installs the tools the tests drive, then runs ruff, mypy and pytest;
# `make test-compat` runs the server-facing tests at both ends of the supported Gunicorn/Uvicorn range; `make bench`
# compares servers; `make lock` refreshes the lock files. All set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp
PORT ?= 8000

.PHONY: run test test-quick test-compat lock lint system-deps docs image bench bench-smoke bench-memory clean

# The virtualenv holds exactly locks/dev.txt (and the example's lock, a subset of it).
$(STAMP): pyproject.toml scripts/bootstrap locks/dev.txt $(wildcard example/pyproject.toml example/requirements.txt)
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/bootstrap
	touch $@

run: $(STAMP)
	cd example && HOST=127.0.0.1 PORT=$(PORT) ../$(BIN)/fastlaunch run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The real tools the tests drive (PostgreSQL, nginx, podman, Chromium, ...), from Debian's packages.
system-deps:
	scripts/install-system-deps

# It reports the coverage of fastlaunch by the tests' own process, and fails below its floor (pyproject.toml's
# tool.coverage).
test: system-deps lint $(BENCH_STAMP)
	$(BIN)/pytest --cov --cov-report=term

# The side-by-side benchmark (bench/): `make bench` is the full, manual run (about 45 minutes; results in
# bench/results/), `make bench-smoke` a few seconds of it for CI. BENCH_ARGS passes options (python -m bench -h).
# bench's tools are in locks/dev.txt: the bootstrap installed them.
$(BENCH_STAMP): $(STAMP)
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-smoke: $(BENCH_STAMP)
	$(BIN)/python -m bench --smoke $(BENCH_ARGS)

# The documentation site (docs/, mkdocs.yml) on http://127.0.0.1:8001, rebuilt on every change. The tests build
# it strictly (a broken link fails) and render it in Chromium.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

# Memory per worker (USS, PSS) idle and after 10k requests, and the time to replace a SIGKILLed worker:
# PRELOAD on/off beside gunicorn --preload, uvicorn --workers and granian (bench/memory.py; a few minutes).
bench-memory: $(BENCH_STAMP)
	$(BIN)/python -m bench.memory $(BENCH_ARGS)

# Every lock file, resolved again from pyproject.toml and example/pyproject.toml on PyPI (scripts/lock): run it after
# changing a dependency, and commit the result. Pins stay where the inputs allow; `make lock UPGRADE=1` takes the
# newest releases.
lock: $(STAMP)
	UV=$(BIN)/uv scripts/lock

# The tests that lean on Gunicorn's, Uvicorn's and uvicorn-worker's internals, in a virtualenv at the lowest versions
# pyproject.toml declares and in one at the newest the index serves (build/compat/; scripts/test-compat).
test-compat: system-deps
	PYTHON=$(PYTHON) scripts/test-compat

# Everything but the container builds (podman): for a quick local loop.
test-quick: system-deps lint $(BENCH_STAMP)
	FASTLAUNCH_SKIP_CONTAINERS=1 $(BIN)/pytest

# The drop-in image family (images/): fastlaunch/uvicorn-gunicorn(-fastapi):python3.X[-slim], built from this
# checkout with podman. IMAGE_ARGS picks tags and engine (python images/imagebuild.py --help), e.g.
# IMAGE_ARGS="--engine docker --python 3.13 --variant full".
image: $(STAMP)
	$(BIN)/python images/imagebuild.py $(IMAGE_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage build/site
