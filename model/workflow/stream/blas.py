"""One BLAS thread while the stream engine runs in this process.

The engine's matrix products are thin: a block's rows by the few dozen columns of the
augmented row (``Σ uuᵀ``, every model's predictions). OpenBLAS spreads each over all its
threads, whose hand-offs and spinning between calls cost more CPU than they save wall time
(docs/PERFORMANCE.md has the figures); Dask's nannies start their workers with one BLAS
thread for the same reason. With ``threadpoolctl`` installed (the ``arrow`` extra) the BLAS
library NumPy loaded is held to one thread for the run and restored after; without it, or
when the environment sets a BLAS thread count itself, nothing changes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: Environment variables by which a user sets the BLAS threads: then they are left alone.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold NumPy's BLAS to one thread inside the block (see the module docstring)."""
    if any(os.environ.get(v) for v in THREAD_VARIABLES):
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
