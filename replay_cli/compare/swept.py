"""Which config keys a set of runs varied: the columns a comparison groups by.

Changing one option changes many resolved values (``storage=class_balanced`` swaps the whole storage
node, ``mem_size`` is copied into ``storage.policy.max_size``, ``benchmark.seed`` follows ``seed``). The
user thinks in the keys they typed, so those win: Hydra's recorded overrides first, then top-level keys
and group names, then any nested value that is neither an interpolation (results.json's ``follows``,
or Hydra's saved config: in a config file, a preset or typed as ``key=${other}``) nor already
determined by the keys kept so far and the seed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from replay_cli.compare.runs import Run
from replay_cli.keys import is_presentation

SEED = "seed"


def hashable(value: Any) -> str:
    """Config values include lists and dicts; compare them by their JSON text."""
    return json.dumps(value, sort_keys=True, default=str)


def compared(key: str) -> bool:
    """False for the seed (aggregated over) and for keys that never change a run's numbers."""
    return key != SEED and not is_presentation(key)


def swept_keys(runs: Sequence[Run]) -> list[str]:
    """The keys whose values differ between ``runs``, seed excluded: the ones typed as overrides in
    the order they were typed, then the others in config order."""
    views = [run.settings for run in runs if run.config]
    ordered = list(dict.fromkeys(key for view in views for key in view))
    typed = list(dict.fromkeys(key for run in runs for key in (run.overrides or {})))
    interpolated = {key for run in runs for key in run.interpolated} - _typed_as_values(runs)
    differing = [key for key in ordered if compared(key) and key not in interpolated and _varies(key, views)]
    kept = [key for key in differing if key in typed or "." not in key]
    for key in sorted((k for k in differing if k not in kept), key=lambda k: k.count(".")):
        if not _determined_by(key, [*kept, SEED], views):
            kept.append(key)
    return [key for key in typed if key in kept] + [
        key for key in differing if key in kept and key not in typed
    ]


def _typed_as_values(runs: Sequence[Run]) -> set[str]:
    r"""Keys some run was given a value of its own on the command line (``split_seed=3``, not
    ``split_seed=${seed}``, which Hydra records as ``$\{seed\}``): there they no longer follow another
    key."""
    typed = [(key, value) for run in runs for key, value in (run.overrides or {}).items()]
    return {key for key, value in typed if "${" not in value.replace("\\{", "{")}


def _varies(key: str, views: Sequence[dict[str, Any]]) -> bool:
    return len({hashable(view.get(key)) for view in views}) > 1


def _determined_by(key: str, kept: Sequence[str], views: Sequence[dict[str, Any]]) -> bool:
    """True when the kept keys' values fix ``key``'s value in every run (a derived or interpolated key)."""
    seen: dict[tuple[str, ...], str] = {}
    for view in views:
        known = tuple(hashable(view.get(k)) for k in kept)
        if seen.setdefault(known, hashable(view.get(key))) != hashable(view.get(key)):
            return False
    return True
