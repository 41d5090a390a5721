"""Weights & Biases as a view of the run's results, on wandb's public API.

Avalanche 0.6's own ``WandBLogger`` calls ``wandb.util.generate_id`` and ``wandb.viz``, which current
wandb no longer has. This logger also never breaks a run: any W&B failure warns once, stops W&B
logging and leaves results.json and the exit code to training alone.
"""

from __future__ import annotations

import contextlib
import netrc
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from replay_cli.keys import HEADLINE_METRICS, config_columns

MODES = ("auto", "online", "offline", "disabled")


def has_api_key() -> bool:
    """A W&B key in the environment or in ~/.netrc (where ``wandb login`` puts it); no network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        hosts = netrc.netrc().hosts
    except (OSError, netrc.NetrcParseError):
        return False
    return any("wandb" in host for host in hosts)


def resolve_mode(mode: str) -> str:
    """``auto``: WANDB_MODE when set, else online with a key, else offline (sync later)."""
    if mode != "auto":
        return mode
    return os.environ.get("WANDB_MODE") or ("online" if has_api_key() else "offline")


def wandb_group_for(sweep_dir: Path) -> str:
    """A sweep's W&B group: its directory below ``outputs/`` (``multirun/<date>/<time>``), so the jobs
    and the comparison of one sweep share it wherever the command ran from."""
    parts = Path(sweep_dir).parts
    below = parts[len(parts) - parts[::-1].index("outputs") :] if "outputs" in parts else parts[-3:]
    return "/".join(below)


def sweep_group() -> str | None:
    """In a Hydra multirun, the sweep directory names the group, so one sweep's jobs sit together."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return wandb_group_for(Path(HydraConfig.get().sweep.dir))


def run_name(config: dict[str, Any]) -> str:
    """Readable and unique within a sweep cell: the strategy (left out for plain ``replay``), the
    storage policy and memory size where the strategy reads them, the seed: ``class_balanced-m500-s0``,
    ``er_ace-m200-s1``, ``rar-reservoir-m500-s0``, ``naive-s1``."""
    strategy, uses = config["strategy"], config["strategy"]["uses"]
    parts = [] if strategy["name"] == "replay" else [strategy["name"]]
    if "storage" in uses:
        parts.append(config["storage"]["name"])
    if "mem_size" in uses:
        parts.append(f"m{config['mem_size']}")
    return "-".join([*parts, f"s{config['seed']}"])


