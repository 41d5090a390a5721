"""DataLoader settings for data read one sample at a time (``fast_path=false``): worker processes,
pinned memory and persistent workers, from the ``loader`` config node, ``auto`` resolved for this run.

``auto`` starts no worker processes. Every built-in benchmark is held in memory, and on the fast
path batches are one indexing operation in the training process whatever is set. Off it, workers
would speed up per-sample transforms, but a loader with workers draws its samplers' random numbers
ahead of the training loop (it prefetches batches), so a method or model that draws random numbers
while training (SCR's and RAR's augmentations, GSS's buffer probes, dropout) would give other
numbers for the same seed with another worker count, that is on a machine with other cores. Workers
are for who asks for them.
"""

from __future__ import annotations

from typing import Any

AUTO = "auto"


def loader_settings(loader: Any, fast_path: bool, device: str) -> dict[str, Any]:
    """``num_workers``, ``pin_memory`` and ``persistent_workers`` for Avalanche's ``strategy.train``
    and ``strategy.eval``.

    ``loader``: the config node (absent keys count as ``auto``); ``device``: the resolved training
    device. ``auto`` workers: none (see the module's docstring); ``auto`` pinning: on when training
    on CUDA off the fast path; ``auto`` persistence: off, because Avalanche's persistent loader keeps
    its samplers across epochs, so with more than one epoch the batches would differ from a run
    without workers."""
    loader = loader or {}
    workers = loader.get("num_workers", AUTO)
    if workers == AUTO:
        workers = 0
    pin = loader.get("pin_memory", AUTO)
    if pin == AUTO:
        pin = str(device).startswith("cuda") and not fast_path
    persistent = loader.get("persistent_workers", AUTO)
    if persistent == AUTO:
        persistent = False
    return {"num_workers": workers, "pin_memory": pin, "persistent_workers": persistent and workers > 0}
