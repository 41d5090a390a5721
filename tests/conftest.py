"""Shared fixtures: compose configs in-process (fast) or run the real console script (end to end)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from replay_cli.cli import config_dir

REPLAY_RUN = str(Path(sys.executable).parent / "replay-run")


def compose_config(*overrides: str) -> DictConfig:
    """The config as replay-run composes it; quiet, and without W&B unless a test asks for a logger."""
    quiet = ["print_config=false", "progress=false"]
    if not any(o.startswith("logger") for o in overrides):
        quiet.append("logger=none")
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose("config", overrides=[*quiet, *overrides])


@pytest.fixture
def run_in_process(tmp_path):
    """Run an experiment in this process; returns the parsed results.json."""
    from replay_cli.experiment import run_experiment
    from replay_cli.validation import validate

    def run(*overrides: str, run_dir: Path | None = None) -> dict:
        cfg = compose_config(*overrides)
        validate(cfg)
        target = run_dir or tmp_path / "run"
        run_experiment(cfg, target)
        return json.loads((target / "results.json").read_text())

    return run


def replay_run(
    *args: str, cwd: Path, env: dict | None = None, unset: tuple[str, ...] = (), timeout: int = 300
) -> subprocess.CompletedProcess:
    """The installed ``replay-run`` console script, as a user types it (W&B offline unless unset)."""
    dropped = {"HYDRA_FULL_ERROR", *unset}
    full_env = {k: v for k, v in os.environ.items() if k not in dropped}
    if "WANDB_MODE" not in unset:
        full_env["WANDB_MODE"] = "offline"
    full_env.update(env or {})
    return subprocess.run(
        [REPLAY_RUN, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )


def single_run_dir(root: Path) -> Path:
    runs = sorted((root / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 1, runs
    return runs[0]
