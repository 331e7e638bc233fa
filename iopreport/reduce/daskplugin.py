"""Per-worker state of a Dask worker (imported only when Dask is installed)."""

from __future__ import annotations

from distributed import WorkerPlugin

from iopreport.reduce.frame import init_worker


class SolverPlugin(WorkerPlugin):
    """The plate solver of a Dask worker, loaded once when the worker starts.

    Registered with ``Client.register_plugin``; Dask calls :meth:`setup` on
    every worker, including those that join later or replace a lost one. The
    cached masters of :mod:`iopreport.reduce.workercache` live in the same process
    and so persist between the worker's tasks.
    """

    name = "iopreport-solver"

    def __init__(self, index_dir: str) -> None:
        self.index_dir = index_dir

    def setup(self, worker) -> None:
        init_worker(self.index_dir)
