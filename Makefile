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

# Ports of `make run`: the API, and the local AWS endpoint (DynamoDB, EventBridge, SQS).
PORT ?= 3000
AWS_PORT ?= 8000

run: $(STAMP) local-deps ## run the whole API on http://127.0.0.1:3000 with demo data, no Docker, no AWS (PORT=3000 AWS_PORT=8000)
	$(BIN)/crm serve --port $(PORT) --aws-port $(AWS_PORT)

local-deps: ## the Debian package `make run` uses: redis-server (the query cache crm serve starts)
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian package: redis-server"; \
	  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }

# pytest's worker processes (pytest-xdist): each takes whole test files, so a file's module
# fixtures (its servers, its seeded tables) are made once; TEST_WORKERS=0 runs in this process.
TEST_WORKERS ?= 2

test: $(STAMP) tools system-deps lint typecheck ## lint, type-check and run every test (unit, integration, e2e, browser, SAM) (TEST_WORKERS=2)
	$(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
	  --cov --cov-report=term --cov-report=html --cov-report=xml --durations=15

system-deps: ## the Debian packages the tests use: chromium (browser tests), redis-server (Redis outages)
	@command -v chromium >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing Debian packages: chromium redis-server"; \
	  apt-get update -qq && apt-get install -y -qq chromium redis-server >/dev/null; }

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests loadtest
	$(BIN)/ruff format --check src tests loadtest

format: $(STAMP) ## format and auto-fix with ruff
	$(BIN)/ruff format src tests loadtest
	$(BIN)/ruff check --fix src tests loadtest

typecheck: $(STAMP) ## mypy over src and loadtest
	$(BIN)/mypy
	$(BIN)/mypy loadtest

build: $(STAMP) ## sam validate --lint and sam build (no container needed)
	$(BIN)/sam validate --lint
	$(BIN)/sam build

# A deployed stack, with AWS credentials as the AWS CLI finds them (AWS_PROFILE, AWS_REGION, ...).
# samconfig.toml holds the stack name, its Stage and the answers of `sam deploy --guided`, per
# environment: CONFIG_ENV picks one (default: [default.*], stack crm-dev, Stage dev).
CONFIG_ENV ?= default
GUIDED ?=
FUNCTION ?=

deploy: $(STAMP) ## sam validate --lint, sam build, sam deploy with samconfig.toml (GUIDED=1 the first time; CONFIG_ENV=default)
	$(BIN)/sam validate --lint
	$(BIN)/sam build
	$(BIN)/sam deploy --config-env $(CONFIG_ENV)$(if $(GUIDED), --guided)

delete: $(STAMP) ## sam delete the deployed stack (CONFIG_ENV=default); its tables are retained
	$(BIN)/sam delete --config-env $(CONFIG_ENV)

logs: $(STAMP) ## sam logs --tail of the deployed stack's functions (FUNCTION=LeadsFunction for one; CONFIG_ENV=default)
	$(BIN)/sam logs --config-env $(CONFIG_ENV) --tail$(if $(FUNCTION), --name $(FUNCTION))

.PHONY: deploy delete logs

# Load test: closed-loop clients (loadtest/run.py, standard library and the project only), each
# mix at each client count, one row after the other against one server. LOADTEST_HOST: use that
# running API instead of starting one; LOADTEST_SERVE_ARGS: more `crm serve` arguments.
LOADTEST_MIX ?= reads writes10
LOADTEST_CLIENTS ?= 1 16
LOADTEST_TIME ?= 40s
LOADTEST_WARMUP ?= 10s
LOADTEST_SEED_LEADS ?= 300
LOADTEST_HOST ?=
LOADTEST_SERVE_ARGS ?=

loadtest: $(STAMP) ## closed-loop clients, each mix at each client count: one table (LOADTEST_MIX="reads writes10" LOADTEST_CLIENTS="1 16" LOADTEST_TIME=40s)
	$(BIN)/python loadtest/run.py --mix $(LOADTEST_MIX) --clients $(LOADTEST_CLIENTS) \
	  --time $(LOADTEST_TIME) --warmup $(LOADTEST_WARMUP) --seed-leads $(LOADTEST_SEED_LEADS) \
	  $(if $(LOADTEST_HOST),--host $(LOADTEST_HOST)) --serve-args="$(LOADTEST_SERVE_ARGS)"

# A burst of new leads into a fresh `crm serve`: post throughput and what the stats path made of it.
BURST_LEADS ?= 1000
BURST_CLIENTS ?= 8

burst: $(STAMP) ## crm bench --burst: BURST_LEADS=1000 new leads from BURST_CLIENTS=8 vendors, and the stats path
	$(BIN)/crm bench --burst $(BURST_LEADS) --clients $(BURST_CLIENTS)

.PHONY: loadtest burst

clean: ## remove build output and caches (keeps .venv)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache test-artifacts

.PHONY: help venv run test local-deps system-deps lint format typecheck build clean
