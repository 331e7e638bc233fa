# Single entry point. On a fresh machine `make demo` and `make test` each build
# .venv from scratch (if missing), install iopreport into it, and run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
IOP4_VENV ?= .venv-iop4
# pytest processes of `make test` (pytest-xdist; each test file runs whole in one of them,
# so module fixtures are built once): on two cores the suite takes about 60% of the time
TEST_WORKERS ?= 2

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
	# index-file tests build index files with Debian's astrometry.net tools
	test -x /usr/bin/build-astrometry-index || (apt-get update && apt-get install -y astrometry.net)
	# IOP4 from PyPI in its own test-only venv: the import tests build a real IOP4 database
	sh tests/iop4_fixture/make_venv.sh $(IOP4_VENV)
	# the store tests start a PostgreSQL server of their own (initdb/pg_ctl of Debian's package)
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || (apt-get update && apt-get install -y postgresql)
	$(BIN)/ruff check iopreport tests benchmarks
	$(BIN)/ruff format --check iopreport tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check iopreport tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format iopreport tests benchmarks
	$(BIN)/ruff check --fix iopreport tests benchmarks

clean:
	rm -rf $(VENV) $(IOP4_VENV) demo .pytest_cache .ruff_cache
