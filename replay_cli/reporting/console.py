"""What a person sees in the terminal: the config tree, progress bars and the final summary."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from replay_cli.keys import metric_label
from replay_cli.reporting.class_views import TASK_IL_MASKED, TASK_IL_SAME

console = Console(stderr=False, highlight=False)


def print_config_tree(cfg: DictConfig) -> None:
    tree = Tree("[bold]config[/bold]")
    _add_branches(tree, OmegaConf.to_container(cfg, resolve=True))
    console.print(tree)


def _add_branches(tree: Tree, node: Any) -> None:
    for key, value in node.items():
        if isinstance(value, dict):
            _add_branches(tree.add(f"[bold]{key}[/bold]"), value)
        else:
            tree.add(f"{key}: {value}")


def steps_done_text(done: int, total: int) -> str:
    """Steps are numbered from 0 everywhere (console, results.json's matrix rows, W&B's ``experience``):
    ``after step 1 (2 of 5 steps done)``."""
    if done == 0:
        return f"before step 0 (0 of {total} steps done)"
    return f"after step {done - 1} ({done} of {total} steps done)"


def _fmt(value: float | None, digits: int = 3) -> str:
    """Fixed decimals; counts (bytes) as integers, large numbers (FLOPs) in three significant digits."""
    if value is None:
        return "n/a"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"


def held_out_line(per_experience: list[int] | None, fraction: float | None) -> None:
    """Say, once before training, how many training samples the validation stream holds out."""
    if per_experience is None:
        return
    console.print(
        f"validation stream: {sum(per_experience)} training samples held out ({fraction:g} of each class "
        f"of each experience: {', '.join(str(n) for n in per_experience)}); "
        "selection never sees the test stream",
        soft_wrap=True,
    )


class ConsoleSummary:
    """One line per finished step, then the accuracy matrix and final metrics as tables. A closed
    terminal or pipe (``replay-run | head``) stops the printing, never the run."""

    def __init__(self) -> None:
        self.closed = False

    def experience_done(self, results: Any) -> None:
        self._print_safely(self._print_step, results)

    def run_ended(self, results: Any) -> None:
        self._print_safely(self._print_summary, results)

    def _print_safely(self, show: Any, results: Any) -> None:
        if self.closed:
            return
        try:
            show(results)
        except OSError:  # BrokenPipeError and friends
            self.closed = True

    def _print_step(self, results: Any) -> None:
        step = len(results.accuracy_matrix) - 1
        buffer = results.buffer_composition[-1]
        task_il = results.task_il_average_accuracy_per_experience
        console.print(
            f"step {step} done ({step + 1} of {results.n_steps})"
            f"  average accuracy {_fmt(results.average_accuracy_per_experience[-1])}"
            + (f" (task-IL {_fmt(task_il[-1])})" if task_il else "")
            + f"  buffer {buffer['size']}  train {results.train_seconds[-1]:.1f}s",
            soft_wrap=True,  # one line per step also in a log file or a pipe (80 columns there)
        )

    def _print_summary(self, results: Any) -> None:
        if not results.accuracy_matrix:
            return
        console.print(accuracy_table(results.accuracy_matrix))
        if results.task_il_evaluation == TASK_IL_MASKED and results.task_il_matrix:
            console.print(accuracy_table(results.task_il_matrix, "task-IL accuracy matrix (masked)"))
        elif results.task_il_evaluation == TASK_IL_SAME:
            console.print(f"task-IL: {TASK_IL_SAME}")
        summary = Table(title=f"replay-run: {results.status}", show_header=False)
        for key, value in results.summary().items():
            summary.add_row(metric_label(key), _fmt(value))
        console.print(summary)


def accuracy_table(matrix: list[list[float]], kind: str = "accuracy matrix") -> Table:
    table = Table(title=f"{kind} A[i][j]: after training step i, on test experience j")
    table.add_column("after", justify="right")
    for j in range(len(matrix[0])):
        table.add_column(f"exp {j}", justify="right")
    for i, row in enumerate(matrix):
        table.add_row(str(i), *(_fmt(v) for v in row))
    return table


def progress_plugin(enabled: bool) -> Any:
    """An Avalanche plugin showing one progress bar per training step (epochs x minibatches)."""
    from avalanche.core import SupervisedPlugin
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    class ProgressBars(SupervisedPlugin):
        model_free_iterations = True  # its iteration callbacks never call the model or change the minibatch

        def __init__(self) -> None:
            super().__init__()
            self.enabled = enabled and console.is_terminal
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=console,
                disable=not self.enabled,
                transient=True,
            )
            self.task = None

        def before_training_epoch(self, strategy: Any, **kwargs: Any) -> None:
            if not self.enabled:
                return
            if self.task is None:
                self.progress.start()
                self.task = self.progress.add_task("training", total=len(strategy.dataloader))
            epoch = strategy.clock.train_exp_epochs + 1
            description = f"step {strategy.clock.train_exp_counter} epoch {epoch}"
            self.progress.reset(self.task, total=len(strategy.dataloader), description=description)

        def after_training_iteration(self, strategy: Any, **kwargs: Any) -> None:
            if self.task is not None:
                self.progress.advance(self.task)

        def after_training_exp(self, strategy: Any, **kwargs: Any) -> None:
            if self.task is not None:  # a finished bar goes, or the next step's start draws it again
                self.progress.remove_task(self.task)
                self.progress.stop()
                self.task = None

    return ProgressBars()
