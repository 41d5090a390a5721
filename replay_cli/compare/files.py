"""What replay-compare leaves on disk next to the compared runs: the table as CSV, JSON and markdown,
the figures, and the HTML report. A W&B uploader reuses :func:`write_outputs` and logs what it returns."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from replay_cli.compare import tables
from replay_cli.compare.comparison import Comparison
from replay_cli.compare.plots import FigureFile, write_figures
from replay_cli.compare.report import REPORT_FILE, write_report

TABLE_FILES = {"csv": "comparison.csv", "json": "comparison.json", "markdown": "comparison.md"}


@dataclass
class Written:
    out_dir: Path
    tables: dict[str, Path] = field(default_factory=dict)  # format -> file
    figures: list[FigureFile] = field(default_factory=list)
    report: Path | None = None

    def paths(self) -> list[Path]:
        figures = [path for figure in self.figures for path in (figure.png, figure.pdf)]
        return [*self.tables.values(), *figures, *([self.report] if self.report else [])]


def write_outputs(comparison: Comparison, out_dir: str | os.PathLike[str], figures: bool = True) -> Written:
    """Write the table files into ``out_dir`` (any path-like, created when missing) and, unless
    ``figures`` is false, the figures and the HTML report."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = Written(out_dir)
    for fmt, name in TABLE_FILES.items():
        written.tables[fmt] = out_dir / name
        written.tables[fmt].write_text(tables.render(comparison, fmt), encoding="utf-8")
    if figures:
        written.figures = write_figures(comparison, out_dir)
        written.report = write_report(comparison, written.figures, out_dir / REPORT_FILE)
    return written
