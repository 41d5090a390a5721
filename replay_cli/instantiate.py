"""Objects from config nodes. Group nodes carry ``_target_`` plus labels that are read by the
builders (``name``, ...), not passed to the constructor; nodes marked ``_partial_: true`` need a live
object (the model, the storage policy) that only exists once the run is built."""

from __future__ import annotations

import functools
from typing import Any

from omegaconf import DictConfig, OmegaConf


def instantiate_group(node: DictConfig, labels: tuple[str, ...] = ("name",), **kwargs: Any) -> Any:
    """Instantiate ``node`` without its ``labels`` (keys read by the builders, not the constructor)."""
    from hydra.utils import instantiate

    params = OmegaConf.to_container(node, resolve=True)
    for label in labels:
        params.pop(label, None)
    return instantiate(params, **kwargs)


def complete(built: Any, **live: Any) -> Any:
    """A ``_partial_`` node comes out of Hydra as a ``functools.partial``: call it with the live
    objects it was waiting for; anything else is already complete."""
    return built(**live) if isinstance(built, functools.partial) else built
