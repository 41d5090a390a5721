"""iCaRL (Rebuffi et al. 2017), as Avalanche's ``ICaRL``: the model's ``features`` learn with replay
and distillation, its ``classifier`` is used in training only, and evaluation classifies by the
nearest mean of exemplars chosen by herding.

Avalanche's iCaRL reads a class timeline our benchmarks do not carry, mixes int and tensor targets,
and rounds per-class quotas up: :class:`ClassTimeline` fits it to them."""

from __future__ import annotations

import itertools
from typing import Any

from avalanche.training.plugins import SupervisedPlugin

from replay_cli.data.avalanche_internals import classification_dataset
from replay_cli.errors import ConfigError
from replay_cli.strategies.build import BufferLabels


class ClassTimeline(SupervisedPlugin):
    """Runs after iCaRL's own plugin, on every callback, to fit it to our benchmarks:

    - Avalanche 0.6's iCaRL reads the legacy ``experience.benchmark.n_classes_per_exp`` and
      ``classes_order``, which scenarios built with ``benchmark_from_datasets`` lack: each training
      experience gets a view with both before iCaRL's ``before_training_exp``.
    - iCaRL's exemplar dataset yields int targets, ours 0-d tensors, and a minibatch mixing both does
      not collate: the same exemplars (same ``buffer_transform``) are concatenated as tensors.
    - iCaRL keeps ``ceil(mem_size / seen classes)`` exemplars per class, up to ``seen - 1`` more than
      ``mem_size``: after each experience the lowest-ranked (last herded) exemplars are dropped so the
      first ``mem_size % seen`` classes keep one more than the rest and the total is ``mem_size``,
      and the class means are recomputed from what is kept."""

    def __init__(self, classes_per_experience: list[list[int]], mem_size: int):
        super().__init__()
        from types import SimpleNamespace

        self.mem_size = mem_size
        self.view = SimpleNamespace(
            n_classes_per_exp=[len(c) for c in classes_per_experience],
            classes_order=[c for classes in classes_per_experience for c in classes],
        )
        self.experience_of = {c: e for e, classes in enumerate(classes_per_experience) for c in classes}

    def after_train_dataset_adaptation(self, strategy: Any, **kwargs: Any) -> None:
        import torch
        from avalanche.benchmarks.utils import concat_datasets
        from torch.utils.data import TensorDataset

        strategy.experience.benchmark = self.view
        icarl = _icarl_plugin(strategy)
        if not icarl.x_memory:
            return
        targets = torch.tensor(list(itertools.chain.from_iterable(icarl.y_memory)))
        exemplars = classification_dataset(
            TensorDataset(torch.cat(icarl.x_memory).cpu(), targets),
            targets=targets.tolist(),
            transform=icarl.buffer_transform,
        )
        strategy.adapted_dataset = concat_datasets((strategy.experience.dataset.train(), exemplars))

    def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        icarl = _icarl_plugin(strategy)
        if sum(len(x) for x in icarl.x_memory) <= self.mem_size:
            return
        seen = len(icarl.x_memory)
        for i in range(seen):
            keep = (icarl.order[i] <= self.mem_size // seen + (i < self.mem_size % seen)).nonzero().flatten()
            icarl.x_memory[i] = icarl.x_memory[i][keep]
            icarl.y_memory[i] = icarl.y_memory[i][: len(keep)]
            icarl.order[i] = icarl.order[i][keep]
        strategy.model.eval()
        icarl.compute_class_means(strategy)
        strategy.model.train()


def _icarl_plugin(strategy: Any) -> Any:
    from avalanche.training.supervised.icarl import _ICaRLPlugin

    return next(p for p in strategy.plugins if isinstance(p, _ICaRLPlugin))


def build(
    *,
    model: Any,
    optimizer: Any,
    criterion: Any,
    plugins: list[Any],
    benchmark: Any,
    mem_size: int,
    buffer_transform: Any = None,
    **strategy_args: Any,
) -> Any:
    """``ICaRL`` on ``model.features`` and ``model.classifier`` with a fixed memory of ``mem_size``
    exemplars in all; ``criterion`` is unused (iCaRL brings its own distillation loss).

    Raises :class:`ConfigError` when ``mem_size`` is below the number of classes: every class needs
    one exemplar for its mean."""
    from avalanche.training import ICaRL

    if mem_size < benchmark.num_classes:
        raise ConfigError(
            "mem_size",
            mem_size,
            f"an integer >= {benchmark.num_classes} with strategy=icarl (one exemplar per class)",
        )

    strategy = ICaRL(
        feature_extractor=model.features,
        classifier=model.classifier,
        optimizer=optimizer,
        memory_size=mem_size,
        buffer_transform=buffer_transform,
        fixed_memory=True,
        plugins=list(plugins),
        **strategy_args,
    )
    strategy.plugins.append(ClassTimeline(benchmark.classes_per_experience(), mem_size))  # after iCaRL's
    return strategy


def buffer_labels(strategy: Any) -> BufferLabels:
    """Classes of iCaRL's exemplar sets (``y_memory``); each class's exemplars come from the
    experience that introduced it (iCaRL herds new classes only). iCaRL keeps no task labels: its
    replay dataset labels every exemplar task 0, reported as such."""
    icarl = _icarl_plugin(strategy)
    timeline = next(p for p in strategy.plugins if isinstance(p, ClassTimeline))
    targets = [int(y) for y in itertools.chain.from_iterable(icarl.y_memory)]
    return BufferLabels(
        targets=targets,
        targets_task_labels=[0] * len(targets),
        origin_experience=[timeline.experience_of[y] for y in targets],
        stored_bytes=sum(int(x.nbytes) for x in icarl.x_memory) + 8 * len(targets),  # int64 labels
    )
