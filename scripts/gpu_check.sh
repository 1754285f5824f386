#!/usr/bin/env bash
# The GPU checks of issue 5, in one call on a lent GPU machine (device tool), whose python3 has torch+CUDA,
# onnx, onnxruntime and OpenCV but not PyAV (nothing here needs it):
#   1. PyTorch CUDA matches the CPU for every shipped model at 1080p (fp32 <= 1e-4; fp16 + channels-last +
#      CUDA graphs <= 1e-2): tests/test_enhancer.py::test_cuda_matches_cpu_at_1080p
#   2. latency per model at 720p and 1080p: fp32, fp16, fp16 + CUDA graphs (uint8 in and out, conversions on
#      the GPU), results in $OUT (or ./gpu-results) as JSON, CSV, markdown and a chart.
# Usage on the device machine:  bash scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_enhancer.py 2>&1 | tee "$out/parity.txt"
python3 -m nightvision bench --models zero-dce++,zero-dce,nafnet-s --sizes 720p,1080p \
    --backends torch,torch:fp16,torch:fp16+graphs,torch:fp16+cl+graphs --no-reference --out "$out" 2>&1 | tail -40
