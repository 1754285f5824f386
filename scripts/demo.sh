#!/usr/bin/env bash
# Set up a torch-free runtime environment and run the main job: enhance a low-light clip
# (the first argument, or a synthetic dark clip made on the spot) into demo/, replacing an earlier demo.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv-runtime/bin/python ] || "$PY" -m venv .venv-runtime
.venv-runtime/bin/python -m pip install -q --upgrade pip
.venv-runtime/bin/python -m pip install -q '.[fast]' 2>/dev/null || {
  echo "note: numba (the fast extra) does not install here; the denoiser runs its OpenCV passes"
  .venv-runtime/bin/python -m pip install -q .
}
exec .venv-runtime/bin/nightvision demo "$@" -o demo --overwrite --denoise
