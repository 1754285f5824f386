"""``nightvision doctor``: every probe answers, JSON is valid, and a missing library is reported, not raised."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import pytest

from nightvision.doctor import diagnose, format_report


def test_diagnose_reports_what_is_installed() -> None:
    d = diagnose()
    json.dumps(d)  # machine-readable as it is
    assert d["numpy"] == np.__version__
    assert d["opencv"]["version"] == cv2.__version__
    assert d["opencv"]["gstreamer"] in ("YES", "NO") or d["opencv"]["gstreamer"].startswith(("YES", "NO"))
    assert d["onnxruntime"]["version"] == onnxruntime.__version__
    assert "CPUExecutionProvider" in d["onnxruntime"]["providers"]
    assert "libx264" in d["pyav"]["encoders"]
    assert d["auto_backend"]["backend"] in ("onnxruntime", "torch", "tensorrt")
    assert d["auto_backend"]["why"]
    text = format_report(d)
    for label in ("python", "opencv", "pyav", "onnxruntime", "torch", "tensorrt", "auto backend", "caches"):
        assert f"\n{label}" in "\n" + text


@pytest.mark.parametrize(
    ("numba", "kernels", "line"),
    [
        ("0.68.1", "fused", "numba         0.68.1 (the denoiser's fused kernels)"),
        ("0.68.1", "opencv (ImportError: no)", "0.68.1, but the denoiser runs its OpenCV passes (ImportError: no)"),
        (None, "opencv", 'not installed (the denoiser runs slower OpenCV passes: pip install "nightvision[fast]")'),
    ],
)
def test_the_denoisers_kernels_are_reported(numba: str | None, kernels: str, line: str) -> None:
    d = diagnose()
    assert d["denoiser_kernels"] == ("fused" if d["numba"] else "opencv")  # (this machine: the check passed)
    assert line in format_report({**d, "numba": numba, "denoiser_kernels": kernels})


def test_a_missing_library_is_reported_not_raised() -> None:
    """Without torch and onnxruntime (imports blocked), the report still comes out and says so."""
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['onnxruntime'] = None\n"
        "import importlib.util as u; real = u.find_spec\n"
        "u.find_spec = lambda name, *a: None if name in ('torch', 'onnxruntime') else real(name, *a)\n"
        "from nightvision.doctor import diagnose, format_report\n"
        "print(format_report(diagnose()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "torch         not installed" in out.stdout
    assert "onnxruntime   not usable" in out.stdout


def test_a_stubs_only_tensorrt_is_reported_and_not_imported() -> None:
    """tensorrt-stubs alone (a dev install) is a namespace folder: importing it would break ``inspect``, and with
    it torch.onnx's exporter, for the rest of the process. Doctor and the TensorRT backend say "type stubs"
    without importing it; asking for the backend says so before looking for a plan."""
    import importlib.util

    from nightvision.backends import create_backend
    from nightvision.errors import EngineError
    from nightvision.specs import get_spec

    spec = importlib.util.find_spec("tensorrt") if "tensorrt" not in sys.modules else None
    if spec is None or spec.origin is not None:
        pytest.skip("needs tensorrt-stubs without the TensorRT library (the dev install)")
    d = diagnose()
    assert "type stubs only" in format_report(d)
    assert d["tensorrt"] is None and d["tensorrt_stubs_only"]  # JSON: no version, as for pycuda
    with pytest.raises(EngineError, match="only type stubs"):
        create_backend(get_spec("zero-dce++"), "tensorrt")
    assert "tensorrt" not in sys.modules


def test_a_cache_root_that_is_a_file_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NIGHTVISION_CACHE naming a file was reported as the cache root, and every cache write then failed."""
    afile = tmp_path / "cache.txt"
    afile.write_text("x")
    monkeypatch.setenv("NIGHTVISION_CACHE", str(afile))
    assert "is a file, not a folder: set NIGHTVISION_CACHE to a folder" in diagnose()["caches"]["root"]
