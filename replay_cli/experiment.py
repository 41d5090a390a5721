"""One run: build everything from the validated config, then train step by step and, after each
step, evaluate on every test experience and hand the growing results to the sinks."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli import builders, metrics
from replay_cli.console import ConsoleSummary, progress_plugin
from replay_cli.errors import RunFailed
from replay_cli.results import ResultsFile, ResultsSink, RunResults
from replay_cli.validation import validate_against_benchmark, validate_feature_layer


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
    time, so ``filterwarnings`` cannot silence it); users cannot act on those, so they are not shown."""
    show = warnings.showwarning

    def show_unless_noise(message, category, filename, *args, **kwargs):  # type: ignore[no-untyped-def]
        from_avalanche = f"{os.sep}avalanche{os.sep}" in filename
        if from_avalanche and (issubclass(category, DeprecationWarning) or "No loggers" in str(message)):
            return
        show(message, category, filename, *args, **kwargs)

    warnings.showwarning = show_unless_noise
    try:
        yield
    finally:
        warnings.showwarning = show


def run_experiment(cfg: DictConfig, run_dir: Path, extra_sinks: Sequence[ResultsSink] = ()) -> RunResults:
    """Train and evaluate; results.json is complete on disk after every step, whatever happens."""
    with avalanche_noise_hidden():
        return _run(cfg, run_dir, extra_sinks)


def _run(cfg: DictConfig, run_dir: Path, extra_sinks: Sequence[ResultsSink]) -> RunResults:
    seed_everything(cfg.seed)
    benchmark = builders.build_benchmark(cfg)
    validate_against_benchmark(cfg, benchmark.n_tasks)
    model = builders.build_model(cfg, benchmark)
    validate_feature_layer(cfg, model)
    replay = builders.build_replay_plugin(cfg, model) if cfg.strategy.replay else None
    fast_path = builders.build_fast_path_plugin(cfg)
    plugins = [p for p in (replay, fast_path, progress_plugin(cfg.progress)) if p is not None]
    strategy = builders.build_strategy(cfg, model, plugins)

    steps = [list(benchmark.train_stream)] if cfg.strategy.whole_stream else list(benchmark.train_stream)
    results = RunResults(
        config=OmegaConf.to_container(cfg, resolve=True),
        n_experiences=benchmark.n_experiences,
        n_steps=len(steps),
        benchmark={
            "name": benchmark.name,
            "num_classes": benchmark.num_classes,
            "n_tasks": benchmark.n_tasks,
            "classes_per_experience": benchmark.classes_per_experience(),
        },
    )
    sinks: list[ResultsSink] = [
        ResultsFile(run_dir),
        ConsoleSummary(),
        *builders.build_loggers(cfg, run_dir),
        *extra_sinks,
    ]
    try:
        for index, training_data in enumerate(steps):
            started = time.perf_counter()
            strategy.train(training_data)
            trained = time.perf_counter()
            evaluation = strategy.eval(benchmark.test_stream)
            seen = benchmark.n_experiences if cfg.strategy.whole_stream else index + 1
            results.add_step(
                row=metrics.accuracy_row(evaluation, benchmark.n_experiences),
                seen=seen,
                stream_accuracy=metrics.stream_accuracy(evaluation),
                composition=metrics.buffer_composition(replay.storage_policy.buffer if replay else None),
                train_seconds=trained - started,
                eval_seconds=time.perf_counter() - trained,
            )
            _tell(sinks, "experience_done", results)
    except KeyboardInterrupt:
        results.finish("interrupted", "interrupted by the user")
        _tell(sinks, "run_ended", results)
        raise
    except Exception as error:
        done = len(results.accuracy_matrix)
        results.finish("failed", f"{type(error).__name__}: {error}")
        _tell(sinks, "run_ended", results)
        raise RunFailed(
            f"training failed after {done} of {len(steps)} steps ({type(error).__name__}: {error}); "
            f"finished steps kept in {Path(run_dir) / 'results.json'}"
        ) from error
    results.finish("completed")
    _tell(sinks, "run_ended", results)
    return results


def _tell(sinks: Sequence[Any], event: str, results: RunResults) -> None:
    for sink in sinks:
        getattr(sink, event)(results)
