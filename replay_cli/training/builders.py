"""Build the run's objects from config nodes: benchmark, model, optimizer, replay plugin, strategy.

Group nodes carry ``_target_`` and a ``name`` label; the label is for reports, not a constructor
argument, so :func:`instantiate_group` leaves it out.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli.data.benchmarks import Benchmark

OPTIMIZERS = {"sgd": "torch.optim.SGD", "adam": "torch.optim.Adam"}


def instantiate_group(node: DictConfig, labels: tuple[str, ...] = ("name",), **kwargs: Any) -> Any:
    """Instantiate ``node`` without its ``labels`` (keys read by the builders, not the constructor)."""
    from hydra.utils import instantiate

    params = OmegaConf.to_container(node, resolve=True)
    for label in labels:
        params.pop(label, None)
    return instantiate(params, **kwargs)


def build_benchmark(cfg: DictConfig) -> Benchmark:
    return instantiate_group(cfg.benchmark, name=cfg.benchmark.name)


def build_model(cfg: DictConfig, benchmark: Benchmark) -> Any:
    """The configured model; with one head per task when ``model.head`` asks for it (or, on ``auto``,
    when the benchmark gives task labels)."""
    from replay_cli.models.networks import MultiHead, uses_multi_head

    model = instantiate_group(
        cfg.model,
        labels=("name", "head"),
        input_shape=benchmark.input_shape,
        num_classes=benchmark.num_classes,
    )
    if uses_multi_head(cfg.model.get("head", "auto"), benchmark.n_tasks):
        return MultiHead(model, benchmark.num_classes)
    return model


def resolve_device(requested: str) -> str:
    """``auto`` picks CUDA when present (validation already refused CUDA where there is none)."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def build_optimizer(strategy_cfg: DictConfig, model: Any) -> Any:
    from hydra.utils import get_class

    optimizer_class = get_class(OPTIMIZERS[strategy_cfg.optimizer])
    kwargs = {"lr": strategy_cfg.lr, "weight_decay": strategy_cfg.weight_decay}
    if strategy_cfg.optimizer == "sgd":
        kwargs["momentum"] = strategy_cfg.momentum
    return optimizer_class(model.parameters(), **kwargs)


def build_storage_policy(cfg: DictConfig, model: Any) -> Any:
    """Feature-based selection strategies need the live model; the others ignore it."""
    selection = cfg.storage.policy.get("selection_strategy")
    needs_model = selection is not None and "layer_name" in selection
    extra = {"selection_strategy": {"model": model}} if needs_model else {}
    return instantiate_group(cfg.storage.policy, **extra)


def build_replay_plugin(cfg: DictConfig, model: Any) -> Any:
    from avalanche.training.plugins import ReplayPlugin

    return ReplayPlugin(
        mem_size=cfg.mem_size,
        batch_size=cfg.batch_size,
        batch_size_mem=cfg.batch_size_mem,
        task_balanced_dataloader=cfg.task_balanced_dataloader,
        storage_policy=build_storage_policy(cfg, model),
    )


def build_fast_path_plugin(cfg: DictConfig) -> Any:
    """Batched loading of in-memory tensor data (same results), unless ``fast_path=false``."""
    if not cfg.get("fast_path", False):
        return None
    from replay_cli.data.fast_path import FastPathPlugin

    return FastPathPlugin()


def build_loggers(cfg: DictConfig, run_dir: Any, resume_id: str | None = None) -> list[Any]:
    """The logger group's sink (W&B), or none for ``logger=none``; ``resume_id`` continues a run."""
    from hydra.utils import instantiate

    if not cfg.get("logger"):
        return []
    run_config = OmegaConf.to_container(cfg, resolve=True)
    resume = {"resume_id": resume_id} if resume_id else {}
    return [
        instantiate(
            cfg.logger, run_dir=run_dir, run_config=run_config, _recursive_=False, _convert_="all", **resume
        )
    ]


def build_strategy(cfg: DictConfig, model: Any, plugins: list[Any]) -> Any:
    """The Avalanche strategy named by ``strategy.avalanche_class``, evaluated per experience."""
    import torch
    from avalanche.evaluation.metrics import accuracy_metrics
    from avalanche.training.plugins import EvaluationPlugin
    from hydra.utils import get_class

    s = cfg.strategy
    evaluator = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[])
    return get_class(s.avalanche_class)(
        model=model,
        optimizer=build_optimizer(s, model),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=s.train_mb_size,
        train_epochs=s.train_epochs,
        eval_mb_size=s.eval_mb_size,
        device=resolve_device(s.device),
        plugins=plugins,
        evaluator=evaluator,
    )
