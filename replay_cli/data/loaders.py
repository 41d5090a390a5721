"""DataLoader settings for data read one sample at a time (``fast_path=false``): worker processes,
pinned memory and persistent workers, from the ``loader`` config node, ``auto`` resolved for this
machine and this job.

On the fast path the data is in memory (on the training device) and batches are one indexing
operation, so workers would only copy it: ``auto`` gives 0 workers there, and the fast path runs in
the training process whatever is set.
"""

from __future__ import annotations

import os
from typing import Any

AUTO = "auto"
MAX_AUTO_WORKERS = 8


def loader_settings(
    loader: Any, fast_path: bool, device: str, num_threads: int | None, online: bool = False
) -> dict[str, Any]:
    """``num_workers``, ``pin_memory`` and ``persistent_workers`` for Avalanche's ``strategy.train``
    and ``strategy.eval``.

    ``loader``: the config node (absent keys count as ``auto``); ``device``: the resolved training
    device; ``num_threads``: the job's share of CPU cores when a launcher preset set one (a joblib
    sweep job), else None (all the machine's cores). ``auto`` workers: one core of the share stays
    with training, the rest load (at most 8); none on the fast path, and none ``online`` (each
    training call reads one mini-experience of a few samples: starting workers for it costs more
    than they load). ``auto`` persistence: off, so that worker settings never change results."""
    loader = loader or {}
    workers = loader.get("num_workers", AUTO)
    if workers == AUTO:
        share = num_threads or len(os.sched_getaffinity(0))
        workers = 0 if fast_path or online else max(0, min(MAX_AUTO_WORKERS, share - 1))
    pin = loader.get("pin_memory", AUTO)
    if pin == AUTO:
        pin = str(device).startswith("cuda") and not fast_path
    persistent = loader.get("persistent_workers", AUTO)
    if persistent == AUTO:  # Avalanche's persistent loader keeps its samplers across epochs, so
        persistent = False  # with more than one epoch the batches differ from a run without workers
    return {"num_workers": workers, "pin_memory": pin, "persistent_workers": persistent and workers > 0}
