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
.venv/bin/python -m pip install -q -e '.[train,dev,fast]' 2>/dev/null || {
  echo "note: numba (the fast extra) does not install here; its tests skip"
  .venv/bin/python -m pip install -q -e '.[train,dev]'
}
# tensorrt-stubs for mypy: its own dependency is the real TensorRT (a vendor download), so --no-deps; its
# tensorrt/ folder lacks py.typed and has a few syntax errors, so a patched copy goes to .typings/.
.venv/bin/python -m pip install -q --no-deps tensorrt-stubs
SP=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf .typings && mkdir -p .typings && cp -r "$SP/tensorrt" "$SP/tensorrt_bindings" .typings/
sed -i -E 's/([(,] ?)in: /\1in_: /g; s/power: Weights = None, channel_axis: int\)/power: Weights = None, channel_axis: int = ...)/' \
  .typings/tensorrt_bindings/tensorrt.pyi
.venv/bin/ruff check nightvision training tests benchmarks
.venv/bin/ruff format --check nightvision training tests benchmarks
.venv/bin/mypy
.venv/bin/mypy benchmarks  # scripts that import the package: they rot silently otherwise
exec .venv/bin/python -m pytest -q --durations=10 "$@"
