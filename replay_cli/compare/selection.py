"""Best-by-validation reports (``replay-compare --select-by METRIC --within KEYS``): within each value
of the ``--within`` keys (a method), pick among the hyperparameter configurations that were run the
one with the best mean of a validation metric, and report that configuration's test metrics.

Selecting on the test stream reports an optimistic number (Chaudhry et al. 2019, A-GEM, section 5;
mammoth's ``--validation``, continual-learning-baselines' 5% validation streams); it is refused unless
asked for with ``--select-on-test``, and the report then says so.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from replay_cli.compare.runs import Run
from replay_cli.compare.swept import SEED, compared, hashable
from replay_cli.errors import UsageError, closest
from replay_cli.keys import HIGHER_IS_BETTER, VALIDATION_PREFIX

DEFAULT_WITHIN = ("strategy", "storage")
# typed overrides a final run leaves out: tuning-only settings (it trains on the whole stream)
TUNING_ONLY = (SEED, "stop_after", "benchmark.validation_size", "hparams_search")
MIN_FINAL_SEEDS = 3


@dataclass(frozen=True)
class Choice:
    """Why a group was chosen: its mean of the selection metric, among how many configurations."""

    value: float
    configurations: int


@dataclass(frozen=True)
class Selection:
    metric: str
    within: list[str]  # one chosen configuration per value of these keys (and benchmark)
    tuned: list[str]  # the keys whose values were chosen
    on_test: bool  # the metric is a test one (--select-on-test)

    def describe(self) -> str:
        within = ", ".join(self.within) or "all runs"
        text = f"one configuration per {within}: the best mean {self.metric} among those run"
        if self.on_test:
            text += "; SELECTED ON THE TEST STREAM: the test numbers below are optimistic"
        return text


def check_select_by(metric: str, on_test: bool) -> None:
    """Raise :class:`UsageError` for a name that is no metric, or a test metric without ``on_test``."""
    if metric not in HIGHER_IS_BETTER:
        known = list(HIGHER_IS_BETTER)
        raise UsageError(
            f"--select-by {metric} is not a metric{closest(metric, known)}; choose one of: "
            + ", ".join(known)
        )
    if not metric.startswith(VALIDATION_PREFIX) and not on_test:
        raise UsageError(
            f"--select-by {metric} is a test metric: selecting on the test stream is optimistic; "
            f"use {VALIDATION_PREFIX}{metric} (runs with benchmark.validation_size > 0), or add "
            "--select-on-test to select on the test stream anyway"
        )


def within_keys(runs: Sequence[Run], within: Sequence[str] | None) -> list[str]:
    """``--within`` as asked (checked against the runs' keys), else strategy and storage."""
    known = {key for run in runs for key in run.settings}
    if within is None:
        return [key for key in DEFAULT_WITHIN if key in known]
    for key in within:
        if key == SEED:
            raise UsageError(
                "--within seed: the seed is what selection averages over; --within takes grouping keys "
                f"only, e.g. {','.join(DEFAULT_WITHIN)}"
            )
        if not compared(key):
            raise UsageError(
                f"--within {key}: {key} never changes a run's numbers, so it is never a grouping key; "
                f"--within takes grouping keys only, e.g. {','.join(DEFAULT_WITHIN)}"
            )
        if key not in known:
            raise UsageError(f"--within {key} is not a config key of these runs{closest(key, known)}")
    return list(within)


def choose(groups: Sequence[Any], selection: Selection) -> list[Any]:
    """The chosen group of each cell (benchmark and ``within`` values), its :class:`Choice` set on
    ``group.choice``; ties go to the first group. Raises :class:`UsageError` when no run has the
    metric."""
    cells: dict[tuple[str, ...], list[Any]] = {}
    for group in groups:
        cell = (group.runs[0].benchmark, *(hashable(group.key.get(key)) for key in selection.within))
        cells.setdefault(cell, []).append(group)
    sign = 1 if HIGHER_IS_BETTER[selection.metric] else -1
    chosen = []
    for members in cells.values():
        scored = []
        for group in members:
            values = [value for _, value in group.values(selection.metric)]
            if values:
                scored.append((sum(values) / len(values), group))
        if not scored:
            continue
        value, best = max(scored, key=lambda pair: sign * pair[0])  # max keeps the first of ties
        best.choice = Choice(value, len(scored))
        chosen.append(best)
    if not chosen:
        hint = " (runs without benchmark.validation_size hold no validation block)"
        raise UsageError(
            f"--select-by {selection.metric}: no completed run has it"
            + (hint if selection.metric.startswith(VALIDATION_PREFIX) else "")
        )
    return chosen


def final_run_command(group: Any, seeds: Sequence[int]) -> str:
    """The ``replay-run -m`` line that reruns the chosen configuration over ``seeds``: the chosen
    run's typed overrides without the tuning-only ones (:data:`TUNING_ONLY`), else its key values."""
    run = (group.completed or group.runs)[0]
    typed = run.overrides if run.overrides is not None else {k: _typed(v) for k, v in group.key.items()}
    kept = [f"{k}={v}" for k, v in typed.items() if k not in TUNING_ONLY and not k.startswith("hydra.")]
    return " ".join(["replay-run", "-m", *map(shlex.quote, kept), f"seed={','.join(map(str, seeds))}"])


def new_seeds(runs: Sequence[Run], group: Any) -> list[int]:
    """Seeds no compared run used, as many as the chosen group had (at least three)."""
    used = [int(s) for s in (run.results.get(SEED, run.config.get(SEED)) for run in runs) if s is not None]
    start = max(used, default=-1) + 1
    return list(range(start, start + max(MIN_FINAL_SEEDS, len(set(group.seeds)))))


def _typed(value: Any) -> str:
    return value if isinstance(value, str) else hashable(value)
