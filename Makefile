# `make run` and `make test` work from a fresh clone: each creates .venv and installs what
# it needs from uv.lock (exact versions and hashes), skipping the install when neither
# uv.lock nor pyproject.toml has changed since the last one. After editing the
# dependencies in pyproject.toml: `make lock`, and commit uv.lock with it.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := run

VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
# uv installs from the lock; pinned, and kept in .venv beside what it installs.
UV_VERSION := 0.13.8
UV := $(BIN)/uv
# --locked: refuse a lock that no longer matches pyproject.toml (run `make lock`).
# --inexact: leave what the lock does not name (uv itself) in place.
# --compile-bytecode: these machines set PYTHONDONTWRITEBYTECODE=1, so without .pyc
# files every process (each test process, each subprocess a test starts) would compile
# all it imports from source again, ~7 s of CPU per process.
SYNC := UV_PYTHON_DOWNLOADS=never $(UV) sync --quiet --locked --inexact --compile-bytecode
# The project's own packages, compiled before the tests for the same reason (the
# project is installed editable, so uv's compiling does not reach them).
PACKAGES := domain infra activities workflows workers web
# Root on these machines; a developer's own machine needs sudo for apt and PostgreSQL.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -qq

.PHONY: run test lint lock compose-config clean chromium spamassassin postgres catalogs

run: $(VENV)/.installed catalogs
	$(BIN)/securemail dev

# The suite mostly waits (on Temporal, S3, SMTP, a browser), so three processes share
# the two cores well (pytest-xdist; worksteal evens out the minute-long fault tests).
# Each has its own servers, databases and ports (tests/fixtures/processes.py).
TEST_PROCESSES ?= 3
# pytest keeps the modules it rewrites for its assertion messages (every test module,
# and its plugins' packages) only where bytecode may be written; with
# PYTHONDONTWRITEBYTECODE set, every test process parsed and rewrote them all again
# (collecting: 19.9 s of CPU without the cache, 10.6 s with it).

test: $(VENV)/.installed-test catalogs tests/browser/node_modules/.installed chromium \
		spamassassin postgres lint compose-config
	$(BIN)/python -m compileall -q -j 0 -x node_modules $(PACKAGES) tests bench
	PYTHONDONTWRITEBYTECODE= $(BIN)/pytest -n $(TEST_PROCESSES) --dist worksteal --durations=40

# Figures for docs/BENCHMARKS.md at small sizes (a few minutes); `python -m bench --help`
# for the full ones. Not a test: it prints figures and fails only if a run breaks.
.PHONY: bench
bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m infra.i18n.check

$(BIN)/python:
	python3 -m venv $(VENV)

$(UV): | $(BIN)/python
	$(PIP) install uv==$(UV_VERSION)

# The project itself is installed editable; the Dockerfile installs the same lock
# without the extras. The Makefile is a prerequisite too, so a changed SYNC reaches a
# .venv installed before it (a sync with nothing to install takes a second or two).
$(VENV)/.installed: uv.lock pyproject.toml Makefile | $(UV)
	$(SYNC) --extra dev
	touch $@

# The test extras include the dev ones, so `make run` after `make test` installs nothing.
$(VENV)/.installed-test: uv.lock pyproject.toml Makefile | $(UV)
	$(SYNC) --extra test
	touch $@ $(VENV)/.installed

# The patient's languages: each .po compiled to the .mo the app reads (never committed).
# After changing a string a patient reads: `make messages`, then translate the new
# entries in each .po (`make lint` fails while one is missing, untranslated or fuzzy:
# `python -m infra.i18n.check`).
LOCALES := infra/i18n/locales
CATALOGS := $(patsubst %.po,%.mo,$(wildcard $(LOCALES)/*/LC_MESSAGES/messages.po))
catalogs: $(CATALOGS)
$(LOCALES)/%/LC_MESSAGES/messages.mo: $(LOCALES)/%/LC_MESSAGES/messages.po | $(VENV)/.installed
	$(BIN)/pybabel compile -d $(LOCALES) -l $* >/dev/null 2>&1

.PHONY: messages
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output -o infra/i18n/messages.pot . >/dev/null
	$(BIN)/pybabel update -i infra/i18n/messages.pot -d $(LOCALES) --no-fuzzy-matching >/dev/null

# Resolves pyproject.toml's dependencies again into uv.lock (newest versions allowed).
lock: | $(UV)
	UV_PYTHON_DOWNLOADS=never $(UV) lock

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

# The patient mails are scored by Debian's SpamAssassin, local rules only
# (tests/infra/test_patient_mails_spam.py).
spamassassin:
	@if ! command -v spamassassin >/dev/null; then \
		echo "Installing Debian spamassassin for the patient mail tests"; \
		$(APT_GET) install -y spamassassin >/dev/null 2>&1 \
			|| { $(APT_GET) update && $(APT_GET) install -y spamassassin >/dev/null; }; \
	fi

# docker-compose.yml with .env.example's values is a valid Compose file. Debian's
# docker-compose (v1) validates without a Docker engine.
compose-config:
	@if ! command -v docker-compose >/dev/null; then \
		echo "Installing Debian docker-compose to check docker-compose.yml"; \
		$(APT_GET) install -y docker-compose >/dev/null 2>&1 \
			|| { $(APT_GET) update && $(APT_GET) install -y docker-compose >/dev/null; }; \
	fi
	docker-compose --env-file .env.example -f docker-compose.yml config -q

# The tests use the PostgreSQL on 127.0.0.1:5432 (trust auth) beside SQLite.
postgres:
	@if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then \
		echo "Starting PostgreSQL"; \
		$(SUDO) pg_ctlcluster --skip-systemctl-redirect "$$(ls /etc/postgresql)" main start; \
	fi

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
	find . \( -path ./$(VENV) -o -path ./.data \) -prune -o -name __pycache__ -type d -print0 \
		| xargs -0 rm -rf
