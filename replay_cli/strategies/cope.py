"""CoPE (De Lange & Tuytelaars, ICCV 2021, "Continual Prototype Evolution: Learning Online from
Non-Stationary Data Streams"), as Avalanche's ``CoPEPlugin`` on ``Naive``: the model's L2-normalised output
embedding; each class has a prototype in it (a momentum average of its samples' embeddings),
prediction is the nearest prototype, and the loss is the pseudo-prototypical proxy (PPP) loss over
the minibatch, replayed samples of a class-balanced buffer and the prototypes. Avalanche's plugin
trains ONE minibatch per ``train`` call (it stops training after its first iteration): it is an
online method, run under ``protocol=online`` with mini-experiences of at most one minibatch."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from replay_cli.errors import ConfigError


def build(
    *,
    model: Any,
    benchmark: Any,
    plugins: list[Any],
    mem_size: int,
    alpha: float,
    T: float,
    embedding_size: int | None,
    **kwargs: Any,
) -> Any:
    """Avalanche's ``CoPEPlugin(mem_size, n_classes=benchmark.num_classes, p_size=embedding width,
    alpha, T)`` on ``Naive`` with its PPP loss, which is what Avalanche's ``CoPE`` strategy is, but
    with the plugin FIRST: its ``after_eval_iteration`` turns the embeddings into one-hot predictions,
    which the run's own evaluation plugins (class views, confusion matrix) must read (``CoPE``
    appends it after them). ``embedding_size`` None: the model's output width (its number of
    classes); else the model's ``classifier`` is rebuilt as a linear layer to that width
    (continual-learning-baselines embeds MNIST in 32 dimensions); the optimizer takes it at the first
    experience (Avalanche resets the optimizer to the model's parameters then)."""
    from avalanche.training import Naive
    from avalanche.training.plugins import CoPEPlugin
    from torch import nn

    if embedding_size is not None:
        model.classifier = nn.Linear(model.classifier.in_features, embedding_size)
    cope = CoPEPlugin(
        mem_size=mem_size,
        n_classes=benchmark.num_classes,
        p_size=model.classifier.out_features,
        alpha=alpha,
        T=T,
    )
    kwargs.pop("criterion")
    return Naive(model=model, criterion=cope.ppp_loss, plugins=[cope, *plugins], **kwargs)


def check(cfg: DictConfig, benchmark: Any) -> None:
    """Raises :class:`ConfigError` unless the run is online with mini-experiences of at most one
    minibatch: offline, or with larger mini-experiences, CoPE would train on one minibatch of each
    and skip the rest."""
    batch = cfg.strategy.train_mb_size
    if cfg.protocol.get("name") != "online":
        raise ConfigError(
            "protocol",
            cfg.protocol.get("name"),
            f"online with strategy=cope (Avalanche's CoPE trains one minibatch per experience: add "
            f"protocol=online protocol.experience_size={batch})",
        )
    size = cfg.protocol.experience_size
    if size > batch:
        raise ConfigError(
            "protocol.experience_size",
            size,
            f"an integer <= {batch} (the minibatch) with strategy=cope: it trains one minibatch per "
            "mini-experience",
        )
