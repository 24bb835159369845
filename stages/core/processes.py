"""A stage that outlives the DVC process running it would train on alone, holding the GPU:
on Linux it asks the kernel for a SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

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
