"""One table per sweep: at the end of every multirun, ``sweep_summary.csv`` and ``.json`` at the sweep
root list each job with its overrides, status, final metrics and run directory, then its whole config
as flat columns (the same keys as W&B's config columns and replay-compare's ``--by`` keys).

It reads what the jobs left on disk (results.json, .hydra/overrides.yaml), so it works the same for
every launcher, and a job that died without results still gets a ``failed`` row.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from replay_cli.keys import (
    FOLLOWS,
    HEADLINE_METRICS,
    VALIDATION_METRICS,
    config_columns,
    following_keys,
)
from replay_cli.reporting.results import RESULTS_FILE, write_json_atomic

SUMMARY_NAME = "sweep_summary"
VALIDATION_COLUMNS = tuple(f"validation.{name}" for name in VALIDATION_METRICS)
COLUMNS = (
    "job",
    "overrides",
    FOLLOWS,
    "status",
    *HEADLINE_METRICS,
    *VALIDATION_COLUMNS,
    "experiences_done",
    "error",
    "run_dir",
)


def _job_number(job_dir: Path) -> tuple[int, str]:
    return (int(job_dir.name), "") if job_dir.name.isdigit() else (1 << 30, job_dir.name)


def job_row(job_dir: Path) -> dict[str, Any]:
    import yaml

    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    row: dict[str, Any] = {"job": job_dir.name, "overrides": " ".join(overrides), "run_dir": str(job_dir)}
    results_path = job_dir / RESULTS_FILE
    if not results_path.is_file():
        failed = {"status": "failed", "error": "the job wrote no results.json"}
        return {**row, **failed, **config_columns(*_composed_config(job_dir))}
    results = json.loads(results_path.read_text())
    status = results.get("status", "failed")
    if status == "running":  # the job is gone (killed, preempted) and never said how it ended
        status = "failed"
    row.update({key: results.get(key) for key in HEADLINE_METRICS})
    validation = results.get("validation") or {}
    row.update({f"validation.{key}": validation.get(key) for key in VALIDATION_METRICS})
    row.update(status=status, error=results.get("error"), experiences_done=results.get("experiences_done"))
    return {**row, **config_columns(results.get("config") or {}, results.get(FOLLOWS) or {})}


def _composed_config(job_dir: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The config Hydra saved for a job that left no results (resolved where it can be) and the keys
    that follow another in it."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        config = OmegaConf.load(job_dir / ".hydra" / "config.yaml")
    except (OSError, OmegaConfBaseException):
        return {}, {}
    unresolved: dict[str, Any] = OmegaConf.to_container(config, resolve=False)  # type: ignore[assignment]
    try:
        return OmegaConf.to_container(config, resolve=True), following_keys(unresolved)  # type: ignore[return-value]
    except OmegaConfBaseException:
        return unresolved, following_keys(unresolved)


def summarize(sweep_dir: Path) -> list[dict[str, Any]]:
    job_dirs = sorted(
        (p.parent.parent for p in Path(sweep_dir).glob("*/.hydra/overrides.yaml")), key=_job_number
    )
    return [job_row(job_dir) for job_dir in job_dirs]


def write_summary(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """The JSON rows as they are; the CSV with the fixed columns first, then every job's config keys
    (lists and dicts as JSON text)."""
    write_json_atomic(Path(sweep_dir) / f"{SUMMARY_NAME}.json", rows)
    config_keys = [key for key in dict.fromkeys(k for row in rows for k in row) if key not in COLUMNS]
    with open(Path(sweep_dir) / f"{SUMMARY_NAME}.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, *config_keys])
        writer.writeheader()
        writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def read_statuses(sweep_dir: Path) -> list[str] | None:
    """Each job's status from the sweep's summary (None when the sweep wrote none): the command's exit
    status follows from them, wherever the launcher ran the jobs."""
    path = Path(sweep_dir) / f"{SUMMARY_NAME}.json"
    return [row["status"] for row in json.loads(path.read_text())] if path.is_file() else None


def offline_wandb_runs(sweep_dir: Path) -> list[Path]:
    return sorted(Path(sweep_dir).glob("*/wandb/offline-run-*"))


class SweepSummaryCallback(Callback):
    """Hydra callback writing the sweep summary once every job of a multirun has returned."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = summarize(sweep_dir)
        write_summary(sweep_dir, rows)
        done = sum(row["status"] == "completed" for row in rows)
        print(f"sweep: {done}/{len(rows)} jobs completed; summary in {sweep_dir / (SUMMARY_NAME + '.csv')}")
        if offline_wandb_runs(sweep_dir):  # one hint for the whole sweep, not one per job
            pattern = f"{sweep_dir}/*/wandb/offline-run-*"
            print(f"W&B offline: upload this sweep's runs later with `wandb sync {pattern}`", file=sys.stderr)
