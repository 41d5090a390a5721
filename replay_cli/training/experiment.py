"""One run: build everything from the validated config, then train step by step and, after each
step, evaluate on every test experience and hand the growing results to the sinks."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli.config.validation import (
    validate_against_benchmark,
    validate_feature_layer,
    validate_model_needs,
)
from replay_cli.data.loaders import loader_settings, standard_start_method
from replay_cli.data.validation import VALID_STREAM, held_out
from replay_cli.errors import RunFailed, RunInterrupted
from replay_cli.instantiate import instantiate_group
from replay_cli.keys import following_keys
from replay_cli.reporting import metrics
from replay_cli.reporting.class_views import ClassViewFiles, build_class_views_plugin
from replay_cli.reporting.console import ConsoleSummary, held_out_line, progress_plugin, steps_done_text
from replay_cli.reporting.results import RESULTS_FILE, ResultsFile, ResultsSink, RunResults
from replay_cli.strategies.build import buffer_samples, build_strategy, method_buffer, resolve_device
from replay_cli.training import builders
from replay_cli.training.anytime import AnytimeEvaluation
from replay_cli.training.checkpoint import Checkpointer, restore_rng, restore_training_state, rng_state
from replay_cli.training.signals import signals_deferred


def seed_everything(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


@contextmanager
def avalanche_noise_hidden() -> Iterator[None]:
    """Avalanche 0.6 warns about its own deprecated internals on every step (re-arming its filter each
    time, so a filter cannot silence it), and importing it makes qpsolvers warn that no QP solver is
    installed (only GEM-like strategies need one); users cannot act on those: not shown."""
    with warnings.catch_warnings():  # restores filters and showwarning on the way out
        warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
        show = warnings.showwarning

        def show_unless_noise(message, category, filename, *args, **kwargs):  # type: ignore[no-untyped-def]
            from_avalanche = f"{os.sep}avalanche{os.sep}" in filename
            if from_avalanche and (issubclass(category, DeprecationWarning) or "No loggers" in str(message)):
                return
            show(message, category, filename, *args, **kwargs)

        warnings.showwarning = show_unless_noise
        yield


def run_experiment(
    cfg: DictConfig,
    run_dir: Path,
    extra_sinks: Sequence[ResultsSink] = (),
    checkpoint: dict[str, Any] | None = None,
    on_built: Callable[[], None] | None = None,
) -> RunResults:
    """Train and evaluate; results.json is complete on disk after every step, whatever happens.
    With ``checkpoint`` (see :mod:`replay_cli.training.checkpoint`) the run continues after its last
    saved step. ``on_built`` is called once the checks on the built benchmark and model have passed."""
    with avalanche_noise_hidden():
        return _run(cfg, Path(run_dir), extra_sinks, checkpoint, on_built)


def _run(
    cfg: DictConfig,
    run_dir: Path,
    extra_sinks: Sequence[ResultsSink],
    checkpoint: dict[str, Any] | None,
    on_built: Callable[[], None] | None = None,
) -> RunResults:
    seed_everything(cfg.seed)
    benchmark = builders.build_benchmark(cfg)
    validate_against_benchmark(cfg, benchmark)
    model = builders.build_model(cfg, benchmark)
    validate_feature_layer(cfg, model)
    validate_model_needs(cfg, model)
    class_views = build_class_views_plugin(benchmark, model)  # task-IL, per-class, confusion: same pass
    instruments = builders.build_instruments(cfg, benchmark, run_dir)  # cost accounting, replay diagnostics
    protocol = instantiate_group(cfg.protocol, labels=("name", "eval_every"))
    anytime = AnytimeEvaluation(cfg.protocol.eval_every) if cfg.protocol.get("eval_every") else None
    extra = (
        *protocol.plugins(),
        builders.build_fast_path_plugin(cfg, benchmark),
        progress_plugin(cfg.progress),
        class_views,
        anytime,
        *instruments.plugins,
    )
    strategy = build_strategy(cfg, model, [p for p in extra if p is not None], benchmark=benchmark)
    steps = protocol.steps(benchmark.train_stream, strategy)
    if on_built is not None:
        on_built()
    held_out_line(held_out(benchmark), cfg.benchmark.get("validation_size"))

    config = OmegaConf.to_container(cfg, resolve=True)
    if checkpoint is None:
        results = RunResults(
            config=config,
            n_experiences=benchmark.n_test_experiences,
            n_steps=len(steps),
            follows=following_keys(OmegaConf.to_container(cfg, resolve=False)),
            benchmark={
                "name": benchmark.name,
                "num_classes": benchmark.num_classes,
                "n_tasks": benchmark.n_tasks,
                "classes_per_experience": benchmark.classes_per_experience(),
            },
            validation_samples=held_out(benchmark),
            stop_after=cfg.get("stop_after"),
        )
    else:
        results = RunResults(
            **{**checkpoint["results"], "status": "running", "error": None, "finished_at": None}
        )
        restore_training_state(
            checkpoint,
            strategy=strategy,
            storage_policy=method_buffer(strategy),
            benchmark=benchmark,
            steps_done=len(results.accuracy_matrix),
        )
    loggers = builders.build_loggers(
        cfg, run_dir, resume_id=checkpoint["wandb_run_id"] if checkpoint else None, follows=results.follows
    )
    test_tasks, test_sizes = benchmark.test_tasks_and_sizes()
    checkpointer = Checkpointer(run_dir, config, strategy, loggers, resumed=checkpoint is not None)
    sinks: list[ResultsSink] = [  # the checkpoint first: it commits the step, the others follow it
        checkpointer,
        ResultsFile(run_dir),
        ClassViewFiles(run_dir),
        *loggers,
        *extra_sinks,
        ConsoleSummary(),
    ]
    loader = loader_settings(
        cfg.get("loader"), bool(cfg.get("fast_path")), resolve_device(cfg.strategy.device)
    )
    if loader["num_workers"]:
        standard_start_method()  # loader workers inside a launcher's worker process (joblib's loky)
    if anytime is not None:  # the anytime curve: stream accuracy while training

        def probe(samples_seen: int, experience: int) -> None:
            evaluation = strategy.eval(benchmark.test_stream, **loader)
            row = metrics.accuracy_row(evaluation, benchmark.n_test_experiences)
            stream = _stream_accuracy(evaluation, row, benchmark, test_sizes)
            results.add_anytime(samples_seen, stream, experience=experience, accuracy=row)

        anytime.probe = probe
    start = len(results.accuracy_matrix)
    try:
        for index, step in enumerate(steps[start:], start):
            if anytime is not None:
                anytime.experience = index
            started = time.perf_counter()
            protocol.train(strategy, step, **loader)
            trained = time.perf_counter()
            # the validation stream first: the class views are read from the test pass
            validation = _evaluate_validation(strategy, benchmark, loader)
            evaluation = strategy.eval(benchmark.test_stream, **loader)
            row = metrics.accuracy_row(evaluation, benchmark.n_test_experiences)
            with signals_deferred():  # a step is recorded everywhere or nowhere (SIGKILL: see sinks)
                results.add_step(
                    row=row,
                    seen=step.seen,
                    stream_accuracy=_stream_accuracy(evaluation, row, benchmark, test_sizes),
                    composition=metrics.buffer_composition(
                        buffer_samples(strategy, cfg.strategy.get("buffer_reader"))
                    ),
                    train_seconds=trained - started,
                    eval_seconds=time.perf_counter() - trained,
                    per_task=metrics.per_task_accuracy(row, test_tasks, test_sizes),
                    views=class_views.views(),
                )
                if validation is not None:
                    results.add_validation(*validation)
                instruments.step_done(results, strategy)
                _tell(sinks, "experience_done", results)
    except KeyboardInterrupt as interruption:
        done = len(results.accuracy_matrix)
        reason = "interrupted by a signal" if done else "interrupted before the first step"
        resume = _end_early(results, sinks, "interrupted", reason, run_dir, checkpointer)
        kept = run_dir / RESULTS_FILE
        raise RunInterrupted(
            f"interrupted {steps_done_text(done, len(steps))}; results kept in {kept}{resume}",
            getattr(interruption, "exit_status", 130),
        ) from None
    except Exception as error:
        done = len(results.accuracy_matrix)
        resume = _end_early(
            results, sinks, "failed", f"{type(error).__name__}: {error}", run_dir, checkpointer
        )
        raise RunFailed(
            f"training failed {steps_done_text(done, len(steps))} ({type(error).__name__}: {error}); "
            f"finished steps kept in {run_dir / RESULTS_FILE}{resume}"
        ) from error
    results.finish("completed")
    _tell(sinks, "run_ended", results)
    return results


def _evaluate_validation(
    strategy: Any, benchmark: Any, loader: dict[str, Any]
) -> tuple[list[float], Any] | None:
    """(accuracy row, stream accuracy) of the validation stream, None without one. Its sizes pool
    the stream accuracy over task labels as the test stream's do."""
    stream = benchmark.scenario.streams.get(VALID_STREAM)
    if stream is None:
        return None
    state = rng_state()  # as the anytime probe: training draws the same numbers with or without it
    evaluation = strategy.eval(stream, **loader)
    restore_rng(state)
    row = metrics.accuracy_row(evaluation, benchmark.n_experiences, stream=VALID_STREAM)
    if benchmark.n_tasks == 1:
        return row, metrics.stream_accuracy(evaluation, stream=VALID_STREAM)
    return row, metrics.pooled_accuracy(row, held_out(benchmark))


def _stream_accuracy(
    evaluation: dict[str, Any], row: list[float], benchmark: Any, test_sizes: Any
) -> float | None:
    """Avalanche reports stream accuracy per task label: pooled over them (from the accuracy
    row) when there are several."""
    if benchmark.n_tasks == 1:
        return metrics.stream_accuracy(evaluation)
    return metrics.pooled_accuracy(row, test_sizes)


def _end_early(
    results: RunResults,
    sinks: Sequence[Any],
    status: str,
    reason: str,
    run_dir: Path,
    checkpointer: Checkpointer,
) -> str:
    """Record how the run stopped and tell the sinks; returns the resume hint when a checkpoint the
    run can resume from was written (none before the first step's; a method whose state checkpoints
    cannot hold is never resumable)."""
    results.finish(status, reason)
    _tell(sinks, "run_ended", results)
    if checkpointer.resumable:
        return f"; resume with: replay-run resume={run_dir}"
    if results.accuracy_matrix:
        return "; no checkpoint to resume from: run the same command again to start over"
    return ""


def _tell(sinks: Sequence[Any], event: str, results: RunResults) -> None:
    for sink in sinks:
        getattr(sink, event)(results)
