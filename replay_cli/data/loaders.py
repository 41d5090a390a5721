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


def standard_start_method() -> str | None:
    """Make loader worker processes start as in a plain ``replay-run``, also inside a launcher's worker.

    joblib's loky workers set the process-wide start method to ``loky``, whose processes a torch
    DataLoader cannot start (``'Process' object has no attribute 'env'``, hydra #964); Avalanche's
    replay loader passes no ``multiprocessing_context`` on to torch, so the default is what its workers
    use. When the default is not one of Python's own (fork, spawn, forkserver), it is set back to this
    platform's default (``fork`` on Linux before Python 3.14): the same start method as the basic
    launcher, hence the same samples in the same order. Called only when ``loader.num_workers > 0``;
    returns the start method the loaders will use (None: left as it was, unset)."""
    import multiprocessing

    current = multiprocessing.get_start_method(allow_none=True)
    if current is None or current in ("fork", "spawn", "forkserver"):
        return current
    platform_default = multiprocessing.get_all_start_methods()[0]
    multiprocessing.set_start_method(platform_default, force=True)
    return platform_default
