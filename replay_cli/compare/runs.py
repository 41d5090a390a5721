"""Find runs on disk and read each one as data: its results.json, its settings and its Hydra overrides.

A run is any directory holding a results.json; nothing here trusts a run to be complete, so a
crashed, killed or still-running run is read as faithfully as a finished one.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from replay_cli.errors import UsageError
from replay_cli.keys import FOLLOWS, flatten, following_keys
from replay_cli.reporting.results import RESULTS_FILE

OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"
SAVED_CONFIG_FILE = Path(".hydra") / "config.yaml"
COMPLETED = "completed"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Run:
    path: Path
    results: dict[str, Any]
    overrides: dict[str, str] | None = None  # key -> value typed on the command line; None: unknown
    problem: str | None = None  # why the results could not be read
    interpolated: frozenset[str] = frozenset()  # keys whose value is ${another.key} (results' follows)

    @property
    def status(self) -> str:
        if self.problem:
            return UNREADABLE
        status = self.results.get("status", "unknown")
        if status == COMPLETED and self.results.get("final_average_accuracy") is None:
            return "incomplete"
        return status

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def config(self) -> dict[str, Any]:
        return self.results.get("config") or {}

    @property
    def benchmark(self) -> str:
        """The benchmark's name: runs of different benchmarks are never averaged together."""
        return (self.results.get("benchmark") or {}).get("name") or self.config.get("benchmark", {}).get(
            "name", "unknown"
        )

    @cached_property
    def settings(self) -> dict[str, Any]:
        """The config as flat dotted keys, as W&B's columns and the sweep summary show them."""
        return flatten(self.config)

    def detail(self) -> str:
        """Why a run is left out of the means, in a few words."""
        if self.problem:
            return self.problem
        done, total = self.results.get("experiences_done"), self.results.get("n_steps")
        steps = f"{done}/{total} steps" if done is not None and total is not None else ""
        return "; ".join(part for part in (steps, self.results.get("error") or "") if part)


@dataclass
class Found:
    runs: list[Run] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)  # the directories the user pointed at


def find_runs(paths: Iterable[str]) -> Found:
    """Every run under ``paths`` (run dirs, sweep dirs, results.json files or globs), each once."""
    found = Found()
    seen: set[Path] = set()
    for pattern in paths:
        for target in _expand(pattern):
            found.roots.append(target if target.is_dir() else target.parent)
            for results in _results_files(target):
                run_dir = results.parent.resolve()
                if run_dir not in seen:
                    seen.add(run_dir)
                    found.runs.append(load_run(run_dir))
    if not found.runs:
        shown = " ".join(paths)
        raise UsageError(f"no runs found under {shown}: expected directories holding {RESULTS_FILE}")
    found.runs.sort(key=lambda run: str(run.path))
    return found


def _expand(pattern: str) -> list[Path]:
    if not pattern.strip():
        raise UsageError("empty path: give sweep or run directories, e.g. outputs/multirun/*/*")
    if glob.has_magic(pattern):
        matches = sorted(glob.glob(pattern, recursive=True))
        if not matches:
            raise UsageError(f"{pattern} matches no files or directories")
        return [Path(match) for match in matches]
    path = Path(pattern)
    if not path.exists():
        raise UsageError(f"{pattern} does not exist")
    return [path]


def _results_files(target: Path) -> list[Path]:
    if target.is_file():
        if target.name != RESULTS_FILE:
            raise UsageError(f"{target} is not a {RESULTS_FILE} file or a directory")
        return [target]
    return sorted(target.rglob(RESULTS_FILE))


def load_run(run_dir: Path) -> Run:
    """One run; a results.json that cannot be parsed makes an 'unreadable' run rather than an error."""
    try:
        results = json.loads((run_dir / RESULTS_FILE).read_text())
        if not isinstance(results, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        return Run(run_dir, {}, problem=f"cannot read {RESULTS_FILE}: {error}")
    follows = results.get(FOLLOWS) if isinstance(results.get(FOLLOWS), dict) else {}
    interpolated = frozenset(follows) | _interpolated(run_dir)
    return Run(run_dir, results, overrides=_overrides(run_dir), interpolated=interpolated)


def _overrides(run_dir: Path) -> dict[str, str] | None:
    """The overrides Hydra recorded for the job: they name exactly what a sweep varied."""
    import yaml

    try:
        lines = yaml.safe_load((run_dir / OVERRIDES_FILE).read_text()) or []
    except (OSError, yaml.YAMLError):
        return None
    overrides: dict[str, str] = {}
    for line in lines:
        key, _, value = str(line).partition("=")
        key = key.lstrip("+~")
        if key and not key.startswith("hydra."):
            overrides[key] = value
    return overrides


def _interpolated(run_dir: Path) -> frozenset[str]:
    """Keys that Hydra's saved (unresolved) config sets to an interpolation such as ``${seed}``: their
    value follows another key, so they never vary on their own (runs written before results.json
    had ``follows``)."""
    import yaml

    try:
        saved = yaml.safe_load((run_dir / SAVED_CONFIG_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return frozenset()
    if not isinstance(saved, dict):
        return frozenset()
    return frozenset(following_keys(saved))
