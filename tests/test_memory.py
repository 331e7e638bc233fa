"""A worker keeps freed memory: frame-sized arrays are not faulted in again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import resource, sys
import numpy as np
from numpy._core.multiarray import _set_madvise_hugepage
from iopreport.reduce.memory import keep_freed_memory
_set_madvise_hugepage(False)  # 4 kB pages: the faults are counted the same on every machine
if sys.argv[1] == "keep":
    assert keep_freed_memory()
frame = np.ones((2048, 2048), dtype=np.float32)
for _ in range(3):  # settle
    cube = np.empty((6, 2048, 2048), dtype=np.float32); cube[:] = frame; del cube
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cube = np.empty((6, 2048, 2048), dtype=np.float32); cube[:] = frame; del cube
    temporaries = [frame + 1 for _ in range(4)]; del temporaries
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip())


def _huge_pages_always() -> bool:
    try:
        return "[always]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.skipif(_huge_pages_always(), reason="2 MB pages: too few faults to count")
def test_kept_memory_is_reused_without_page_faults():
    default, kept = _page_faults("default"), _page_faults("keep")
    # five 96 MB stacks and twenty 16 MB temporaries: thousands of faults by default,
    # next to none when the memory is kept
    assert default > 1000
    assert kept < default / 10
