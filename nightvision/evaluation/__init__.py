"""Measuring: image metrics, paired and unpaired evaluation, pairs from exposure brackets, benchmarks.

* :mod:`~nightvision.evaluation.metrics` — PSNR, SSIM, mean luma, clipped pixels (numpy, no torch).
* :mod:`~nightvision.evaluation.pairs` — LOL-style folders, exposure brackets → pairs with a scene split.
* :mod:`~nightvision.evaluation.evaluate` — ``nightvision eval``: tables and a grid per method.
* :mod:`~nightvision.evaluation.bench` — ``nightvision bench``: latency and FPS per model, backend, size.
* :mod:`~nightvision.evaluation.complexity` — parameters and FLOPs.
"""
