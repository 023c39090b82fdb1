# gowa-py: every install step lives here, so `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT ?= 3000
SIM_PORT ?= 3100
PYTEST_ARGS ?=
# pytest-xdist workers for `make test`: most tests wait on the processes they start, so
# more workers than cores pay (docs/benchmarks.md, "Test suite wall time"). Each test
# file runs whole on one worker (its module-scoped sandbox and gateway are started once).
# PYTEST_ARGS comes last: PYTEST_ARGS="-n 0" runs the suite in this process.
PYTEST_WORKERS ?= 3

.PHONY: run test lint format sandbox install install-test system-deps test-db dashboard-deps baileys-deps wheel clean help

help:
	@echo "make run      install what is missing and start the gateway on :$(PORT)"
	@echo "make test     install what is missing (venv, deps, Chromium) and run every test"
	@echo "make lint     ruff, mypy and the dashboard's type check (tsc over its JSDoc)"
	@echo "make sandbox  start the sandbox network on :$(SIM_PORT) and a gateway using it"
	@echo "make wheel    build dist/gowa_py-*.whl with the dashboard and its npm assets inside"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed dashboard-deps

install-test: $(VENV)/.installed-test dashboard-deps baileys-deps system-deps test-db

# Front-end libraries come from npm (no CDN): the dashboard must work offline. The dev
# dependency (typescript) type-checks the dashboard in `make test`; it is never served.
dashboard-deps:
	@if [ -f dashboard/package.json ]; then \
	  if [ ! -d dashboard/node_modules ] || [ dashboard/package.json -nt dashboard/node_modules ]; then \
	    command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm; }; \
	    (cd dashboard && npm ci --no-audit --no-fund --loglevel=error) && touch dashboard/node_modules; \
	  fi; \
	fi

# Baileys (npm, pinned with its lockfile; its GitHub-URL dependencies are overridden with
# the registry's releases) for the sandbox's any-client test; never installed globally.
BAILEYS_DIR := tests/sim/baileys
baileys-deps:
	@if [ ! -d $(BAILEYS_DIR)/node_modules ] || [ $(BAILEYS_DIR)/package.json -nt $(BAILEYS_DIR)/node_modules ]; then \
	  command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm; }; \
	  (cd $(BAILEYS_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) && touch $(BAILEYS_DIR)/node_modules; \
	fi

# Debian's Chromium for the browser tests (never a downloaded browser), and Debian's ffmpeg
# (neonize needs it to send video, audio and animated stickers; the media tests use it).
system-deps:
	@command -v chromium >/dev/null && command -v ffmpeg >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    chromium fonts-dejavu-core ffmpeg; }

# PostgreSQL for the storage tests: the server at GOWA_TEST_DATABASE_URL, else the local
# one (Debian's postgresql; a stopped cluster is started). The tests connect as that URL
# says (default postgresql://postgres@127.0.0.1:5432/postgres, so the local server must
# trust it) and create and drop a database of their own per run. The GoWA import test
# builds GoWA's PostgreSQL store with pg_dump and psql (Debian's postgresql-client). The
# PgBouncer test and benchmark run Debian's pgbouncer binary with a config of their own on
# a free port (never its system service).
test-db:
	@command -v pg_dump >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql-client; }
	@[ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq pgbouncer; }
	@if [ -z "$${GOWA_TEST_DATABASE_URL:-}" ]; then \
	  command -v pg_lsclusters >/dev/null || { $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq postgresql; }; \
	  pg_lsclusters -h | while read -r version cluster port status rest; do \
	    [ "$$status" = online ] || $(SUDO) pg_ctlcluster "$$version" "$$cluster" start; \
	  done; \
	fi

# setup.py copies the dashboard and its npm assets into the wheel and stops if npm has not run.
wheel: $(VENV)/.installed-test dashboard-deps
	$(BIN)/pip wheel -q --no-deps --no-build-isolation -w dist .

run: install
	$(BIN)/gowa serve --port $(PORT)

test: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd dashboard && npx --no-install tsc -p .
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(VENV)/.installed-test dashboard-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd dashboard && npx --no-install tsc -p .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

sandbox: install
	@trap 'kill 0' EXIT INT TERM; \
	$(BIN)/gowa sim serve --port $(SIM_PORT) --data-dir ./data/sim & \
	for i in $$(seq 50); do curl -sf http://127.0.0.1:$(SIM_PORT)/sim/healthz >/dev/null && break; sleep 0.2; done; \
	$(BIN)/gowa serve --port $(PORT) --data-dir ./data/sandbox-gateway --sandbox http://127.0.0.1:$(SIM_PORT)

clean:
	rm -rf $(VENV) dashboard/node_modules .pytest_cache .ruff_cache build dist
