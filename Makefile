# vsm: two commands do everything on a fresh machine.
#   make run   - install what is missing, find or start RabbitMQ, run the seven services
#   make test  - install what is missing, lint, type-check, run every test against real RabbitMQ
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: help setup rabbitmq-package prometheus-package shellcheck-package chromium-package run test lint typecheck bench docs screenshots release-check clean

help:
	@echo "make run    run the seven services locally (settings from .env; starts RabbitMQ if none answers)"
	@echo "make test   lint, type-check and run the whole test suite against a real RabbitMQ"
	@echo "make bench  benchmarks against raw aio-pika on the same broker (not part of make test)"
	@echo "make bench SOAK=30  instead: a 30-minute soak (default organisation + hostile mix), memory and queues watched"
	@echo "make docs   regenerate the AsyncAPI/OpenAPI documents, dashboards, organisation schema, .env.example, deploy/k8s"
	@echo "make release-check  build every wheel, sdist and the chart package into dist/ and validate them offline"

# uv (the workspace's package manager) from PyPI when absent; then the locked environment.
setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| { echo "installing uv from PyPI"; python3 -m pip install --quiet uv; }
	@$(UV) sync --frozen --quiet

# The test fixture starts private RabbitMQ nodes from the Debian package when AMQP_URL is unset.
rabbitmq-package:
	@command -v rabbitmq-server >/dev/null 2>&1 || { \
		echo "installing the Debian package rabbitmq-server (tests start private nodes from it)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null; }

# The observability tests start a private Prometheus from the Debian package (its binary only:
# no recommends such as the node exporter).
prometheus-package:
	@command -v prometheus >/dev/null 2>&1 || { \
		echo "installing the Debian package prometheus (tests start a private server from it)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# tests/deploy lints deploy/quickstart.sh with shellcheck (Debian package).
shellcheck-package:
	@command -v shellcheck >/dev/null 2>&1 || { \
		echo "installing the Debian package shellcheck (tests/deploy lints the quickstart script)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }

# The console's browser tests drive the system's Chromium through Playwright (never a browser
# downloaded at test time).
chromium-package:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing the Debian package chromium (the console's browser tests drive it)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# ORG: the organisation file `make run` applies once the services are ready (none: skip it).
# Settings come from the environment, then from .env (see .env.example); localrun.py finds or
# starts the broker with them (scripts/ensure-rabbitmq: a node, else a Docker container).
ORG ?= deploy/organisation/default.yaml
run: setup
	@$(UV) run --frozen python scripts/localrun.py --org "$(ORG)"

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: setup
	$(UV) run --frozen mypy

# ISOLATED: tests that pass in a pytest process of their own but have failed, on a shared
# two-core machine, when they ran after the rest of the suite in the same process (the
# cluster SIGKILL test: operations' publishes nacked or requests unroutable for minutes
# after the kill; `vsm watch`'s test). The cause is not found yet; until it is, they run
# all the same, second, in a process of their own, and `make test` fails if they fail.
ISOLATED := tests/faults/test_broker_cluster.py tests/cli/test_cli_watch.py
test: setup rabbitmq-package prometheus-package shellcheck-package chromium-package lint typecheck
	$(UV) run --frozen pytest $(addprefix --ignore=,$(ISOLATED))
	$(UV) run --frozen pytest $(ISOLATED)

# ARGS: passed to `python -m bench` (make bench ARGS="--quick"); SOAK=<minutes>: the soak
# instead of the cases (make bench SOAK=30: the default organisation plus a hostile mix).
bench: setup rabbitmq-package chromium-package
	$(UV) run --frozen python -m bench $(if $(SOAK),--soak --minutes $(SOAK)) $(ARGS)

docs: setup
	$(UV) run --frozen python scripts/gen_docs.py
	$(UV) run --frozen python scripts/gen_dashboards.py
	$(UV) run --frozen python scripts/gen_chart_readme.py
	$(UV) run --frozen python scripts/gen_env_example.py
	$(UV) run --frozen vsm schema -o docs/organisation.schema.json
	$(UV) run --frozen scripts/render-manifests

# Offline: wheels and sdists (uv build), the chart package (Helm's engine), the Dockerfile
# checked without Docker; the images themselves need a Docker engine (RELEASING.md).
release-check: setup
	$(UV) run --frozen python scripts/release.py check

# Screenshots of every console page (light and dark, desktop and phone) into docs/console/.
screenshots: setup chromium-package
	$(UV) run --frozen python scripts/screenshots.py

clean:
	rm -rf dist .run .pytest_cache .mypy_cache .ruff_cache bench/results
