"""The anytime curve (``protocol.eval_every``): the stream accuracy while training, every
``eval_every`` samples trained, for both protocols and both online loops.

Samples trained are the new samples of the training dataset that minibatches have passed through
the model (replayed samples are not counted); every epoch's pass counts again, so offline with
``train_epochs=5`` an experience of 1,000 samples counts 5,000. A point is recorded after the
training iteration (optimizer step and buffer update included) that passes a multiple of
``eval_every`` (one point, however many multiples it passed). Each point records ``samples_seen``,
``stream_accuracy``, ``experience`` (the index of the step being trained: the experience, 0 for
joint training's single step) and ``accuracy`` (the accuracy row over the test experiences).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from avalanche.training.plugins import SupervisedPlugin

from replay_cli.data.minibatches import recorded_batches
from replay_cli.training.checkpoint import restore_rng, rng_state


class AnytimeEvaluation(SupervisedPlugin):
    """Calls ``probe(samples_seen, experience)`` after each training iteration that passes a
    multiple of ``every`` samples trained. The evaluation draws random numbers (its loaders'
    seeds): the RNGs are put back afterwards, so a run with the curve trains exactly as one
    without it. The count of samples trained is checkpointed (a resumed run continues it)."""

    model_free_iterations = True  # the model only in an evaluation (counted as one); minibatch untouched

    def __init__(self, every: int):
        super().__init__()
        self.every = every
        self.samples_seen = 0
        self.experience = 0  # set by the run loop before each step
        self.probe: Callable[[int, int], None] | None = None
        self._in_epoch = 0
        self._epoch_samples = 0
        self._new = 0

    def save(self, strategy: Any, samples_of: Any) -> dict[str, Any]:
        return {"samples_seen": int(self.samples_seen)}

    def load(self, strategy: Any, state: dict[str, Any], rebuild: Any) -> None:
        self.samples_seen = state["samples_seen"]

    def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
        """How many new samples the epoch trains: a recorded loader says (the one-call online loop
        repeats a mini-experience's minibatches), any other loader passes its dataset once."""
        recorded = recorded_batches(strategy)
        self._in_epoch = 0
        self._epoch_samples = recorded.samples if recorded is not None else len(strategy.adapted_dataset)

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        """The minibatch's new samples, read before any plugin appends replayed ones (Avalanche's
        replay loader merges them in the batch: at most ``train_mb_size`` of it are new)."""
        left = self._epoch_samples - self._in_epoch
        self._new = min(len(strategy.mb_y), strategy.train_mb_size, left)

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self._in_epoch += self._new
        before, self.samples_seen = self.samples_seen, self.samples_seen + self._new
        if self.probe is not None and self.samples_seen // self.every > before // self.every:
            state = rng_state()
            self.probe(self.samples_seen, self.experience)
            restore_rng(state)
