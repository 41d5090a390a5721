"""Figures: every one written as PNG and PDF; naive and joint drawn as bounds, not as replay lines."""

from PIL import Image

from replay_cli.compare.comparison import compare
from replay_cli.compare.plots import write_figures
from tests.conftest import fake_run

MATRIX = [[1.0, 0.0], [0.5, 1.0]]


def test_bounds_and_policies(tmp_path):
    for storage in ("reservoir", "class_balanced"):
        for mem_size in (100, 200):
            fake_run(tmp_path / "runs" / f"{storage}-{mem_size}", MATRIX, storage=storage, mem_size=mem_size)
    fake_run(tmp_path / "runs" / "naive", [[1.0, 0.0], [0.0, 1.0]], strategy="naive")
    fake_run(tmp_path / "runs" / "joint", [[0.95, 0.97]], strategy="joint")
    comparison = compare([str(tmp_path / "runs")])
    figures = write_figures(comparison, tmp_path / "figures")
    assert [f.name for f in figures] == [
        "accuracy_vs_mem_size",
        "accuracy_matrices",
        "forgetting_curves",
        "buffer_composition",
    ]
    for figure in figures:
        assert figure.pdf.read_bytes().startswith(b"%PDF")
        with Image.open(figure.png) as image:
            assert image.size[0] >= 300 and image.size[1] >= 200

    from replay_cli.compare import plots

    axes = plots._accuracy_vs_mem_size(comparison).axes[0]
    labels = axes.get_legend_handles_labels()[1]
    assert sorted(labels) == ["class_balanced", "joint (upper bound)", "naive (lower bound)", "reservoir"]
    bounds = sorted(line.get_ydata()[0] for line in axes.lines if line.get_linestyle() == "--")
    assert bounds == [0.5, 0.96]  # naive forgot everything, joint learned both experiences at once
