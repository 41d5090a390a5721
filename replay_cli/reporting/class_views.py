"""Class-level views of each evaluation: task-IL accuracy by masking, per-class accuracy, confusion.

Papers on replay report task-incremental next to class-incremental accuracy from the same trained
model: mammoth (``mask_classes``) and FACIL restrict the outputs to the classes of the sample's task
before the argmax. :func:`class_views_plugin` does that from the outputs Avalanche's evaluation already
computed (``after_eval_iteration``), so class-IL, task-IL, per-class counts and the confusion matrix
all come from one forward pass over the test stream per step.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# results.json ``task_il_evaluation``: how the task-IL matrix was obtained
TASK_IL_MASKED = "masked: outputs restricted to each test experience's classes before the argmax"
TASK_IL_SAME = "same as accuracy_matrix: task-incremental run (one head per task)"

CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "confusion_matrix.png"
BUFFER_SHARE_PNG = "buffer_share_vs_accuracy.png"


@dataclass(frozen=True)
class ClassViews:
    """What one evaluation of the test stream gives beyond Avalanche's accuracies.

    ``task_il_row[j]``: accuracy on test experience ``j`` with outputs masked to its classes (``None``
    for a multi-head model, whose outputs already are). ``confusion[t][p]``: test samples of class
    ``t`` predicted as ``p`` (class-IL argmax), over the whole test stream.
    """

    task_il_row: list[float] | None
    confusion: list[list[int]]

    @property
    def per_class_accuracy(self) -> dict[str, float]:
        return per_class_accuracy(self.confusion)


def per_class_accuracy(confusion: Sequence[Sequence[int]]) -> dict[str, float]:
    """``{class: accuracy}`` (diagonal over row sum) for every class with test samples."""
    return {str(c): row[c] / sum(row) for c, row in enumerate(confusion) if sum(row) > 0}


def samples_per_class(confusion: Sequence[Sequence[int]]) -> dict[str, int]:
    """``{class: test samples}`` (row sums) for every class with test samples."""
    return {str(c): sum(row) for c, row in enumerate(confusion) if sum(row) > 0}


def masked_argmax(logits: Any, allowed: Any) -> Any:
    """Argmax over the allowed outputs only: ``logits`` (N, C), ``allowed`` bool (C,) -> (N,) class ids.
    Task-IL by masking as in mammoth's ``mask_classes`` (Buzzega et al. 2020) and FACIL's task-aware
    accuracy (Masana et al. 2022)."""
    return logits.masked_fill(~allowed, float("-inf")).argmax(dim=1)


def classes_per_test_experience(benchmark: Any) -> list[list[int]]:
    """Classes of each test experience (the mask of its task-IL evaluation)."""
    return [sorted(int(c) for c in exp.dataset.targets.uniques) for exp in benchmark.test_stream]


def class_views_plugin(num_classes: int, classes: Sequence[Sequence[int]] | None) -> Any:
    """An Avalanche plugin that, during every ``strategy.eval``, accumulates the confusion matrix and,
    when ``classes`` (per test experience) is given, the masked task-IL hits; read them with
    ``.views()`` after the call. ``classes=None`` for multi-head models (task-IL is class-IL there)."""
    import torch
    from avalanche.core import SupervisedPlugin

    class ClassViewsPlugin(SupervisedPlugin):
        def __init__(self) -> None:
            super().__init__()
            self.masks = None
            if classes is not None:
                self.masks = torch.zeros(len(classes), num_classes, dtype=torch.bool)
                for j, allowed in enumerate(classes):
                    self.masks[j, list(allowed)] = True
            self.before_eval(None)

        def before_eval(self, strategy: Any, **kwargs: Any) -> None:
            self.confusion = torch.zeros(num_classes**2, dtype=torch.long)  # then on the outputs' device
            self.hits: dict[int, Any] = {}
            self.sizes: dict[int, int] = {}

        def after_eval_iteration(self, strategy: Any, **kwargs: Any) -> None:
            logits, targets = strategy.mb_output.detach(), strategy.mb_y
            if logits.shape[1] < num_classes:  # nearest-mean classifiers (iCaRL, SCR) score seen classes
                logits = torch.nn.functional.pad(logits, (0, num_classes - logits.shape[1]), value=-torch.inf)
            counts = torch.bincount(targets * num_classes + logits.argmax(dim=1), minlength=num_classes**2)
            self.confusion = self.confusion.to(logits.device) + counts
            if self.masks is None:
                return
            j = strategy.experience.current_experience
            allowed = self.masks[j].to(logits.device)
            hits = (masked_argmax(logits, allowed) == targets).sum()
            self.hits[j] = self.hits.get(j, 0) + hits
            self.sizes[j] = self.sizes.get(j, 0) + len(targets)

        def views(self) -> ClassViews:
            row = None
            if self.masks is not None:
                row = [
                    int(self.hits[j]) / self.sizes[j] if j in self.sizes else 0.0
                    for j in range(len(self.masks))
                ]
            return ClassViews(row, self.confusion.cpu().view(num_classes, num_classes).tolist())

    return ClassViewsPlugin()


def build_class_views_plugin(benchmark: Any, model: Any) -> Any:
    """The plugin for this run: masked task-IL, unless the model has one head per task and every test
    experience its own task label (then each head already restricts the outputs to its task's classes,
    and task-IL is the accuracy matrix itself)."""
    from avalanche.models import MultiTaskModule

    tasks, _ = benchmark.test_tasks_and_sizes()
    head_per_experience = isinstance(model, MultiTaskModule) and len(set(tasks)) == len(tasks)
    classes = None if head_per_experience else classes_per_test_experience(benchmark)
    return class_views_plugin(benchmark.num_classes, classes)


def buffer_shares(compositions: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """Each step's ``{class: share of the buffer}`` (0 to 1) from results.json's buffer composition."""
    return [
        {c: n / entry["size"] for c, n in entry["per_class"].items()} if entry["size"] else {}
        for entry in compositions
    ]


class ClassViewFiles:
    """A results sink: at the end of the run, the confusion matrix (CSV and PNG) and the buffer share
    against accuracy figure in the run directory. These are views: if one cannot be written, a warning
    says so and the run's status and exit code stay what training made them."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def experience_done(self, results: Any) -> None:
        pass

    def run_ended(self, results: Any) -> None:
        if results.confusion_matrix is None:
            return
        try:
            self._write(results)
        except Exception as error:  # a figure must never break a run
            from replay_cli.errors import one_line

            print(
                f"replay-run: warning: could not write the class views into {self.run_dir} "
                f"({type(error).__name__}: {one_line(error)}); results.json is unaffected",
                file=sys.stderr,
            )

    def _write(self, results: Any) -> None:
        from replay_cli.reporting.figures import buffer_share_scatter, confusion_heatmap, save_figure

        write_confusion_csv(self.run_dir / CONFUSION_CSV, results.confusion_matrix)
        save_figure(confusion_heatmap(results.confusion_matrix), self.run_dir / CONFUSION_PNG)
        if any(entry["size"] for entry in results.buffer_composition):
            points = buffer_share_points(results)
            save_figure(buffer_share_scatter(points), self.run_dir / BUFFER_SHARE_PNG)


