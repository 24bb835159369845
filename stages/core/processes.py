"""A stage that outlives the DVC process running it would train on alone, holding the GPU:
on Linux it asks the kernel for a SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG). A
stage's own worker processes (`worker_pool`) end with it the same way."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

PR_SET_PDEATHSIG = 1
# what torch, OpenMP and the BLAS libraries read for their thread pools when they load
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def end_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask for `sig` when the parent process exits; True if the kernel took the request."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request: act on it now
        os.kill(os.getpid(), sig)
    return True


def _start_worker(threads: int) -> None:
    """A pool worker: `threads` threads in each pool (the variables hold for the libraries it
    loads later: torch, scipy's own OpenBLAS), and gone with the stage."""
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    end_with_parent()


def worker_pool(workers: int, threads: int = 1) -> ProcessPoolExecutor:
    """Processes that compute side by side with `threads` threads each. Spawned, not forked: a
    fork of a process whose OpenMP pool already ran can hang."""
    return ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(threads,)
    )


def cpu_workers(n_jobs: int = -1) -> int:
    """Worker processes a stage may run side by side: `n_jobs` (-1: every core it may use),
    at most the threads the scheduler running it shares out (OMP_NUM_THREADS, as torch reads
    it), at most its cores."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    allowed = [cores or 1]
    if n_jobs > 0:
        allowed.append(n_jobs)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        allowed.append(int(os.environ["OMP_NUM_THREADS"]))
    return max(1, min(allowed))
