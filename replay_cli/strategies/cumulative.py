"""Cumulative's checkpoint state (a :class:`replay_cli.storage.state.StateAdapter`, named by
``conf/strategy/cumulative.yaml``'s ``state`` key): ``strategy.dataset``, all training data seen so
far, concatenated in the order it came (Avalanche's Cumulative appends each experience to it)."""

from __future__ import annotations

from typing import Any


def save(strategy: Any, samples_of: Any) -> dict[str, Any]:
    """``{"seen": (N, 2) sample references}``; None before the first step."""
    dataset = strategy.dataset
    return {"seen": samples_of(dataset) if dataset is not None else None}


def load(strategy: Any, state: dict[str, Any], rebuild: Any) -> None:
    if state["seen"] is not None:
        strategy.dataset = rebuild(state["seen"])
