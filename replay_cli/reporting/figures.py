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


def save_figure(figure: Any, path: Any) -> None:
    """Write ``figure`` as a PNG and free it."""
    plt = _pyplot()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def confusion_heatmap(
    confusion: Sequence[Sequence[int]], title: str = "confusion matrix, test stream"
) -> Any:
    """Counts of test samples per (true class, predicted class), each cell labelled up to 20 classes."""
    plt = _pyplot()
    n = len(confusion)
    side = min(2.0 + 0.5 * n, 14.0)
    figure, axes = plt.subplots(figsize=(side + 1.0, side))
    image = axes.imshow(confusion, cmap="Blues", aspect="equal")
    if n <= 20:
        top = max(max(row) for row in confusion) or 1
        for t in range(n):
            for p in range(n):
                count = int(confusion[t][p])
                color = "white" if count > top / 2 else "black"
                axes.text(p, t, str(count), ha="center", va="center", fontsize="small", color=color)
        axes.set_xticks(range(n), [str(c) for c in range(n)])
        axes.set_yticks(range(n), [str(c) for c in range(n)])
    axes.set(xlabel="predicted class", ylabel="true class", title=title)
    figure.colorbar(image, ax=axes, fraction=0.05, label="test samples")
    figure.tight_layout()
    return figure


def buffer_share_scatter(
    points: Sequence[tuple[int, str, float, float]], title: str = "buffer share vs. accuracy per class"
) -> Any:
    """One point per (step, class): the class's share of the buffer after the step against its test
    accuracy then, coloured by step and labelled with the class, so under-served classes that are
    forgotten stand out in the lower left."""
    import matplotlib

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    steps = sorted({step for step, *_ in points})
    colors = matplotlib.colormaps["viridis"]
    for index, step in enumerate(steps):
        mine = [(c, share, accuracy) for s, c, share, accuracy in points if s == step]
        color = colors(index / max(len(steps) - 1, 1))
        axes.scatter([m[1] for m in mine], [m[2] for m in mine], color=color, label=f"after step {step}")
        for label, share, accuracy in mine:
            axes.annotate(label, (share, accuracy), textcoords="offset points", xytext=(3, 3), fontsize=7)
    axes.set(
        xlabel="share of the buffer", ylabel="test accuracy of the class", title=title, ylim=(-0.03, 1.03)
    )
    if steps:
        axes.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    figure.tight_layout()
    return figure
