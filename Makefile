# One task runner. `make run` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5000
STORE ?= ./.cairn

.PHONY: run test test-stress lint format bench clean install-server install-dev

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.server-installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[server,demo]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.server-installed

install-server: $(VENV)/.server-installed
install-dev: $(VENV)/.dev-installed

## run: install and start Cairn on the embedded default store (SQLite + local artifacts);
##      the demo's libraries come too, so `cairn demo` works right after
run: install-server
	@echo "Cairn: http://$(HOST):$(PORT)  (store: $(STORE))"
	$(VENV)/bin/cairn server --host $(HOST) --port $(PORT) --store $(STORE)

## test: install and run the whole suite (PostgreSQL too when CAIRN_TEST_DATABASE_URL is set)
test: install-dev
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest

## test-stress: only the many-process concurrency tests (also part of `make test`)
test-stress: install-dev
	$(PY) -m pytest -m stress -s

lint: install-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: install-dev
	$(VENV)/bin/ruff format src tests bench
	$(VENV)/bin/ruff check --fix src tests bench

## bench: Cairn against MLflow (installed from PyPI into its own virtualenv), printed as JSON
bench: install-dev
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
