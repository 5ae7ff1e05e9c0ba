# The two commands a newcomer needs: `make run` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench system-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use: PostgreSQL for the store tests (they start their own server),
# espeak-ng for the VAD corpus.
system-packages:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v espeak-ng >/dev/null; then \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql espeak-ng >/dev/null; fi

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
	$(BIN)/python -m bench.llm_concurrency
	$(BIN)/python -m bench.load
	$(BIN)/python -m bench.soak
