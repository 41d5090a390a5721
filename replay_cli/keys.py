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
    "average_incremental_accuracy": True,  # Rebuffi et al. 2017 (iCaRL)
    "train_seconds": False,
    # the same trained model evaluated task-aware (outputs masked to each experience's classes)
    "task_il_final_average_accuracy": True,
    "task_il_forgetting": False,
    "task_il_bwt": True,
    # from the anytime curve (eval_every): De Lange et al. 2023
    "average_anytime_accuracy": True,
    "worst_case_accuracy": True,
    # what the run cost (replay_cli.reporting.cost): training FLOPs, the largest buffer in bytes
    "train_flops": False,
    "buffer_bytes": False,
}
# results.json's ``validation`` block mirrors these test metrics (W&B: ``val/<name>``)
VALIDATION_METRICS = (
    "final_average_accuracy",
    "final_stream_accuracy",
    "forgetting",
    "bwt",
    "average_incremental_accuracy",
)
for _name in VALIDATION_METRICS:
    HIGHER_IS_BETTER[f"validation.{_name}"] = HIGHER_IS_BETTER[_name]
HEADLINE_METRICS = tuple(key for key in HIGHER_IS_BETTER if not key.startswith("validation."))
VALIDATION_PREFIX = "validation."


def metric_value(results: Mapping[str, Any], name: str) -> float | None:
    """The value of metric ``name`` in a run's results.json (as a dict): ``validation.<metric>`` reads
    the ``validation`` block; None when the run has no such value."""
    if name.startswith(VALIDATION_PREFIX):
        value = (results.get("validation") or {}).get(name[len(VALIDATION_PREFIX) :])
    else:
        value = results.get(name)
    return None if value is None else float(value)


# What each accuracy averages, in the words every view prints beside its name (console summary,
# replay-compare's headers, figure axes): two "average accuracies" that differ when experiences differ
# in size. See README: results.json.
AVERAGED_OVER = {
    "final_average_accuracy": "average over experiences",
    "final_stream_accuracy": "stream, per sample",
    "task_il_final_average_accuracy": "task-IL, average over experiences",
}


def metric_label(metric: str, readable: bool = False) -> str:
    """``final_average_accuracy (average over experiences)``; with ``readable``, underscores as spaces
    (axis labels). A metric without an entry in :data:`AVERAGED_OVER` is its own label."""
    name = metric.replace("_", " ") if readable else metric
    return f"{name} ({AVERAGED_OVER[metric]})" if metric in AVERAGED_OVER else name


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

# Top-level keys that belong to some methods only: a strategy lists those it reads under ``uses``.
COMMON_KEYS = (
    "mem_size",
    "batch_size",
    "batch_size_mem",
    "task_balanced_dataloader",
    "storage",
    "replay_update",
)
# Runs that differ in one of these are different experiments: replay-compare never averages them together.
EXPERIMENT_KINDS = ("benchmark", "strategy", "protocol")


def is_presentation(key: str) -> bool:
    """True for a presentation key or any key below one (``logger.mode``); ``progress_x`` is not one."""
    return any(key == root or key.startswith(f"{root}.") for root in PRESENTATION_KEYS)


FOLLOWS = "follows"  # results.json, W&B config and sweep summary: the keys that follow another


def following_keys(unresolved: Mapping[str, Any]) -> dict[str, str]:
    """Keys whose value is an interpolation (``benchmark.split_seed: ${seed}``), wherever it was written:
    config file, experiment preset or command line. ``unresolved``: the composed config before
    resolution (``OmegaConf.to_container(cfg, resolve=False)``). Returns dotted key -> the expression.
    Their value follows other keys, so no view ever groups runs by them."""
    return {
        key: value for key, value in flatten(unresolved).items() if isinstance(value, str) and "${" in value
    }


def config_columns(config: Mapping[str, Any], follows: Mapping[str, str]) -> dict[str, Any]:
    """A run's config as W&B's config columns and the sweep summary's columns: :func:`flatten`, plus
    ``follows`` (the sorted keys of :func:`following_keys`), so every view says which keys follow."""
    return {**flatten(config), FOLLOWS: sorted(follows)}


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
