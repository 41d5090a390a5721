"""Signals held back while a finished step is recorded, so that a step is recorded whole or not at all.

After training and evaluating a step, the run writes its record in several places: the checkpoint
(the step's commit point), results.json, W&B, the console line. Ctrl-C (SIGINT) or SIGTERM (SLURM's
preemption notice) arriving in the middle would leave them disagreeing about which steps are done
(results.json one step ahead of the checkpoint, W&B's end-of-run row at a step whose metrics were never
logged). Inside :func:`signals_deferred` those signals are only noted; once the block is done the first
one is delivered to the handler that was in place, so the interruption happens between steps, where
every record agrees. SIGKILL cannot be held back: the order of the writes covers it (see
:mod:`replay_cli.training.checkpoint`).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def signals_deferred(signums: tuple[int, ...] = DEFERRED) -> Iterator[None]:
    """Hold ``signums`` back during the block, then deliver the first one received (its handler runs
    as if the signal had just arrived: Python's SIGINT handler raises ``KeyboardInterrupt``, replay-run's
    SIGTERM handler :class:`~replay_cli.errors.Interruption`). When the block raises, its exception
    goes on and a held signal is dropped (the run is ending anyway). Outside the main thread, where
    Python cannot set signal handlers, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in signums}
    previous = {signum: handler for signum, handler in previous.items() if handler is not None}

    def hold(signum: int, frame: object) -> None:
        received.append(signum)

    for signum in previous:  # a handler set outside Python (None) cannot be put back: left alone
        signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        _deliver(received[0], previous[received[0]])


def _deliver(signum: int, handler: object) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)  # what the signal would have done: end the process
    # SIG_IGN: nothing to do
