"""``replay-run resume=<run dir>``: continue a run from its last checkpoint, with its own config.

The resumed run writes into its original directory (results.json, checkpoint, W&B files); Hydra's
own files of the resuming command go to ``<run dir>/.hydra/resume`` so the run's config stays.
A job that finds an unfinished checkpoint in its own directory (a requeued SLURM job) resumes too.

A run directory holds the records of the run that produced its results: before anything runs in an
existing directory, the command's config, the directory's config and results.json and the
checkpoint must describe the same run; otherwise the command is refused and nothing is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli.errors import UsageError
from replay_cli.keys import CONFIG_GROUPS as GROUPS
from replay_cli.keys import flatten, is_presentation
from replay_cli.reporting.results import RESULTS_FILE
from replay_cli.training.checkpoint import CHECKPOINT_FILE, checkpoint_path, load_checkpoint


def resume_dir(argv: list[str]) -> Path | None:
    """The directory of ``resume=<dir>`` (the last one typed), checked before Hydra creates anything."""
    values = [arg.split("=", 1)[1] for arg in argv if arg.startswith("resume=")]
    if not values or values[-1] in ("", "null"):
        return None
    run_dir = Path(values[-1]).expanduser()
    if not run_dir.is_dir():
        raise UsageError(f"resume={values[-1]}: no such run directory")
    if not checkpoint_path(run_dir).is_file():
        raise UsageError(f"resume={values[-1]}: no checkpoint.pt there (is it a replay-run run directory?)")
    return run_dir


def has_checkpoint(run_dir: Path) -> bool:
    return checkpoint_path(run_dir).is_file()


def holds_a_run(run_dir: Path) -> bool:
    """True when ``run_dir`` already has the records of a run (its config, results or checkpoint)."""
    run_dir = Path(run_dir)
    return any((run_dir / name).is_file() for name in (CHECKPOINT_FILE, RESULTS_FILE, ".hydra/config.yaml"))


def differing_keys(run: dict[str, Any], other: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, value in ``run``, value in ``other``) for every key that changes what a run computes."""
    ours, theirs = flatten(run), flatten(other)
    keys = sorted(k for k in ours.keys() | theirs.keys() if not is_presentation(k))
    return [(k, ours.get(k), theirs.get(k)) for k in keys if ours.get(k) != theirs.get(k)]


def _shown(differences: list[tuple[str, Any, Any]], here: str, there: str, limit: int = 4) -> str:
    text = "; ".join(f"{k}={_value(a)} {here}, {_value(b)} {there}" for k, a, b in differences[:limit])
    return text + (f"; and {len(differences) - limit} more" if len(differences) > limit else "")


def _value(value: Any) -> str:
    return "null" if value is None else value if isinstance(value, str) else json.dumps(value)


def saved_config(run_dir: Path) -> dict[str, Any] | None:
    """The resolved config of the run recorded in ``run_dir``: results.json's, else Hydra's copy."""
    results = _results(run_dir)
    if results is not None and isinstance(results.get("config"), dict):
        return results["config"]
    hydra_copy = Path(run_dir) / ".hydra" / "config.yaml"
    if hydra_copy.is_file():
        return OmegaConf.to_container(OmegaConf.load(hydra_copy), resolve=True)  # type: ignore[return-value]
    return None


def _results(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RESULTS_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        raise UsageError(f"{path} is not valid JSON; the directory's records are damaged") from None


def check_same_run(run_dir: Path, command_config: dict[str, Any]) -> None:
    """Refuse a command whose config differs from the run already recorded in ``run_dir``."""
    saved = saved_config(run_dir)
    if saved is None:
        return
    differences = differing_keys(saved, command_config)
    if differences:
        raise UsageError(
            f"{run_dir} holds a run with another config ({_shown(differences, 'there', 'here')}); "
            "its records stay as they are: choose another hydra.run.dir"
        )


def check_checkpoint_belongs(run_dir: Path, state: dict[str, Any]) -> None:
    """The checkpoint, results.json and the directory's config must describe the same run (config,
    seed, finished steps) before a resume may write anything; ``UsageError`` otherwise."""
    where = checkpoint_path(run_dir)
    results = _results(run_dir)
    recorded = results.get("config") if results else saved_config(run_dir)
    if isinstance(recorded, dict):
        differences = differing_keys(state["config"], recorded)
        if differences:
            shown = _shown(differences, "in the checkpoint", "in the directory")
            raise UsageError(f"{where} belongs to another run ({shown}); nothing was resumed")
    if results is None or "accuracy_matrix" not in results:
        return
    saved_rows, rows = state["results"]["accuracy_matrix"], results["accuracy_matrix"]
    # results.json follows the checkpoint: one step behind after a SIGKILL between the two writes (one
    # ahead in directories of earlier versions, which wrote it first); never further, never different
    shared = min(len(rows), len(saved_rows))
    if rows[:shared] != saved_rows[:shared] or abs(len(rows) - len(saved_rows)) > 1:
        raise UsageError(
            f"{where} belongs to another run: it holds {len(saved_rows)} finished steps, "
            f"{run_dir / RESULTS_FILE} {len(rows)} (different accuracies); nothing was resumed"
        )


def check_resume(cfg: DictConfig, run_dir: Path, overrides: list[str], typed: str) -> None:
    """Before Hydra writes anything: the checkpoint is this directory's, and no override changes what the
    run computes. ``typed`` is how the user named the directory (``resume=D`` or ``hydra.run.dir=D``)."""
    state = load_checkpoint(run_dir)
    check_checkpoint_belongs(run_dir, state)
    saved = OmegaConf.create(state["config"])
    for override in overrides:
        key, _, _ = override.lstrip("+~").partition("=")
        if key == "instruments" and bool(cfg.get("instruments")) != bool(saved.get("instruments")):
            raise UsageError(
                f"{typed}: {override} would record cost and diagnostics for only some of the run's "
                f"steps (the run has instruments={str(bool(saved.get('instruments'))).lower()}); "
                "a resumed run keeps its own instruments"
            )
        if is_presentation(key) or key.startswith("hydra."):
            continue
        now = cfg[key].get("name") if key in GROUPS else OmegaConf.select(cfg, key, default=None)
        before = saved[key].get("name") if key in GROUPS else OmegaConf.select(saved, key, default=None)
        if now != before:
            raise UsageError(
                f"{typed}: {override} would change the experiment (the run has {key}={before}); "
                "a resumed run keeps its own config"
            )


def prepare_resume(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> tuple[DictConfig, dict[str, Any]]:
    """The saved run's config, with what this command says about presentation and logging, and its
    checkpoint: ``print_config``, ``progress``, ``num_threads`` as composed now, ``fast_path`` and
    ``logger`` (the group or any ``logger.*`` key) where this command overrides them."""
    state = load_checkpoint(run_dir)
    saved = OmegaConf.create(state["config"])
    for key in ("print_config", "progress", "num_threads"):
        if key in cfg:
            saved[key] = cfg[key]
    keys = [override.lstrip("+~").partition("=")[0] for override in overrides]
    if "fast_path" in keys:  # same results either way; a checkpoint resumes on either path
        saved.fast_path = cfg.fast_path
    for key in keys:
        if key == "logger" or key.startswith("logger."):
            logger = OmegaConf.to_container(cfg.logger, resolve=True) if cfg.get("logger") else None
            saved.logger = logger
            break
    saved.resume = None
    return saved, state


def steps_done(state: dict[str, Any]) -> tuple[int, int]:
    results = state["results"]
    return len(results["accuracy_matrix"]), results["n_steps"]
