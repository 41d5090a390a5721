"""Names that every view of a run must agree on, written once: the config groups, the headline metrics,
the keys that never change what a run computes, and how a run's config becomes flat columns.

W&B's config columns, replay-compare's keys and the sweep summary's columns all come from
:func:`flatten`, so a key a user reads in one of them is the key they type in the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Config groups every run has; each node carries a ``name`` (the option chosen, e.g. storage=reservoir).
CONFIG_GROUPS = ("benchmark", "model", "strategy", "optimizer", "protocol", "storage")

# The headline numbers of a run (keys of results.json and of W&B's summary) and which way is better.
HIGHER_IS_BETTER: dict[str, bool] = {
    "final_average_accuracy": True,
    "final_stream_accuracy": True,
    "forgetting": False,
    "bwt": True,
    "train_seconds": False,
    # the same trained model evaluated task-aware (outputs masked to each experience's classes)
    "task_il_final_average_accuracy": True,
    "task_il_forgetting": False,
    "task_il_bwt": True,
    # what the run cost (replay_cli.reporting.cost): training FLOPs, the largest buffer in bytes
    "train_flops": False,
    "buffer_bytes": False,
}
HEADLINE_METRICS = tuple(HIGHER_IS_BETTER)

# Keys (and, with their dotted children, nodes) that change how a run looks, where it logs or how fast
# it loads data, never its numbers: a resume may change them and replay-compare never groups by them.
PRESENTATION_KEYS = (
    "resume",
    "print_config",
    "progress",
    "num_threads",
    "fast_path",
    "logger",
    "instruments",
)

# Runs that differ in one of these are different experiments: replay-compare never averages them together.
EXPERIMENT_KINDS = ("benchmark", "strategy", "protocol")


def is_presentation(key: str) -> bool:
    """True for a presentation key or any key below one (``logger.mode``); ``progress_x`` is not one."""
    return any(key == root or key.startswith(f"{root}.") for root in PRESENTATION_KEYS)


def flatten(config: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config (nested dicts, as in results.json) as one flat dict of dotted keys.

    Every leaf appears under its dotted key (lists are leaves). A top-level node with a string
    ``name`` is a config group choice: it appears under the group's own name (``storage: reservoir``),
    which is how a user types and reads it, and not a second time as ``storage.name``.
    Example: ``{"storage": {"name": "reservoir", "policy": {"max_size": 5}}, "seed": 1}`` ->
    ``{"storage": "reservoir", "storage.policy.max_size": 5, "seed": 1}``.
    """
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            if isinstance(value, Mapping):
                if not prefix and isinstance(value.get("name"), str):
                    flat[dotted] = value["name"]
                walk(value, f"{dotted}.")
            elif not (prefix.count(".") == 1 and key == "name" and prefix[:-1] in flat):
                flat[dotted] = value

    walk(config, "")
    return flat
