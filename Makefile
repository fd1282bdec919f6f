# `make run` and `make test` work from a fresh clone: each creates .venv and installs what
# it needs, skipping the install when pyproject.toml has not changed since the last one.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := run

VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
# Root on these machines; a developer's own machine needs sudo for apt and PostgreSQL.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -qq

.PHONY: run test lint clean chromium postgres

run: $(VENV)/.installed
	$(BIN)/securemail dev

test: $(VENV)/.installed-test tests/browser/node_modules/.installed chromium postgres lint
	$(BIN)/pytest

# Figures for docs/BENCHMARKS.md at small sizes (a few minutes); `python -m bench --help`
# for the full ones. Not a test: it prints figures and fails only if a run breaks.
.PHONY: bench
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

$(BIN)/python:
	python3 -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	touch $@

# The test extras include the project, so `make run` after `make test` installs nothing.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[test]'
	touch $@ $(VENV)/.installed

# axe-core, injected into pages by the accessibility checks.
tests/browser/node_modules/.installed: tests/browser/package.json tests/browser/package-lock.json
	npm ci --prefix tests/browser --no-audit --no-fund --silent
	touch $@

# The browser tests drive Debian's Chromium: Playwright cannot download its own here.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Debian chromium for the browser tests"; \
		$(APT_GET) install -y chromium >/dev/null 2>&1 \
			|| { $(APT_GET) update && $(APT_GET) install -y chromium >/dev/null; }; \
	fi

# The tests use the PostgreSQL on 127.0.0.1:5432 (trust auth) beside SQLite.
postgres:
	@if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then \
		echo "Starting PostgreSQL"; \
		$(SUDO) pg_ctlcluster --skip-systemctl-redirect "$$(ls /etc/postgresql)" main start; \
	fi

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache
	find . \( -path ./$(VENV) -o -path ./.data \) -prune -o -name __pycache__ -type d -print0 \
		| xargs -0 rm -rf
