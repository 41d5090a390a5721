"""``replay-compare --wandb``: the comparison as one W&B run in the sweep's group, so the dashboard
shows the aggregated table and the figures beside the runs they summarise."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from replay_cli.compare.comparison import Comparison
from replay_cli.compare.files import Written
from replay_cli.compare.tables import selection_json
from replay_cli.reporting.wandb_logger import resolve_mode, wandb_group_for


def upload(
    comparison: Comparison,
    written: Written,
    project: str = "replay-cli",
    entity: str | None = None,
    group: str | None = None,
    mode: str = "auto",
) -> str:
    """Log the table and figures; returns the W&B run's name. Same modes as replay-run's logger."""
    import wandb

    common = Path(os.path.commonpath([str(run.path) for run in comparison.runs]))
    group = group or wandb_group_for(common)
    mode = resolve_mode(mode)
    rows = comparison.rows()
    columns = list(rows[0]) if rows else []
    run = wandb.init(
        project=project,
        entity=entity,
        group=group,
        job_type="compare",
        name=f"compare-{group.replace('/', '-')}",
        mode=mode,
        dir=str(written.out_dir),
        config={
            "swept": comparison.swept,
            "by": comparison.by,
            "kept_apart": comparison.kept_apart,
            "metric": comparison.metric,
            "test": comparison.test,
            "alpha": comparison.alpha,
            "baseline": comparison.baseline,
            "selection": selection_json(comparison),  # --select-by: metric, within, final runs
        },
        reinit="finish_previous",
        settings=wandb.Settings(silent=True, console="off"),
    )
    run.log(
        {
            "comparison": wandb.Table(columns=columns, data=[[row[c] for c in columns] for row in rows]),
            **{f"figures/{figure.name}": wandb.Image(str(figure.png)) for figure in written.figures},
        }
    )
    run.summary.update({"runs": len(comparison.runs), "groups": len(rows)})
    if mode == "offline":
        print(
            f"W&B offline: upload the comparison later with `wandb sync {run.dir.removesuffix('/files')}`",
            file=sys.stderr,
        )
    run.finish()
    return run.name