def write_confusion_csv(path: Path, confusion: Sequence[Sequence[int]]) -> None:
    """Rows: true class; columns: predicted class (header ``true,pred_0,pred_1,...``)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true", *(f"pred_{p}" for p in range(len(confusion)))])
        writer.writerows([c, *row] for c, row in enumerate(confusion))


def buffer_share_points(results: Any) -> list[tuple[int, str, float, float]]:
    """``(step, class, buffer share, accuracy)`` after each step, for every class trained on so far."""
    classes_per_experience = results.benchmark.get("classes_per_experience", [])
    points = []
    for step, (shares, accuracy) in enumerate(
        zip(buffer_shares(results.buffer_composition), results.per_class_accuracy, strict=False)
    ):
        seen = results.seen_experiences[step]
        trained = sorted({c for exp in classes_per_experience[:seen] for c in exp})
        points += [(step, str(c), shares.get(str(c), 0.0), accuracy.get(str(c), 0.0)) for c in trained]
    return points


def wandb_final_views(results: Any) -> dict[str, Any]:
    """What the W&B run gets at the end: ``confusion_matrix`` (table of Actual, Predicted, nPredictions),
    ``confusion_matrix_chart`` (W&B's own confusion-matrix chart of that table),
    ``confusion_matrix_heatmap`` and ``buffer_share_vs_accuracy`` (images), ``per_class_accuracy``
    (table of after_step, class, accuracy, buffer_share). Empty before the first step."""
    import wandb

    from replay_cli.reporting.figures import buffer_share_scatter, confusion_heatmap

    if results.confusion_matrix is None:
        return {}
    confusion = results.confusion_matrix
    cells = [[str(t), str(p), n] for t, row in enumerate(confusion) for p, n in enumerate(row)]
    table = wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=cells)
    fields = {name: name for name in table.columns}
    points = buffer_share_points(results)
    views = {
        "confusion_matrix": table,
        "confusion_matrix_chart": wandb.plot_table(
            "wandb/confusion_matrix/v1", table, fields, {"title": "confusion matrix, test stream"}
        ),
        "confusion_matrix_heatmap": _image(confusion_heatmap(confusion)),
        "per_class_accuracy": wandb.Table(
            columns=["after_step", "class", "buffer_share", "accuracy"], data=[list(p) for p in points]
        ),
    }
    if any(entry["size"] for entry in results.buffer_composition):
        views["buffer_share_vs_accuracy"] = _image(buffer_share_scatter(points))
    return views


def _image(figure: Any) -> Any:
    """A W&B image of ``figure`` (rendered at once), then the figure freed."""
    import matplotlib.pyplot as plt
    import wandb

    image = wandb.Image(figure)
    plt.close(figure)
    return image
