"""One self-contained HTML file: the table and every figure (base64 PNG) inline, no scripts, no
network, so it opens from disk, attaches to an e-mail and survives the sweep directory moving."""

from __future__ import annotations

import base64
import datetime
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from replay_cli.compare import tables
from replay_cli.compare.comparison import Comparison
from replay_cli.compare.plots import FigureFile

REPORT_FILE = "report.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
th { background: #f2f2f2; }
td { font-variant-numeric: tabular-nums; }
figure { margin: 2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.meta { color: #555; }
"""


def write_report(comparison: Comparison, figures: Sequence[FigureFile], path: Path) -> Path:
    """Write the report to ``path`` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(comparison, figures), encoding="utf-8")
    return path


def render_html(comparison: Comparison, figures: Sequence[FigureFile]) -> str:
    sections = [
        f'<h1>replay-compare</h1>\n<p class="meta">{_e(tables.title(comparison))}</p>',
        _meta(comparison),
        tables.to_html(comparison),
        _excluded(comparison),
        *(_figure(figure) for figure in figures),
        _galleries(comparison),
    ]
    body = "\n".join(section for section in sections if section)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>replay-compare: {_e(', '.join(comparison.benchmarks))}</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _e(text: object) -> str:
    return html.escape(str(text))


def _meta(comparison: Comparison) -> str:
    items = {
        "compared": " ".join(str(root) for root in comparison.roots),
        "swept keys": ", ".join(comparison.swept) or "none",
        "grouped by": ", ".join(comparison.key_columns) or "nothing (all runs in one group)",
        "notes": "; ".join(comparison.notes()) or "none",
        "test": f"{comparison.test} ({tables.MARKER}: p < {comparison.alpha:g}), baseline: "
        + (", ".join(f"{k}={v}" for k, v in (comparison.baseline or {}).items()) or "best at each mem_size"),
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    rows = "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in items.items())
    return f'<ul class="meta">{rows}</ul>'


def _excluded(comparison: Comparison) -> str:
    runs = comparison.excluded_runs
    if not runs:
        return ""
    import pandas as pd

    body = pd.DataFrame(
        [[run.status, str(run.path), run.detail()] for run in runs], columns=["status", "run", "detail"]
    )
    return "<h2>Excluded from the means</h2>\n" + body.to_html(index=False, table_id="excluded", border=0)


def _figure(figure: FigureFile) -> str:
    caption = f"{_e(figure.title)} (<code>{_e(figure.pdf.name)}</code> beside this report)"
    return _inline_png(figure.name, figure.title, figure.png, caption)


def _inline_png(anchor: str, alt: str, png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (
        f'<figure id="{_e(anchor)}">\n<img alt="{_e(alt)}" src="data:image/png;base64,{data}">\n'
        f"<figcaption>{caption}</figcaption>\n</figure>"
    )


def _galleries(comparison: Comparison) -> str:
    """The buffer after the last step of each group's first completed run that drew one (one row
    of samples per class, the class on the left): what each method keeps."""
    shown = []
    for group in comparison.groups:
        gallery = next((path for run in group.completed if (path := _last_gallery(run))), None)
        if gallery is not None:
            caption = f"{_e(group.label)}: <code>{_e(gallery)}</code>"
            shown.append(_inline_png(f"gallery-{group.label}", f"buffer of {group.label}", gallery, caption))
    return "<h2>Buffer galleries (after the last step)</h2>\n" + "\n".join(shown) if shown else ""


def _last_gallery(run: Any) -> Path | None:
    steps = (run.results.get("diagnostics") or {}).get("per_step") or []
    name = steps[-1].get("gallery") if steps else None
    path = Path(run.path) / name if name else None
    return path if path is not None and path.is_file() else None
