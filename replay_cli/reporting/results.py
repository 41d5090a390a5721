"""The run's results as data: one :class:`RunResults` grows step by step and every view (results.json,
console, W&B) reads it. results.json is rewritten atomically after each step, so a crash or a kill
never leaves a half-written file and never loses finished experiences.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from replay_cli.reporting import metrics
from replay_cli.reporting.class_views import TASK_IL_MASKED, TASK_IL_SAME, ClassViews, samples_per_class
from replay_cli.reporting.instrument_keys import cost_summary, cost_totals, instrument_metrics
from replay_cli.reporting.schema import SCHEMA_VERSION

RESULTS_FILE = "results.json"


@dataclass
class RunResults:
    config: dict[str, Any]
    n_experiences: int  # test experiences: the columns of the accuracy matrix
    n_steps: int  # training steps: its rows once the run completes (1 for joint training)
    benchmark: dict[str, Any] = field(default_factory=dict)
    status: str = "running"
    error: str | None = None
    accuracy_matrix: list[list[float]] = field(default_factory=list)
    seen_experiences: list[int] = field(default_factory=list)
    stream_accuracy: list[float | None] = field(default_factory=list)
    per_task_accuracy: list[dict[str, float]] = field(default_factory=list)
    buffer_composition: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: list[float] = field(default_factory=list)
    eval_seconds: list[float] = field(default_factory=list)
    # class views (replay_cli.reporting.class_views): task-IL rows only when obtained by masking
    task_il_evaluation: str | None = None
    task_il_accuracy_matrix: list[list[float]] | None = None
    per_class_accuracy: list[dict[str, float]] = field(default_factory=list)
    confusion_matrix: list[list[int]] | None = None  # of the latest step: rows true, columns predicted
    # protocol.eval_every: [{"samples_seen": int, "stream_accuracy": float, "experience": int,
    # "accuracy": [float per test experience]}, ...]
    anytime_accuracy: list[dict[str, Any]] = field(default_factory=list)
    # benchmark.validation_size > 0: the validation stream's rows, as accuracy_matrix's
    validation_samples: list[int] | None = None  # held out of each training experience
    validation_accuracy_matrix: list[list[float]] = field(default_factory=list)
    validation_stream_accuracy: list[float | None] = field(default_factory=list)
    stop_after: int | None = None  # stop_after=K: only the first K experiences trained and evaluated
    follows: dict[str, str] = field(default_factory=dict)  # keys set to ${another key}: never grouped
    # per step: what it cost (replay_cli.reporting.cost) and what the buffer did (.diagnostics)
    cost: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def add_step(
        self,
        row: list[float],
        seen: int,
        stream_accuracy: float | None,
        composition: dict[str, Any],
        train_seconds: float,
        eval_seconds: float,
        per_task: dict[str, float] | None = None,
        views: ClassViews | None = None,
    ) -> None:
        self.accuracy_matrix.append(row)
        self.per_task_accuracy.append(per_task or {})
        self.seen_experiences.append(seen)
        self.stream_accuracy.append(stream_accuracy)
        self.buffer_composition.append({"experience": len(self.accuracy_matrix) - 1, **composition})
        self.train_seconds.append(train_seconds)
        self.eval_seconds.append(eval_seconds)
        if views is not None:
            self._add_views(views)

    def _add_views(self, views: ClassViews) -> None:
        self.per_class_accuracy.append(views.per_class_accuracy)
        self.confusion_matrix = views.confusion
        if views.task_il_row is None:
            self.task_il_evaluation = TASK_IL_SAME
        else:
            self.task_il_evaluation = TASK_IL_MASKED
            self.task_il_accuracy_matrix = [*(self.task_il_accuracy_matrix or []), views.task_il_row]

    def add_validation(self, row: list[float], stream_accuracy: float | None) -> None:
        """The validation stream's accuracies after the step just added (one float per experience)."""
        self.validation_accuracy_matrix.append(row)
        self.validation_stream_accuracy.append(stream_accuracy)

    def add_anytime(
        self,
        samples_seen: int,
        stream_accuracy: float | None,
        experience: int | None = None,
        accuracy: list[float] | None = None,
    ) -> None:
        """One point of the anytime curve (see :mod:`replay_cli.training.anytime`): stream accuracy
        after ``samples_seen`` samples trained, while step ``experience`` trains, and the accuracy
        row over the test experiences then."""
        self.anytime_accuracy.append(
            {
                "samples_seen": samples_seen,
                "stream_accuracy": stream_accuracy,
                "experience": experience,
                "accuracy": accuracy,
            }
        )

    def finished_anytime(self) -> list[dict[str, Any]]:
        """The anytime points of finished steps: an interrupted step's are not the run's (its
        checkpoint holds none of them, and a resume records them again)."""
        done = len(self.accuracy_matrix)
        return [p for p in self.anytime_accuracy if p.get("experience") is None or p["experience"] < done]

    def add_instruments(self, cost: dict[str, Any], diagnostics: dict[str, Any]) -> None:
        """The latest step's cost and replay diagnostics (after :meth:`add_step`)."""
        self.cost.append(cost)
        self.diagnostics.append(diagnostics)

    def finish(self, status: str, error: str | None = None) -> None:
        self.status, self.error, self.finished_at = status, error, time.time()

    @property
    def average_accuracy_per_experience(self) -> list[float]:
        return self._averages(self.accuracy_matrix)

    def _averages(self, matrix: list[list[float]]) -> list[float]:
        return [metrics.average_accuracy(r, s) for r, s in zip(matrix, self.seen_experiences, strict=False)]

    @property
    def task_il_matrix(self) -> list[list[float]] | None:
        """Task-IL accuracy matrix (as ``accuracy_matrix``); the accuracy matrix itself for multi-head
        models; ``None`` when not every step has one (a run resumed from before class views)."""
        matrix = (
            self.accuracy_matrix if self.task_il_evaluation == TASK_IL_SAME else self.task_il_accuracy_matrix
        )
        return matrix if matrix is not None and len(matrix) == len(self.accuracy_matrix) else None

    @property
    def task_il_average_accuracy_per_experience(self) -> list[float] | None:
        matrix = self.task_il_matrix
        return None if matrix is None else self._averages(matrix)

    @property
    def final_average_accuracy(self) -> float | None:
        averages = self.average_accuracy_per_experience
        return averages[-1] if averages else None

    def step_metrics(self, step: int) -> dict[str, float]:
        """The flat record of one training step, under the names every per-step view logs:
        ``accuracy/exp_<j>`` (column j of the matrix), ``buffer/class_<c>``, ``buffer/experience_<e>``,
        ``buffer/task_<t>``, plus averages, forgetting and BWT so far."""
        matrix = self.accuracy_matrix[: step + 1]
        record: dict[str, Any] = {
            "experience": step,
            "average_accuracy": self.average_accuracy_per_experience[step],
            "stream_accuracy": self.stream_accuracy[step],
            "forgetting": metrics.forgetting(matrix),
            "bwt": metrics.backward_transfer(matrix),
            "train_seconds": self.train_seconds[step],
        }
        record.update({f"accuracy/exp_{j}": value for j, value in enumerate(self.accuracy_matrix[step])})
        record.update(self._class_view_metrics(step))
        record.update(self._validation_metrics(step))
        record.update(instrument_metrics(self, step))
        composition = self.buffer_composition[step]
        record["buffer/size"] = composition["size"]
        for kind in ("class", "experience", "task"):
            record.update({f"buffer/{kind}_{key}": n for key, n in composition[f"per_{kind}"].items()})
        return {key: value for key, value in record.items() if value is not None}

    def _class_view_metrics(self, step: int) -> dict[str, Any]:
        """``task_il_average_accuracy``, ``task_il_forgetting``, ``task_il_bwt``,
        ``task_il_accuracy/exp_<j>`` and ``class_accuracy/class_<c>`` after ``step``."""
        record: dict[str, Any] = {}
        task_il = self.task_il_matrix
        if task_il is not None:
            matrix = task_il[: step + 1]
            record["task_il_average_accuracy"] = self._averages(matrix)[step]
            record["task_il_forgetting"] = metrics.forgetting(matrix)
            record["task_il_bwt"] = metrics.backward_transfer(matrix)
            record.update({f"task_il_accuracy/exp_{j}": value for j, value in enumerate(task_il[step])})
        if step < len(self.per_class_accuracy):
            record.update({f"class_accuracy/class_{c}": a for c, a in self.per_class_accuracy[step].items()})
        return record

    def _validation_metrics(self, step: int) -> dict[str, Any]:
        """``val/average_accuracy``, ``val/stream_accuracy``, ``val/forgetting``, ``val/bwt`` and
        ``val/accuracy/exp_<j>`` after ``step``, when the run holds out a validation stream."""
        if step >= len(self.validation_accuracy_matrix):
            return {}
        matrix = self.validation_accuracy_matrix[: step + 1]
        row = matrix[-1]
        record: dict[str, Any] = {
            "val/average_accuracy": metrics.average_accuracy(row, self.seen_experiences[step]),
            "val/stream_accuracy": self.validation_stream_accuracy[step],
            "val/forgetting": metrics.forgetting(matrix),
            "val/bwt": metrics.backward_transfer(matrix),
        }
        record.update({f"val/accuracy/exp_{j}": value for j, value in enumerate(row)})
        return record

    def summary(self) -> dict[str, Any]:
        """The headline numbers, under the names every view uses."""
        anytime = [point for point in self.finished_anytime() if "accuracy" in point]
        return {
            **self._matrix_summary(self.accuracy_matrix, self.stream_accuracy),
            "train_seconds": sum(self.train_seconds),
            **self.task_il_summary(),
            "average_anytime_accuracy": metrics.average_anytime_accuracy(anytime),
            "worst_case_accuracy": metrics.worst_case_accuracy(anytime),
            **cost_summary(self.cost),
        }

    def _matrix_summary(self, matrix: list[list[float]], stream: list[float | None]) -> dict[str, Any]:
        """The headline numbers of one stream's accuracy matrix (test, or validation)."""
        averages = self._averages(matrix)
        seen = self.seen_experiences[: len(matrix)]
        return {
            "final_average_accuracy": averages[-1] if averages else None,
            "final_stream_accuracy": stream[-1] if stream else None,
            "forgetting": metrics.forgetting(matrix),
            "bwt": metrics.backward_transfer(matrix),
            "average_incremental_accuracy": metrics.average_incremental_accuracy(matrix, seen),
        }

    def validation_summary(self) -> dict[str, Any] | None:
        """The validation stream's headline numbers (the test ones' names), None without one."""
        if self.validation_samples is None:
            return None
        return self._matrix_summary(self.validation_accuracy_matrix, self.validation_stream_accuracy)

    def validation_block(self) -> dict[str, Any] | None:
        """results.json ``validation``: the test keys' mirror for the held-out validation stream."""
        summary = self.validation_summary()
        if summary is None:
            return None
        return {
            "samples": sum(self.validation_samples or []),
            "samples_per_experience": self.validation_samples,
            "accuracy_matrix": self.validation_accuracy_matrix,
            "average_accuracy_per_experience": self._averages(self.validation_accuracy_matrix),
            "stream_accuracy": self.validation_stream_accuracy,
            **summary,
        }

    def task_il_summary(self) -> dict[str, float | None]:
        """Final average accuracy, forgetting and BWT of the task-IL matrix (same definitions)."""
        matrix, averages = self.task_il_matrix, self.task_il_average_accuracy_per_experience
        return {
            "task_il_final_average_accuracy": averages[-1] if averages else None,
            "task_il_forgetting": metrics.forgetting(matrix) if matrix else None,
            "task_il_bwt": metrics.backward_transfer(matrix) if matrix else None,
        }

    def to_dict(self) -> dict[str, Any]:
        """results.json: every key is described, with its type, in ``results.schema.json``
        (:mod:`replay_cli.reporting.schema`)."""
        end = self.finished_at or time.time()
        return {
            "schema_version": SCHEMA_VERSION,
            "status": self.status,
            "error": self.error,
            "seed": self.config.get("seed"),
            "n_experiences": self.n_experiences,
            "n_steps": self.n_steps,
            "experiences_done": len(self.accuracy_matrix),
            "benchmark": self.benchmark,
            "accuracy_matrix": self.accuracy_matrix,
            "average_accuracy_per_experience": self.average_accuracy_per_experience,
            "stream_accuracy": self.stream_accuracy,
            "per_task_accuracy": self.per_task_accuracy,
            **self.summary(),
            "task_il_evaluation": self.task_il_evaluation,
            "task_il_accuracy_matrix": self.task_il_matrix,
            "task_il_average_accuracy_per_experience": self.task_il_average_accuracy_per_experience,
            "per_class_accuracy": self.per_class_accuracy,
            "test_samples_per_class": samples_per_class(self.confusion_matrix or []),
            "confusion_matrix": self.confusion_matrix,
            "buffer_composition": self.buffer_composition,
            "anytime_accuracy": self.finished_anytime(),
            "validation": self.validation_block(),
            "stop_after": self.stop_after,
            "cost": {"per_step": self.cost, **cost_totals(self.cost)},
            "diagnostics": {"per_step": self.diagnostics},
            "timings": {
                "train_seconds_per_experience": self.train_seconds,
                "eval_seconds_per_experience": self.eval_seconds,
                "train_seconds": sum(self.train_seconds),
                "eval_seconds": sum(self.eval_seconds),
                "wall_seconds": end - self.started_at,
            },
            "versions": versions(),
            "config": self.config,
            "follows": self.follows,
        }


class ResultsSink(Protocol):
    """A view of the results, told after every step and once at the end."""

    def experience_done(self, results: RunResults) -> None: ...

    def run_ended(self, results: RunResults) -> None: ...


class ResultsFile:
    """results.json in the run directory, always complete on disk."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / RESULTS_FILE

    def experience_done(self, results: RunResults) -> None:
        write_json_atomic(self.path, results.to_dict())

    run_ended = experience_done


def replace_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write through a temporary file beside ``path``, then rename: readers never see a partial file,
    and a crash leaves the previous version whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    replace_atomically(path, lambda handle: handle.write(json.dumps(data, indent=2).encode()))


@functools.cache
def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("replay-cli", "avalanche-lib", "torch", "hydra-core", "wandb"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