class WandbLogger:
    """A results sink: one W&B run per replay-run job, one history row per training experience."""

    def __init__(
        self,
        run_dir: Path,
        run_config: dict[str, Any],
        project: str = "replay-cli",
        entity: str | None = None,
        group: str | None = None,
        job_type: str = "train",
        tags: Sequence[str] = (),
        name: str | None = None,
        mode: str = "auto",
        dir: str | None = None,
        init_timeout: float = 30,
        resume_id: str | None = None,
        follows: dict[str, str] | None = None,
    ):
        self.run: Any = None
        self.follows = follows or {}
        self.resume_id = resume_id
        self.logged: set[int] = set()  # training steps this W&B run already has
        self.mode = resolve_mode(mode)
        self.directory = Path(dir) if dir else Path(run_dir)
        self.run_dir = Path(run_dir)
        self._call(
            "start",
            lambda: self._start(run_config, project, entity, group, job_type, list(tags), name, init_timeout),
        )

    def _start(
        self,
        config: dict[str, Any],
        project: str,
        entity: str | None,
        group: str | None,
        job_type: str,
        tags: list[str],
        name: str | None,
        init_timeout: float,
    ) -> None:
        import wandb

        self.directory.mkdir(parents=True, exist_ok=True)
        automatic_tags = [config[g]["name"] for g in ("benchmark", "strategy", "model")]
        if "storage" in config["strategy"]["uses"]:
            automatic_tags.append(config["storage"]["name"])
        self.run = wandb.init(
            project=project,
            entity=entity,
            group=group or sweep_group(),
            job_type=job_type,
            tags=list(dict.fromkeys(automatic_tags + tags)),
            name=name or run_name(config),
            mode=self.mode,
            dir=str(self.directory),
            config=config_columns(config, self.follows),
            reinit="finish_previous",
            id=self.resume_id,
            resume="allow" if self.resume_id else None,
            settings=wandb.Settings(init_timeout=init_timeout, silent=True, console="off"),
        )
        self.run.define_metric("experience")
        self.run.define_metric("*", step_metric="experience")
        if self.resume_id:
            self.logged = self._steps_already_logged()
        if self.mode == "offline" and sweep_group() is None:  # a sweep prints one hint at its end
            print(
                f"W&B offline: upload this run later with `wandb sync {self.run.dir.removesuffix('/files')}`",
                file=sys.stderr,
            )

    @property
    def run_id(self) -> str | None:
        """Saved in checkpoints, so a resumed run continues the same W&B run."""
        return self.run.id if self.run is not None else self.resume_id

    def experience_done(self, results: Any) -> None:
        self._call("log", lambda: self._log_step(results))

    def _steps_already_logged(self) -> set[int]:
        """What the earlier part of a resumed run recorded: read back from its offline files, or, online,
        every step up to the last one the server has."""
        from replay_cli.reporting.wandb_records import logged_experiences

        if self.mode == "offline":
            return logged_experiences(self.directory / "wandb", self.resume_id)
        summary = self.run.summary
        last = summary.get("experience") if summary.get("average_accuracy") is not None else None
        return set(range(int(last) + 1)) if last is not None else set()

    def _log_step(self, results: Any) -> None:
        """Log every finished step this W&B run does not have yet: normally just the latest; after a
        resume also those a killed process never flushed, and never one twice."""
        for step in range(len(results.accuracy_matrix)):
            if step not in self.logged:
                self._log_one_step(results, step)
                self.logged.add(step)

    def _log_one_step(self, results: Any, step: int) -> None:
        import wandb

        from replay_cli.reporting.figures import buffer_stacked_bars

        compositions = results.buffer_composition[: step + 1]
        rows = [
            [entry["experience"], int(label), count]
            for entry in compositions
            for label, count in entry["per_class"].items()
        ]
        figure = buffer_stacked_bars(compositions)
        self.run.log(
            {
                **results.step_metrics(step),
                "buffer/composition": wandb.Table(columns=["experience", "class", "count"], data=rows),
                "buffer/composition_chart": wandb.Image(figure),
                **gallery_image(results, step, self.run_dir),
            },
            step=step,  # W&B's step is the training step: it keeps increasing across resumed segments
        )
        _close(figure)

    def run_ended(self, results: Any) -> None:
        self._call("finish", lambda: self._finish(results))

    def _finish(self, results: Any) -> None:
        import wandb

        from replay_cli.errors import exit_status_of
        from replay_cli.reporting.class_views import wandb_final_views
        from replay_cli.reporting.figures import accuracy_heatmap

        self._log_step(results)  # the end-of-run row joins a step whose metrics this run has
        if results.accuracy_matrix:
            columns = ["after_step"] + [f"exp_{j}" for j in range(results.n_experiences)]
            table = [[i, *row] for i, row in enumerate(results.accuracy_matrix)]
            figure = accuracy_heatmap(results.accuracy_matrix)
            self.run.log(
                {
                    "experience": len(results.accuracy_matrix) - 1,
                    "accuracy_matrix": wandb.Table(columns=columns, data=table),
                    "accuracy_matrix_heatmap": wandb.Image(figure),
                    **wandb_final_views(results),
                    **_anytime_table(results),
                },
                step=len(results.accuracy_matrix) - 1,  # joins the last step's row
                commit=True,  # written now, so the summary set below is not replaced by the row's keys
            )
            _close(figure)
        # after the last row is committed: its keys (the step's train_seconds) would replace them
        summary = results.summary()
        for key in HEADLINE_METRICS:
            if summary.get(key) is not None:
                self.run.summary[key] = summary[key]
        for key, value in (results.validation_summary() or {}).items():
            if value is not None:
                self.run.summary[f"val/{key}"] = value
        config = results.config
        self.run.summary.update(
            {"mem_size": config["mem_size"], "storage": config["storage"]["name"], "status": results.status}
            | {"task_il_evaluation": results.task_il_evaluation}
        )
        if results.status == "interrupted":
            self.run.mark_preempting()  # W&B shows it as preempted, to be resumed
        self.run.finish(exit_code=exit_status_of(results.status))
        self.run = None

    def _call(self, what: str, action: Callable[[], None]) -> None:
        """Run a W&B action; the first failure warns once and turns W&B logging off for this run."""
        if what != "start" and self.run is None:
            return
        try:
            action()
        except Exception as error:  # W&B must never break a run
            from replay_cli.errors import one_line

            print(
                f"replay-run: warning: W&B {what} failed ({type(error).__name__}: {one_line(error)}); "
                "W&B logging is off for this run, local results are unaffected",
                file=sys.stderr,
            )
            self._abandon()

    def _abandon(self) -> None:
        run, self.run = self.run, None
        if run is not None:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)


def gallery_image(results: Any, step: int, run_dir: Path) -> dict[str, Any]:
    """``diagnostics/buffer_gallery``: the step's buffer gallery PNG, where the run wrote one."""
    import wandb

    records = getattr(results, "diagnostics", [])
    name = records[step].get("gallery") if step < len(records) else None
    if not name or not (run_dir / name).is_file():
        return {}
    return {"diagnostics/buffer_gallery": wandb.Image(str(run_dir / name))}


def _anytime_table(results: Any) -> dict[str, Any]:
    """The online protocol's anytime curve (stream accuracy against samples seen), when recorded."""
    import wandb

    finished = getattr(results, "finished_anytime", None)
    points = finished() if finished else None
    if not points:
        return {}
    data = [[p["samples_seen"], p["stream_accuracy"]] for p in points]
    return {"anytime_accuracy": wandb.Table(columns=["samples_seen", "stream_accuracy"], data=data)}


def _close(figure: Any) -> None:
    import matplotlib.pyplot as plt

    plt.close(figure)
