# Single entry point. On a fresh machine `make demo` and `make test` each build
# .venv from scratch (if missing), install iopreport into it, and run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/iopreport demo --dir demo

test: $(STAMP)
	# browser tests drive Debian's chromium (Playwright's own browser downloads are not used)
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)
	# the store tests start a PostgreSQL server of their own (initdb/pg_ctl of Debian's package)
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update && apt-get install -y postgresql)
	$(BIN)/ruff check iopreport tests benchmarks
	$(BIN)/ruff format --check iopreport tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check iopreport tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format iopreport tests benchmarks
	$(BIN)/ruff check --fix iopreport tests benchmarks

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
