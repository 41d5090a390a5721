"""``replay-run resume=<run dir>``: continue a run from its last checkpoint, with its own config.

The resumed run writes into its original directory (results.json, checkpoint, W&B files); Hydra's
own files of the resuming command go to ``<run dir>/.hydra/resume`` so the run's config stays.
A job that finds an unfinished checkpoint in its own directory (a requeued SLURM job) resumes too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli.config.keys import CONFIG_GROUPS as GROUPS
from replay_cli.config.keys import PRESENTATION_KEYS
from replay_cli.errors import UsageError
from replay_cli.training.checkpoint import checkpoint_path, load_checkpoint


def resume_argv(argv: list[str]) -> list[str]:
    """Point Hydra at the run directory being resumed; checked before Hydra creates anything."""
    values = [arg.split("=", 1)[1] for arg in argv if arg.startswith("resume=")]
    if not values or values[-1] in ("", "null"):
        return argv
    run_dir = Path(values[-1]).expanduser()
    if not run_dir.is_dir():
        raise UsageError(f"resume={values[-1]}: no such run directory")
    if not checkpoint_path(run_dir).is_file():
        raise UsageError(f"resume={values[-1]}: no checkpoint.pt there (is it a replay-run run directory?)")
    return [*argv, f"hydra.run.dir='{run_dir}'", "hydra.output_subdir=.hydra/resume"]


def has_checkpoint(run_dir: Path) -> bool:
    return checkpoint_path(run_dir).is_file()


def prepare_resume(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> tuple[DictConfig, dict[str, Any]]:
    """The saved run's config (with this command's presentation keys) and its checkpoint.

    Overrides that would change what the run computes are refused: a resumed run is the same run."""
    state = load_checkpoint(run_dir)
    saved = OmegaConf.create(state["config"])
    for override in overrides:
        key, _, _ = override.lstrip("+~").partition("=")
        if key.startswith(PRESENTATION_KEYS) or key == "logger" or key.startswith("logger."):
            continue
        now = cfg[key].get("name") if key in GROUPS else OmegaConf.select(cfg, key, default=None)
        before = saved[key].get("name") if key in GROUPS else OmegaConf.select(saved, key, default=None)
        if now != before:
            raise UsageError(
                f"resume={run_dir}: {override} would change the experiment (the run has {key}={before}); "
                "a resumed run keeps its own config"
            )
    for key in PRESENTATION_KEYS:
        if key in cfg:
            saved[key] = cfg[key]
    saved.resume = None
    return saved, state


def steps_done(state: dict[str, Any]) -> tuple[int, int]:
    results = state["results"]
    return len(results["accuracy_matrix"]), results["n_steps"]
