# `make run` serves the example; `make test` runs ruff, mypy and pytest. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000

.PHONY: run test test-quick lint bench bench-smoke clean

$(STAMP): pyproject.toml scripts/bootstrap $(wildcard example/pyproject.toml)
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/bootstrap
	touch $@

run: $(STAMP)
	cd example && HOST=127.0.0.1 PORT=$(PORT) ../$(BIN)/fastlaunch run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Everything but the container builds (podman): for a quick local loop.
test-quick: lint
	FASTLAUNCH_SKIP_CONTAINERS=1 $(BIN)/pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
