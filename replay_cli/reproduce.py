"""Run ``experiment`` presets over several seeds and compare the measured metric with the target,
source and tolerance each preset carries in its ``reproduce`` block."""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from replay_cli.errors import EXIT_RUN_FAILED, reported_as_one_line


@dataclass
class Row:
    preset: str
    metric: str
    target: float | None  # None: the preset's source gives settings but no figure to compare with
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
        """Within tolerance of the target; a row without a target cannot fail."""
        return self.target is None or abs(self.mean - self.target) <= self.tolerance

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "no target"
        return "[green]pass[/green]" if self.passed else "[red]FAIL[/red]"

    @property
    def target_text(self) -> str:
        return "none" if self.target is None else f"{self.target:.4f} ± {self.tolerance:.4f}"


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
    """Run ``preset`` once per seed (the preset's own seeds when ``seeds`` is None); the row of its
    ``metric`` (the first of :func:`reproduce_rows`)."""
    return reproduce_rows(preset, seeds, overrides, out_dir)[0]


def reproduce_rows(preset: str, seeds: list[int] | None, overrides: list[str], out_dir: Path) -> list[Row]:
    """Run ``preset`` once per seed; one row for its ``metric`` and one for each metric of its
    optional ``also`` block (``{metric: target}``, same tolerance: e.g. the task-IL figure a paper
    reports beside the class-IL one, measured on the same runs)."""
    from replay_cli.config.validation import validate
    from replay_cli.training.experiment import run_experiment

    rows = preset_rows(preset, overrides)
    spec = compose_preset(preset, 0, overrides).reproduce
    for seed in seeds if seeds is not None else list(spec.seeds):
        cfg = compose_preset(preset, seed, overrides)
        validate(cfg)
        summary = run_experiment(cfg, out_dir / preset / f"seed{seed}").summary()
        for row in rows:
            row.values.append(summary[row.metric])
    return rows


def preset_rows(preset: str, overrides: list[str] | None = None) -> list[Row]:
    """The rows ``preset``'s ``reproduce`` block asks for, with no value measured yet: its
    ``metric`` first, then each of ``also``."""
    return spec_rows(preset, compose_preset(preset, 0, overrides or []).reproduce)


def spec_rows(preset: str, spec: DictConfig) -> list[Row]:
    """The rows of a composed ``reproduce`` block (see :func:`preset_rows`)."""
    targets = {spec.metric: spec.target, **dict(spec.get("also") or {})}
    return [
        Row(preset, metric, target, spec.tolerance, [], str(spec.source))
        for metric, target in targets.items()
    ]


def preset_names() -> list[str]:
    """Every preset under conf/experiment (files starting with ``_`` are shared parts, not presets)."""
    from replay_cli.cli import config_dir

    return sorted(p.stem for p in (Path(config_dir()) / "experiment").glob("[!_]*.yaml"))


def print_presets(names: list[str]) -> None:
    """The presets' reproduction targets without running anything: source, metric(s), target(s) and
    whether the target was checked against the source's text (``verified``)."""
    from rich.table import Table

    table = Table(title="presets: reproduction targets")
    for column in ("preset", "metric", "target", "verified", "source"):
        table.add_column(column)
    for name in names:
        spec = compose_preset(name, 0, []).reproduce
        rows = spec_rows(name, spec)
        verified = "yes" if spec.get("verified", False) else "no"
        metrics, targets = "\n".join(r.metric for r in rows), "\n".join(r.target_text for r in rows)
        table.add_row(name, metrics, targets, verified, rows[0].source)
    print_whole(table)


def print_whole(table: Any) -> None:
    """Print a rich table never cut at the terminal's (or a pipe's 80) columns: a preset name and a
    source must stay whole."""
    from rich.console import Console
    from rich.measure import Measurement

    from replay_cli.reporting.console import console

    needed = Measurement.get(console, console.options.update(width=1000), table).maximum
    Console(width=max(console.width, needed), highlight=False).print(table)


def print_table(rows: list[Row]) -> None:
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
            row.target_text,
            row.verdict,
        )
    print_whole(table)
    for row in rows:
        console.print(f"{row.preset}: {row.source}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "presets",
        nargs="*",
        help="names under conf/experiment; KEY=VALUE arguments are overrides for every run",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the presets (all, or those named) with their targets; run none",
    )
    parser.add_argument("--seeds", type=int, nargs="+", help="instead of the preset's own seeds")
    parser.add_argument("--out", type=Path, default=Path("outputs/reproduce"), help="where the runs go")
    args = parser.parse_intermixed_args(argv)
    presets = [p for p in args.presets if "=" not in p]
    overrides = [p for p in args.presets if "=" in p]
    with reported_as_one_line("reproduce.py"):  # bad input: one line, exit 2, as replay-run
        if args.list:
            print_presets(presets or preset_names())
            return 0
        if not presets:
            parser.error("name at least one preset (or --list)")
        rows = [row for preset in presets for row in reproduce_rows(preset, args.seeds, overrides, args.out)]
        print_table(rows)
    return 0 if all(row.passed for row in rows) else EXIT_RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
