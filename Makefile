# The two commands a newcomer needs: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
# pipefail: a failed install fails, though its output is filtered
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench system-packages

# The first install takes about 8 minutes on 2 cores, most of it compiling llama-cpp-python
# (pip shows each package; the compile itself prints nothing until it is done).
$(STAMP): pyproject.toml
	@echo "== installing Earshot into $(VENV): about 8 minutes the first time (llama-cpp-python compiles)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install -e '.[dev]' | awk '/^(Collecting|  Building wheel|Successfully|Installing)/ { print; fflush() }'
	touch $(STAMP)
	@echo "== installed"

# Debian packages the tests use: PostgreSQL for the store tests (they start their own server),
# espeak-ng for the VAD corpus, chromium for the call page (driven headless by Playwright).
system-packages:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v espeak-ng >/dev/null \
	    || ! command -v chromium >/dev/null; then \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql espeak-ng chromium >/dev/null; fi

run: $(STAMP)
	$(BIN)/earshot serve

test: $(STAMP) system-packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	EARSHOT_REQUIRE_PG=1 $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.event_store
	$(BIN)/python -m bench.audio_path
	$(BIN)/python -m bench.stt
	$(BIN)/python -m bench.doubt
	$(BIN)/python -m bench.heard
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.first_phrase
	$(BIN)/python -m bench.llm_concurrency
	$(BIN)/python -m bench.load
	$(BIN)/python -m bench.soak
