"""keep_freed_memory: freed frame-sized temporaries keep their pages (no fresh page faults the next frame)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nightvision.allocator import keep_freed_memory

# Three 720p float32 BGR temporaries made and freed per "frame"; the minor page faults of ten frames.
_FRAMES = """
import resource, sys
import numpy as np
from nightvision.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "tuned" else None
def frame():
    temporaries = [np.ones((720, 1280, 3), np.float32) for _ in range(3)]
    del temporaries
frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    frame()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | env
    out = subprocess.run(
        [sys.executable, "-c", _FRAMES, mode], capture_output=True, text=True, check=True, env=environ
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator (Linux)")
def test_freed_frame_temporaries_are_reused_without_page_faults() -> None:
    applied, tuned = _faults("tuned")
    if applied == "False":
        pytest.skip("not glibc: nothing to tune")
    _, default = _faults("default")
    # each frame's 33 MB of temporaries are about 8000 pages; the default allocator faults many of them in afresh
    # (unless the kernel backs fresh blocks with huge pages: then there is little to save)
    if default < 1000:
        pytest.skip(f"this kernel faulted only {default} pages in ten frames without the setting: nothing to show")
    assert tuned < 50, (tuned, default)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator (Linux)")
def test_a_users_own_malloc_settings_stand() -> None:
    applied, _ = _faults("tuned", MALLOC_TRIM_THRESHOLD_="1000000")
    assert applied == "False"


def test_a_negative_limit_is_an_error() -> None:
    with pytest.raises(ValueError, match="trim_mb"):
        keep_freed_memory(-1)
