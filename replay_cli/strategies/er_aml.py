"""ER-AML: Avalanche's ``ER_AML`` with the model group's ``features`` block as its feature extractor,
so the user never names a layer."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from replay_cli.errors import ConfigError


def build(*, model: Any, **kwargs: Any) -> Any:
    """``avalanche.training.ER_AML(model=model, feature_extractor=model.features, **kwargs)``.

    Raises :class:`~replay_cli.errors.UsageError` (before any training) for a model without
    ``features``."""
    from avalanche.training import ER_AML

    from replay_cli.models.networks import feature_extractor

    return ER_AML(model=model, feature_extractor=feature_extractor(model, "er_aml"), **kwargs)


def check(cfg: DictConfig, benchmark: Any) -> None:
    """ER-AML draws, every step, ``train_mb_size`` samples from each class's share of its buffer
    (Avalanche's positive/negative loaders drop incomplete batches): a share smaller than that is an
    empty loader, which Avalanche cycles forever. Raises :class:`ConfigError` before training."""
    from collections import Counter

    counts = Counter(int(t) for experience in benchmark.train_stream for t in experience.dataset.targets)
    share = min(min(counts.values()), cfg.mem_size // len(counts))  # the adaptive split's smallest share
    batch = cfg.strategy.train_mb_size
    if batch > share:
        key = "batch_size" if batch == cfg.batch_size else "strategy.train_mb_size"
        raise ConfigError(
            key,
            batch,
            f"an integer <= {share} with strategy=er_aml: each step draws that many samples from every "
            f"class's share of the buffer (mem_size={cfg.mem_size} over {len(counts)} classes); "
            f"or raise mem_size to {batch * len(counts)}",
        )
