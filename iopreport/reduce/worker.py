"""A reduction worker process: one thread per numeric library, and an end with its owner.

Pool initializers of :mod:`iopreport.reduce.executor`; the frame worker's
solver is loaded by :func:`iopreport.reduce.frame.init_worker`.
"""

from __future__ import annotations

import os
import threading
import time

#: Thread-count variables of the OpenMP and BLAS runtimes.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_thread_per_worker() -> None:
    """Keep a worker's numeric libraries to one thread (unless the user set a count).

    The pool already runs one worker per core; threads on top of that fight
    over the cores, and each small parallel region then waits for a
    descheduled thread (L.A.Cosmic's OpenMP loops, used before, took 0.66 s
    per DIPOL sub-frame with two threads on a busy 2-core machine and 0.05 s
    with one). Must run before the libraries load (the pool initializer).
    """
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")


def watch_owner(owner_pid: int) -> None:
    """End this worker when ``owner_pid`` is gone (killed with SIGKILL); a pool initializer.

    Also keeps the worker's numeric libraries to one thread (:func:`one_thread_per_worker`).
    """
    one_thread_per_worker()
    threading.Thread(target=_watch_owner, args=(owner_pid,), daemon=True).start()


def _watch_owner(pid: int, interval_s: float = 2.0) -> None:
    while True:
        time.sleep(interval_s)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass
