"""Deep generative replay (Shin et al., NeurIPS 2017, "Continual Learning with Deep Generative
Replay"), as Avalanche's ``GenerativeReplay``: a VAE generator (Avalanche's ``MlpVAE``, sized to the
benchmark's inputs) is trained on each experience after the classifier, with replay of its own
earlier samples; from the second experience on, every minibatch is extended with samples of the
previous generator, labelled by the previous classifier. Its "buffer" is those generated samples:
:class:`ReplayedClasses` counts, per experience, the labels they were given."""

from __future__ import annotations

from collections import Counter
from typing import Any

from avalanche.core import SupervisedPlugin

from replay_cli.strategies.build import BufferLabels


def build(
    *,
    benchmark: Any,
    device: str,
    train_mb_size: int,
    eval_mb_size: int,
    train_epochs: int,
    generator: Any,
    replay_size: int | None,
    increasing_replay_size: bool,
    **kwargs: Any,
) -> Any:
    """``GenerativeReplay`` with an explicit generator strategy: ``MlpVAE(benchmark.input_shape,
    nhid=generator.latent_size)`` trained by ``VAETraining`` (Adam, ``generator.lr``,
    ``generator.weight_decay``; ``generator.train_epochs`` epochs, null: the classifier's) without
    console logging. Avalanche's default generator is the same VAE fixed to (1, 28, 28) MNIST."""
    from avalanche.models.generator import MlpVAE, VAE_loss
    from avalanche.training import GenerativeReplay, VAETraining
    from avalanche.training.plugins import EvaluationPlugin, GenerativeReplayPlugin
    from torch.optim import Adam

    vae = MlpVAE(tuple(benchmark.input_shape), nhid=generator.latent_size, device=device)
    replay = {"replay_size": replay_size, "increasing_replay_size": increasing_replay_size}
    generator_strategy = VAETraining(
        model=vae,
        optimizer=Adam(vae.parameters(), lr=generator.lr, weight_decay=generator.weight_decay),
        criterion=VAE_loss,
        train_mb_size=train_mb_size,
        train_epochs=generator.train_epochs or train_epochs,
        eval_mb_size=eval_mb_size,
        device=device,
        plugins=[GenerativeReplayPlugin(**replay)],
        evaluator=EvaluationPlugin(loggers=[]),
    )
    return GenerativeReplay(
        generator_strategy=generator_strategy,
        device=device,
        train_mb_size=train_mb_size,
        eval_mb_size=eval_mb_size,
        train_epochs=train_epochs,
        **replay,
        **kwargs,
    )


class ReplayedClasses(SupervisedPlugin):
    """Counts the labels of the generated samples replayed while training on the current experience:
    it notes each minibatch's size before Avalanche's ``GenerativeReplayPlugin`` (placed after it)
    appends the generated samples, and counts the labels of the appended rows once the iteration
    is over. Online, an experience is trained one mini-experience per call: the counts start again
    at its first mini-experience only."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[int] = Counter()
        self._real = 0

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        if getattr(strategy.experience, "is_first_subexp", True):  # an experience, or its first part
            self.counts = Counter()

    def before_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self._real = len(strategy.mbatch[0])

    def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
        self.counts.update(int(y) for y in strategy.mbatch[1][self._real :].tolist())


def replayed_labels(strategy: Any) -> BufferLabels:
    """The generated samples replayed during the last experience, one entry per sample with the label
    the previous classifier gave it (task label 0: the method ignores task labels; no experience of
    origin: a generated sample has none); its bytes: :func:`kept_models_bytes`."""
    plugin = next(p for p in strategy.plugins if isinstance(p, ReplayedClasses))
    targets = [label for label, count in sorted(plugin.counts.items()) for _ in range(count)]
    return BufferLabels(
        targets=targets, targets_task_labels=[0] * len(targets), stored_bytes=kept_models_bytes(strategy)
    )


def kept_models_bytes(strategy: Any) -> int:
    """What the method keeps instead of samples: its generator, and from the second experience on the
    frozen copies it replays from (the generator's, and the classifier's that labels its samples);
    their parameters' and buffers' bytes."""
    from avalanche.training.plugins import GenerativeReplayPlugin

    plugin = next((p for p in strategy.plugins if isinstance(p, GenerativeReplayPlugin)), None)
    names = ("generator", "old_generator", "old_model")
    models = [getattr(plugin, name, None) for name in names] if plugin else []
    return sum(int(t.nbytes) for m in models if m is not None for t in (*m.parameters(), *m.buffers()))
