#!/usr/bin/env bash
# Set up a virtual environment with the training and dev extras, then lint, type-check and test.
# torch is pinned to a CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0" 2>/dev/null \
  || .venv/bin/python -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
.venv/bin/python -m pip install -q -e '.[train,dev]'
.venv/bin/ruff check nightvision training tests
.venv/bin/ruff format --check nightvision training tests
.venv/bin/mypy
exec .venv/bin/python -m pytest -q --durations=10 "$@"
