"""ER-AML: Avalanche's ``ER_AML`` with the model group's ``features`` block as its feature extractor,
so the user never names a layer."""

from __future__ import annotations

from typing import Any


def build(*, model: Any, **kwargs: Any) -> Any:
    """``avalanche.training.ER_AML(model=model, feature_extractor=model.features, **kwargs)``.

    Raises :class:`~replay_cli.errors.UsageError` (before any training) for a model without
    ``features``."""
    from avalanche.training import ER_AML

    from replay_cli.models.networks import feature_extractor

    return ER_AML(model=model, feature_extractor=feature_extractor(model, "er_aml"), **kwargs)
