"""Run ``experiment`` presets over several seeds and compare the measured metric with the target,
source and tolerance each preset carries in its ``reproduce`` block."""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from replay_cli.errors import EXIT_RUN_FAILED, reported_as_one_line


@dataclass
class Row:
    preset: str
    metric: str
    target: float
    tolerance: float
    values: list[float]
    source: str

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def passed(self) -> bool:
        return abs(self.mean - self.target) <= self.tolerance


def compose_preset(preset: str, seed: int, overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir

    from replay_cli.cli import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(
            "config",
            overrides=[
                f"experiment={preset}",
                f"seed={seed}",
                "print_config=false",
                "progress=false",
                *overrides,
            ],
        )


def reproduce(preset: str, seeds: list[int] | None, overrides: list[str], out_dir: Path) -> Row:
    """Run ``preset`` once per seed (the preset's own seeds when ``seeds`` is None)."""
    from replay_cli.config.validation import validate
    from replay_cli.training.experiment import run_experiment

    spec = compose_preset(preset, 0, overrides).reproduce
    values = []
    for seed in seeds if seeds is not None else list(spec.seeds):
        cfg = compose_preset(preset, seed, overrides)
        validate(cfg)
        results = run_experiment(cfg, out_dir / preset / f"seed{seed}")
        values.append(results.summary()[spec.metric])
    return Row(preset, spec.metric, spec.target, spec.tolerance, values, spec.source)


def print_table(rows: list[Row]) -> None:
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table

    from replay_cli.reporting.console import console

    table = Table(title="reproduction: measured vs target")
    for column in ("preset", "metric", "seeds", "measured", "target", "verdict"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.preset,
            row.metric,
            str(len(row.values)),
            f"{row.mean:.4f} ± {row.std:.4f}",
            f"{row.target:.4f} ± {row.tolerance:.4f}",
            "[green]pass[/green]" if row.passed else "[red]FAIL[/red]",
        )
    # never cut at the terminal's (or a pipe's 80) columns: a preset name must stay whole
    needed = Measurement.get(console, console.options.update(width=1000), table).maximum
    Console(width=max(console.width, needed), highlight=False).print(table)
    for row in rows:
        console.print(f"{row.preset}: {row.source}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "presets",
        nargs="+",
        help="names under conf/experiment; KEY=VALUE arguments are overrides for every run",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="instead of the preset's own seeds")
    parser.add_argument("--out", type=Path, default=Path("outputs/reproduce"), help="where the runs go")
    args = parser.parse_intermixed_args(argv)
    presets = [p for p in args.presets if "=" not in p]
    overrides = [p for p in args.presets if "=" in p]
    with reported_as_one_line("reproduce.py"):  # bad input: one line, exit 2, as replay-run
        rows = [reproduce(preset, args.seeds, overrides, args.out) for preset in presets]
        print_table(rows)
    return 0 if all(row.passed for row in rows) else EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
