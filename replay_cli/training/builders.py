"""Build the run's objects from config nodes: benchmark, model, loggers (the strategy is built by
:mod:`replay_cli.strategies.build`, the storage policy by :mod:`replay_cli.storage.build`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli.data.benchmarks import Benchmark
from replay_cli.instantiate import instantiate_group


def build_benchmark(cfg: DictConfig) -> Benchmark:
    """The configured benchmark, with its validation stream (``benchmark.validation_size``) and cut to
    its first ``stop_after`` experiences (see :mod:`replay_cli.data.validation`)."""
    from replay_cli.data.validation import first_experiences, with_validation_stream

    benchmark = instantiate_group(cfg.benchmark, labels=("name", "validation_size"), name=cfg.benchmark.name)
    size = cfg.benchmark.get("validation_size") or 0
    benchmark = with_validation_stream(benchmark, size, validation_seed(cfg))
    return first_experiences(benchmark, cfg.get("stop_after"))


def validation_seed(cfg: DictConfig) -> int:
    """The benchmark's own seed fixes the validation split: ``benchmark.seed`` (the classic
    benchmarks' class order), else ``benchmark.split_seed`` (split_digits' test split), else ``seed``."""
    node = cfg.benchmark
    for key in ("seed", "split_seed"):
        if node.get(key) is not None:
            return int(node.get(key))
    return int(cfg.seed)


def build_model(cfg: DictConfig, benchmark: Benchmark) -> Any:
    """The configured model, initialised as ``model.init`` says; with one head per task when
    ``model.head`` asks for it (or, on ``auto``, when the benchmark gives task labels)."""
    from replay_cli.models.networks import MultiHead, initialise, uses_multi_head

    model = instantiate_group(
        cfg.model,
        labels=("name", "head", "init"),
        input_shape=benchmark.input_shape,
        num_classes=benchmark.num_classes,
    )
    initialise(model, cfg.model.get("init", "torch"))
    if uses_multi_head(cfg.model.get("head", "auto"), benchmark.n_tasks):
        return MultiHead(model, benchmark.num_classes)
    return model


def build_fast_path_plugin(cfg: DictConfig, benchmark: Benchmark) -> Any:
    """Batched loading of in-memory tensor data (same results), unless ``fast_path=false``."""
    if not cfg.get("fast_path", False):
        return None
    from replay_cli.data.fast_path import FastPathPlugin

    return FastPathPlugin(benchmark.positions)


def build_loggers(
    cfg: DictConfig, run_dir: Any, resume_id: str | None = None, follows: dict[str, str] | None = None
) -> list[Any]:
    """The logger group's sink (W&B), or none for ``logger=none``; ``resume_id`` continues a run;
    ``follows``: the keys whose value follows another (:func:`replay_cli.keys.following_keys`)."""
    from hydra.utils import instantiate

    if not cfg.get("logger"):
        return []
    run_config = OmegaConf.to_container(cfg, resolve=True)
    resume = {"resume_id": resume_id} if resume_id else {}
    return [
        instantiate(
            cfg.logger,
            run_dir=run_dir,
            run_config=run_config,
            follows=follows or {},
            _recursive_=False,
            _convert_="all",
            **resume,
        )
    ]


def build_instruments(cfg: DictConfig, benchmark: Benchmark, run_dir: Path) -> Any:
    """The run's instruments (unless ``instruments=false``): its buffer read as the buffer
    composition reads it, its device, and whether its inputs are images (the gallery)."""
    import functools

    from replay_cli.reporting.instruments import Instruments, NoInstruments
    from replay_cli.strategies.build import buffer_samples, resolve_device

    if not cfg.get("instruments", True):
        return NoInstruments()

    shape = tuple(benchmark.input_shape)
    return Instruments(
        run_dir,
        functools.partial(buffer_samples, reader=cfg.strategy.get("buffer_reader")),
        resolve_device(cfg.strategy.device),
        image_benchmark=len(shape) == 3 and shape[0] in (1, 3),
    )
