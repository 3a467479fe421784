# Lead CRM backend. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# Scanners (checkov, pip-audit, pip-tools) in a virtualenv of their own: their dependencies
# would conflict with the project's. Pinned in requirements-tools.txt.
TOOLS_VENV := .venv-tools
TOOLS_BIN := $(TOOLS_VENV)/bin
TOOLS_STAMP := $(TOOLS_VENV)/.installed-$(shell cat requirements-tools.txt | sha1sum | cut -c1-12)
export SAM_CLI_TELEMETRY := 0

.DEFAULT_GOAL := help

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP) ## create .venv and install the project with its dev tools

$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS_BIN)/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(TOOLS_BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@rm -f $(TOOLS_VENV)/.installed-* && touch $@

tools: $(TOOLS_STAMP) ## create .venv-tools with the scanners the tests run (checkov, pip-audit)

lock: $(TOOLS_STAMP) ## pin the Lambda layer's dependencies (pyproject) in requirements.lock
	CUSTOM_COMPILE_COMMAND="make lock" $(TOOLS_BIN)/pip-compile --quiet --upgrade --strip-extras \
	  --no-emit-index-url --no-emit-trusted-host --no-emit-find-links \
	  --output-file requirements.lock pyproject.toml

.PHONY: tools lock

run: $(STAMP) local-deps ## run the whole API on http://127.0.0.1:3000 with demo data (no Docker, no AWS)
	$(BIN)/crm serve

local-deps: ## the Debian package `make run` uses: redis-server (the query cache crm serve starts)
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian package: redis-server"; \
	  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }

test: $(STAMP) tools system-deps lint typecheck ## lint, type-check and run every test (unit, integration, e2e, browser, SAM)
	$(BIN)/python -m pytest --cov --cov-report=term --cov-report=html --cov-report=xml

system-deps: ## the Debian packages the tests use: chromium (browser tests), redis-server (Redis outages)
	@command -v chromium >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian packages: chromium redis-server"; \
	  apt-get update -qq && apt-get install -y -qq chromium redis-server >/dev/null; }

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: $(STAMP) ## format and auto-fix with ruff
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

typecheck: $(STAMP) ## mypy over src
	$(BIN)/mypy

build: $(STAMP) ## sam validate --lint and sam build (no container needed)
	$(BIN)/sam validate --lint
	$(BIN)/sam build

# Load test: locust in a virtualenv of its own (.venv-load), pinned in loadtest/requirements.txt.
LOAD_VENV := .venv-load
LOAD_STAMP := $(LOAD_VENV)/.installed-$(shell cat loadtest/requirements.txt | sha1sum | cut -c1-12)
LOADTEST_USERS ?= 20
LOADTEST_SPAWN_RATE ?= 2
LOADTEST_TIME ?= 3m
LOADTEST_SEED_LEADS ?= 300

$(LOAD_STAMP): loadtest/requirements.txt
	@test -x $(LOAD_VENV)/bin/python || $(PYTHON) -m venv $(LOAD_VENV)
	$(LOAD_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(LOAD_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r loadtest/requirements.txt
	@rm -f $(LOAD_VENV)/.installed-* && touch $@

loadtest: $(STAMP) $(LOAD_STAMP) ## locust against a crm serve it starts and stops (LOADTEST_USERS=20 LOADTEST_TIME=3m)
	$(BIN)/python loadtest/run.py --users $(LOADTEST_USERS) --spawn-rate $(LOADTEST_SPAWN_RATE) \
	  --time $(LOADTEST_TIME) --seed-leads $(LOADTEST_SEED_LEADS)

.PHONY: loadtest

clean: ## remove build output and caches (keeps .venv)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache test-artifacts

.PHONY: help venv run test local-deps system-deps lint format typecheck build clean
