#!/bin/sh
# Test-only environment holding IOP4 (https://github.com/juanep97/iop4) from PyPI.
# The import tests build a real IOP4 database with IOP4's own Django migrations
# and ORM inside it; iopreport itself never imports iop4.
# Usage: tests/iop4_fixture/make_venv.sh [VENV]   (default .venv-iop4)
# IOP4 1.7 needs Python >=3.11,<3.13: set IOP4_PYTHON to pick another interpreter.
set -eu
VENV="${1:-.venv-iop4}"
PY="${IOP4_PYTHON:-python3}"
IOP4_VERSION="${IOP4_VERSION:-1.7.4}"
STAMP="$VENV/.installed-iop4-$IOP4_VERSION"
if [ -f "$STAMP" ]; then
    exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "iop4==$IOP4_VERSION"
touch "$STAMP"
