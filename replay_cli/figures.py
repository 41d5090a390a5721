"""Matplotlib figures of one run's results, shared by every view that shows pictures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def accuracy_heatmap(matrix: Sequence[Sequence[float]], title: str = "accuracy matrix") -> Any:
    """``A[i][j]`` as a heatmap: rows are training steps, columns test experiences."""
    plt = _pyplot()
    n_rows, n_cols = len(matrix), len(matrix[0])
    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * n_cols, 1.0 + 0.7 * n_rows))
    image = axes.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            axes.text(
                j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black"
            )
    axes.set_xticks(range(n_cols), [str(j) for j in range(n_cols)])
    axes.set_yticks(range(n_rows), [str(i) for i in range(n_rows)])
    axes.set_xlabel("test experience j")
    axes.set_ylabel("after training step i")
    axes.set_title(title)
    figure.colorbar(image, ax=axes, fraction=0.05)
    figure.tight_layout()
    return figure


def buffer_stacked_bars(
    compositions: Sequence[dict[str, Any]], by: str = "per_class", title: str = "buffer composition"
) -> Any:
    """One bar per training step, stacked by class (or experience of origin, or task)."""
    plt = _pyplot()
    groups = sorted({key for entry in compositions for key in entry[by]}, key=int)
    figure, axes = plt.subplots(figsize=(1.5 + 0.6 * len(compositions), 3.5))
    bottoms = [0] * len(compositions)
    steps = list(range(len(compositions)))
    colors = plt.get_cmap("tab20")
    for index, group in enumerate(groups):
        counts = [entry[by].get(group, 0) for entry in compositions]
        axes.bar(steps, counts, bottom=bottoms, label=group, color=colors(index % 20))
        bottoms = [b + c for b, c in zip(bottoms, counts, strict=False)]
    axes.set_xticks(steps, [str(s) for s in steps])
    axes.set_xlabel("after training step")
    axes.set_ylabel("samples in buffer")
    axes.set_title(title)
    if groups:
        axes.legend(
            title=by.replace("per_", ""), fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left"
        )
    figure.tight_layout()
    return figure
