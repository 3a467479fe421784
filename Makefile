# Lead CRM backend. `make` lists the targets.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
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

run: $(STAMP) ## run the whole API on http://127.0.0.1:3000 with demo data (no Docker, no AWS)
	$(BIN)/crm serve

test: $(STAMP) system-deps lint typecheck ## lint, type-check and run every test (unit, integration, e2e, browser, SAM)
	$(BIN)/python -m pytest

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

clean: ## remove build output and caches (keeps .venv)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache test-artifacts

.PHONY: help venv run test system-deps lint format typecheck build clean
