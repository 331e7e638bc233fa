"""A worker keeps freed memory: frame-sized arrays are not faulted in again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: Page faults of five 96 MB stacks (a master's stack of frames), after three that settle
#: the heap; with ``temporaries``, four 16 MB temporaries each time too.
FAULTS = """
def faults(temporaries):
    import resource
    import numpy as np
    from numpy._core.multiarray import _set_madvise_hugepage
    _set_madvise_hugepage(False)  # 4 kB pages: the faults are counted the same everywhere
    frame = np.ones((2048, 2048), dtype=np.float32)
    for _ in range(3):  # settle
        cube = np.empty((6, 2048, 2048), dtype=np.float32); cube[:] = frame; del cube
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        cube = np.empty((6, 2048, 2048), dtype=np.float32); cube[:] = frame; del cube
        if temporaries:
            parts = [frame + 1 for _ in range(4)]; del parts
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
"""

SCRIPT = (
    FAULTS
    + """
import sys
from iopreport.reduce.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
print(faults(temporaries=True))
"""
)


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


DASK_SCRIPT = (
    FAULTS
    + """
import json, sys
from pathlib import Path
import tomlkit
from iopreport.config import load_config
from iopreport.fileio import write_text_atomic
from iopreport.reduce.executor import DaskPool
from iopreport.skeleton import init_project

def in_a_worker():  # a task: in the worker's task thread, above a thread arena's 64 MB heaps
    import os
    return os.environ.get("MALLOC_ARENA_MAX"), faults(temporaries=False)

project = Path(sys.argv[1])
init_project(project)
document = tomlkit.parse((project / "config.toml").read_text())
document["cluster"]["scheduler"] = "local"
write_text_atomic(project / "config.toml", tomlkit.dumps(document))
with DaskPool(load_config(project / "config.toml"), 2) as pool:
    found = [pool.client.submit(in_a_worker, pure=False).result() for _ in range(4)]
print(json.dumps(found))
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
@pytest.mark.skipif(_huge_pages_always(), reason="2 MB pages: too few faults to count")
def test_a_dask_worker_keeps_large_blocks_in_its_task_thread(tmp_path):
    """A LocalCluster's workers run their tasks in a thread: one malloc arena
    (``WORKER_ENVIRON_SET``) keeps a master-sized stack's pages there too."""
    import json

    done = subprocess.run(  # a fresh process: its own forkserver, started by the cluster
        [sys.executable, "-c", DASK_SCRIPT, str(tmp_path / "site")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert [variable for variable, _ in found] == ["1"] * 4
    # five 96 MB stacks: about 120,000 faults in a thread's own arena
    assert max(faults for _, faults in found) < 1000
