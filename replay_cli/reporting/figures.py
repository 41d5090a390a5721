"""Matplotlib figures of one run's results, shared by every view that shows pictures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def draw_accuracy_matrix(axes: Any, matrix: Any, fontsize: float | None = None) -> Any:
    """``A[i][j]`` as an image on ``axes`` (rows: training steps, columns: test experiences), each cell
    labelled while there are few enough columns to read them; returns the image for a colorbar."""
    n_rows, n_cols = len(matrix), len(matrix[0])
    image = axes.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    if n_cols <= 8:
        for i in range(n_rows):
            for j in range(n_cols):
                value = float(matrix[i][j])
                color = "white" if value < 0.6 else "black"
                axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=fontsize, color=color)
    axes.set_xticks(range(n_cols), [str(j) for j in range(n_cols)])
    axes.set_yticks(range(n_rows), [str(i) for i in range(n_rows)])
    return image


def draw_stacked_bars(axes: Any, steps: Sequence[int], stacks: dict[str, Sequence[float]]) -> None:
    """One bar per step, stacked in the order of ``stacks`` (label -> height at each step)."""
    import matplotlib

    colors = matplotlib.colormaps["tab20"]
    bottom = [0.0] * len(steps)
    for index, (label, heights) in enumerate(stacks.items()):
        axes.bar(steps, heights, bottom=bottom, label=label, color=colors(index % 20))
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axes.set_xticks(list(steps), [str(s) for s in steps])


def accuracy_heatmap(matrix: Sequence[Sequence[float]], title: str = "accuracy matrix") -> Any:
    """One run's accuracy matrix as a figure."""
    plt = _pyplot()
    n_rows, n_cols = len(matrix), len(matrix[0])
    figure, axes = plt.subplots(figsize=(1.0 + 0.8 * n_cols, 1.0 + 0.7 * n_rows))
    image = draw_accuracy_matrix(axes, matrix)
    axes.set(xlabel="test experience j", ylabel="after training step i", title=title)
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
    steps = list(range(len(compositions)))
    draw_stacked_bars(
        axes, steps, {group: [entry[by].get(group, 0) for entry in compositions] for group in groups}
    )
    axes.set(xlabel="after training step", ylabel="samples in buffer", title=title)
    if groups:
        axes.legend(
            title=by.replace("per_", ""), fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left"
        )
    figure.tight_layout()
    return figure
