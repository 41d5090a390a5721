"""Check a composed config before anything is built, so bad input fails in milliseconds.

Each rule pairs a key with a predicate and the human description of what is allowed; the first
broken rule becomes a :class:`ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from replay_cli.config.objective import check_objective_data, objectives
from replay_cli.data.image_files import CORE50_SCENARIOS
from replay_cli.errors import ConfigError, UsageError


@dataclass(frozen=True)
class Rule:
    allowed: str
    accepts: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def integer(minimum: int | None = None, optional: bool = False) -> Rule:
    text = "an integer" + (f" >= {minimum}" if minimum is not None else "") + (" or null" if optional else "")
    return Rule(
        text, lambda v: (optional and v is None) or (_is_int(v) and (minimum is None or v >= minimum))
    )


def number(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Rule:
    left, right = ("(" if low_open else "["), (")" if high_open else "]")

    def accepts(v: Any) -> bool:
        if not _is_number(v):
            return False
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    return Rule(f"a number in {left}{low}, {high}{right}", accepts)


def at_least(minimum: float, open_: bool = False) -> Rule:
    """A number without an upper bound (loss weights, temperatures)."""

    def accepts(v: Any) -> bool:
        return _is_number(v) and (v > minimum if open_ else v >= minimum)

    return Rule(f"a number {'>' if open_ else '>='} {minimum}", accepts)


def boolean() -> Rule:
    return Rule("true or false", lambda v: isinstance(v, bool))


def one_of(*choices: Any) -> Rule:
    shown = ", ".join("null" if c is None else str(c) for c in choices)
    return Rule(f"one of: {shown}", lambda v: not isinstance(v, bool) and v in choices)


def device() -> Rule:
    import re

    return Rule(
        "auto, cpu, cuda or cuda:N",
        lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|cuda(:\d+)?", v) is not None,
    )


def int_list(minimum: int) -> Rule:
    return Rule(
        f"a list of integers >= {minimum}",
        lambda v: isinstance(v, list) and all(_is_int(x) and x >= minimum for x in v),
    )


RULES: dict[str, Rule] = {
    "mem_size": integer(minimum=1),
    "batch_size": integer(minimum=1),
    "batch_size_mem": integer(minimum=1),
    "task_balanced_dataloader": boolean(),
    "replay_update": one_of("experience", "iteration"),
    "protocol.experience_size": integer(minimum=1),
    "protocol.loop": one_of("one_call", "per_mini_experience"),
    "protocol.eval_every": integer(minimum=1, optional=True),
    "protocol.shuffle": boolean(),
    "protocol.drop_last": boolean(),
    "protocol.access_task_boundaries": boolean(),
    "seed": integer(minimum=0),
    "num_threads": integer(minimum=1, optional=True),
    "print_config": boolean(),
    "progress": boolean(),
    "optimizer.lr": number(0, 10, low_open=True),
    "optimizer.momentum": number(0, 1, high_open=True),
    "optimizer.weight_decay": number(0, 1),
    "strategy.train_epochs": integer(minimum=1),
    "strategy.train_mb_size": integer(minimum=1),
    "strategy.eval_mb_size": integer(minimum=1),
    "strategy.device": device(),
    "storage.policy.max_size": integer(minimum=1),
    "storage.policy.adaptive_size": boolean(),
    "storage.policy.total_num_classes": integer(minimum=1, optional=True),
    "storage.policy.num_experiences": integer(minimum=1, optional=True),
    "storage.policy.groupby": one_of("class", "experience", "task", None),
    "storage.layer_name": Rule("a non-empty layer name", lambda v: isinstance(v, str) and v != ""),
    "model.hidden_sizes": int_list(minimum=1),
    "model.channels": int_list(minimum=1),
    "model.hidden_size": integer(minimum=1),
    "model.dropout": number(0, 1, high_open=True),
    "logger.mode": one_of("auto", "online", "offline", "disabled"),
    "logger.init_timeout": number(1, 600),
    # W&B's own limits (wandb.Settings refuses these at start, after the run has been set up)
    "logger.tags": Rule(
        "a list of tags of 1 to 64 characters each (W&B's limit)",
        lambda v: isinstance(v, list) and all(isinstance(t, str) and 1 <= len(t) <= 64 for t in v),
    ),
    "logger.project": Rule(
        "a W&B project name: 1 to 128 characters, none of / \\ # ? % :",
        lambda v: isinstance(v, str) and 1 <= len(v) <= 128 and not set(v) & set("/\\#?%:"),
    ),
    "model.head": one_of("auto", "single", "multi"),
    "model.init": one_of("torch", "xavier"),
    "benchmark.normalize": boolean(),
    "benchmark.scenario": one_of(*CORE50_SCENARIOS),
    "benchmark.run": Rule("an integer in [0, 9] (CORe50's ten runs)", lambda v: _is_int(v) and 0 <= v <= 9),
    "benchmark.object_level": boolean(),
    "benchmark.mini": boolean(),
    "model.nf": integer(minimum=1),
    "benchmark.n_experiences": integer(minimum=1),
    "benchmark.test_size": number(0, 1, low_open=True, high_open=True),
    "benchmark.validation_size": number(0, 1, high_open=True),
    "stop_after": integer(minimum=1, optional=True),
    "hparams_search.objective": one_of(*objectives()),
    "benchmark.split_seed": integer(minimum=0),
    "benchmark.seed": integer(minimum=0, optional=True),
    "benchmark.return_task_id": boolean(),
    "benchmark.download": boolean(),
    "benchmark.dataset_root": Rule(
        "a folder path or null", lambda v: v is None or (isinstance(v, str) and v != "")
    ),
    "benchmark.input_shape": int_list(minimum=1),
    "benchmark.num_classes": integer(minimum=2),
    "benchmark.train_samples": integer(minimum=1),
    "benchmark.test_samples": integer(minimum=1),
    "fast_path": boolean(),
    "instruments": boolean(),
    "loader.num_workers": Rule("an integer >= 0 or auto", lambda v: v == "auto" or (_is_int(v) and v >= 0)),
    "loader.pin_memory": Rule("true, false or auto", lambda v: isinstance(v, bool) or v == "auto"),
    "loader.persistent_workers": Rule("true, false or auto", lambda v: isinstance(v, bool) or v == "auto"),
    "benchmark.batched_transforms": boolean(),
    # methods with their own buffer: GSS-greedy, SCR, BiC (GDumb and iCaRL read only mem_size)
    "strategy.mem_strength": integer(minimum=1),
    "strategy.temperature": number(0, 10, low_open=True),
    "strategy.projection_size": integer(minimum=1),
    "strategy.augment.crop_scale": Rule(
        "[low, high] with 0 < low <= high <= 1",
        lambda v: (
            isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v) and 0 < v[0] <= v[1] <= 1
        ),
    ),
    "strategy.augment.horizontal_flip_p": number(0, 1),
    "strategy.augment.color_jitter": Rule(
        "[brightness, contrast, saturation, hue], each >= 0, hue <= 0.5",
        lambda v: (
            isinstance(v, list) and len(v) == 4 and all(_is_number(x) and x >= 0 for x in v) and v[3] <= 0.5
        ),
    ),
    "strategy.augment.color_jitter_p": number(0, 1),
    "strategy.augment.grayscale_p": number(0, 1),
    "strategy.plugins.bic.val_percentage": number(0, 1, low_open=True, high_open=True),
    "strategy.plugins.bic.T": number(0, 100, low_open=True),
    "strategy.plugins.bic.stage_2_epochs": integer(minimum=1),
    "strategy.plugins.bic.lamb": Rule(
        "-1 (seen/(seen+new) classes) or a number in [0, 1]",
        lambda v: _is_number(v) and (v == -1 or 0 <= v <= 1),
    ),
    "strategy.plugins.bic.lr": number(0, 10, low_open=True),
    # the replay methods' own hyperparameters (conf/strategy/<method>.yaml)
    "strategy.alpha": at_least(0),
    "strategy.beta": at_least(0),
    "strategy.subsample": integer(minimum=1),
    "strategy.temp": at_least(0, open_=True),
    "strategy.base_temp": at_least(0, open_=True),
    "strategy.same_task_neg": boolean(),
    "strategy.plugins.rar.opt_lr": number(0, 10, low_open=True),
    "strategy.plugins.rar.name_ext_layer": Rule(
        "a layer name or null", lambda v: v is None or (isinstance(v, str) and v != "")
    ),
    "strategy.plugins.rar.use_adversarial_replay": boolean(),
    "strategy.plugins.rar.beta_coef": at_least(0),
    "strategy.plugins.rar.decay_factor_fgsm": at_least(0),
    "strategy.plugins.rar.epsilon_fgsm": number(0, 1),
    "strategy.plugins.rar.iter_fgsm": integer(minimum=1),
    # GEM, A-GEM, MER, La-MAML, CoPE, feature and generative replay (conf/strategy/<method>.yaml)
    "strategy.patterns_per_exp": integer(minimum=1),
    "strategy.memory_strength": at_least(0),
    "strategy.sample_size": integer(minimum=1),
    "strategy.n_inner_steps": integer(minimum=1),
    "strategy.gamma": number(0, 1),
    "strategy.max_buffer_size": integer(minimum=1),
    "strategy.buffer_mb_size": integer(minimum=1),
    "strategy.n_inner_updates": integer(minimum=1),
    "strategy.second_order": boolean(),
    "strategy.grad_clip_norm": at_least(0, open_=True),
    "strategy.learn_lr": boolean(),
    "strategy.lr_alpha": at_least(0),
    "strategy.sync_update": boolean(),
    "strategy.alpha_init": at_least(0, open_=True),
    "strategy.T": at_least(0, open_=True),
    "strategy.embedding_size": integer(minimum=1, optional=True),
    "strategy.mask": one_of("new", "seen", "old", "all"),
    "strategy.replay_size": integer(minimum=1, optional=True),
    "strategy.increasing_replay_size": boolean(),
    "strategy.generator.latent_size": integer(minimum=1),
    "strategy.generator.lr": number(0, 10, low_open=True),
    "strategy.generator.weight_decay": number(0, 1),
    "strategy.generator.train_epochs": integer(minimum=1, optional=True),
}


_ABSENT = object()


def _lookup(cfg: DictConfig, key: str) -> Any:
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig) or leaf not in parent:
        return _ABSENT
    value = parent[leaf]
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def validate(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` for the first value outside what its key allows."""
    for key, rule in RULES.items():
        value = _lookup(cfg, key)
        if value is not _ABSENT and not rule.accepts(value):
            raise ConfigError(key, value, rule.allowed)
    _check_consistency(cfg)
    from replay_cli.data.benchmarks import check_class_split

    check_class_split(OmegaConf.to_container(cfg.benchmark, resolve=True))


def _check_protocol(cfg: DictConfig) -> None:
    uses = cfg.strategy.uses
    if cfg.protocol.name == "online" and str(cfg.strategy._target_).endswith("JointTraining"):
        raise UsageError("protocol=online cannot train strategy=joint (it trains once on all data)")
    if cfg.protocol.get("loop") == "one_call":
        if cfg.strategy.get("online_loop") != "one_call":
            allowed = (
                f"per_mini_experience with strategy={cfg.strategy.name} (it updates its own buffer "
                "once per training call)"
            )
            raise ConfigError("protocol.loop", cfg.protocol.loop, allowed)
        if "task_balanced_dataloader" in uses and cfg.task_balanced_dataloader:
            allowed = "per_mini_experience with task_balanced_dataloader=true"
            raise ConfigError("protocol.loop", cfg.protocol.loop, allowed)
        if cfg.protocol.get("access_task_boundaries"):  # only Avalanche's online stream shows them
            allowed = (
                "false with protocol.loop=one_call (it applies to protocol.loop=per_mini_experience only)"
            )
            raise ConfigError("protocol.access_task_boundaries", True, allowed)
    if "replay_update" in uses and cfg.replay_update == "iteration" and cfg.task_balanced_dataloader:
        raise ConfigError("replay_update", cfg.replay_update, "experience with task_balanced_dataloader=true")


def _check_consistency(cfg: DictConfig) -> None:
    _check_protocol(cfg)
    check_objective_data(cfg)
    if str(cfg.strategy.device).startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "strategy.device", cfg.strategy.device, "auto or cpu (CUDA is not available here)"
            )
    policy = cfg.storage.policy
    if policy.get("adaptive_size") is False:
        needed = "total_num_classes" if "total_num_classes" in policy else "num_experiences"
        if policy.get(needed) is None:
            raise ConfigError(
                f"storage.policy.{needed}", None, "an integer >= 1 when storage.policy.adaptive_size=false"
            )
    subsample = cfg.strategy.get("subsample")
    if subsample is not None and subsample < cfg.batch_size_mem:  # MIR replays the worst of subsample
        allowed = f"an integer >= batch_size_mem ({cfg.batch_size_mem})"
        raise ConfigError("strategy.subsample", subsample, allowed)
    if "storage" in cfg.strategy.uses:
        from replay_cli.storage.capacity import check_fixed_shares

        check_fixed_shares(cfg.storage, cfg.mem_size)
    if "storage" in cfg.strategy.uses and cfg.storage.policy.max_size != cfg.mem_size:
        raise ConfigError(
            "storage.policy.max_size",
            cfg.storage.policy.max_size,
            "the value of mem_size (set mem_size instead)",
        )


SWEEP_RULES: dict[str, Rule] = {
    "hydra.sweeper.n_trials": integer(minimum=1),  # Optuna's: 0 runs no trial and fails at the end
}


def validate_sweep(cfg: DictConfig) -> None:
    """What a sweep's composed config (with its ``hydra`` node) shows before any job runs: the
    sweeper's own settings, and the objective's data unless a swept key provides it."""
    for key, rule in SWEEP_RULES.items():
        value = _lookup(cfg, key)
        if value is not _ABSENT and not rule.accepts(value):
            raise ConfigError(key, value, rule.allowed)
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    if "benchmark.validation_size" not in params:
        check_objective_data(cfg)


def validate_common_keys(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """A top-level key set on the command line that the chosen strategy does not read (``mem_size``
    for ``naive``, ``storage=`` for a method with its own buffer) would silently do nothing: refused."""
    from replay_cli.keys import COMMON_KEYS

    uses = set(cfg.strategy.uses)
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if key.split(".", 1)[0] in COMMON_KEYS and key.split(".", 1)[0] not in uses:
            reads = ", ".join(cfg.strategy.uses) or "none"
            raise UsageError(
                f"{override} has no effect with strategy={cfg.strategy.name}: of {', '.join(COMMON_KEYS)} "
                f"it reads {reads}; leave it out or choose a strategy that reads it"
            )


def validate_against_benchmark(cfg: DictConfig, benchmark: Any) -> None:
    """Rules that need the built benchmark: still checked before any training."""
    uses = set(cfg.strategy.uses)
    if "task_balanced_dataloader" in uses and cfg.task_balanced_dataloader:
        _check_task_balanced_batch(cfg.batch_size_mem, benchmark)
    if "storage" in uses:
        from replay_cli.storage.capacity import warn_unserved_groups

        warn_unserved_groups(cfg.storage, cfg.mem_size, benchmark, _mini_experiences(cfg, benchmark))
    if cfg.protocol.get("name") == "online" and cfg.protocol.get("drop_last"):
        _check_dropped_experiences(cfg.protocol.experience_size, benchmark)
    if cfg.protocol.get("loop") == "per_mini_experience":
        _check_mini_experience_heads(cfg, benchmark)
    if cfg.strategy.get("check"):  # the method's own limits (strategy.check names the function)
        from hydra.utils import get_method

        get_method(cfg.strategy.check)(cfg, benchmark)


def _mini_experiences(cfg: DictConfig, benchmark: Any) -> int | None:
    """How many mini-experiences ``protocol=online`` cuts the training stream into; None offline."""
    if cfg.protocol.get("name") != "online":
        return None
    size, drop_last = cfg.protocol.experience_size, cfg.protocol.get("drop_last", False)
    sizes = [len(experience.dataset) for experience in benchmark.train_stream]
    return sum(n // size if drop_last else -(-n // size) for n in sizes)


def _check_mini_experience_heads(cfg: DictConfig, benchmark: Any) -> None:
    """A head per task adapts to each training experience's task labels and classes, which the
    mini-experiences of Avalanche 0.6's ``split_online_stream`` do not carry."""
    from replay_cli.models.networks import uses_multi_head

    head = cfg.model.get("head", "auto")
    if uses_multi_head(head, benchmark.n_tasks):
        raise ConfigError(
            "model.head",
            head,
            "single with protocol.loop=per_mini_experience (Avalanche's online mini-experiences carry no "
            "task labels for a head per task; protocol.loop=one_call trains one)",
        )


def _check_dropped_experiences(size: int, benchmark: Any) -> None:
    """With ``protocol.drop_last=true`` only mini-experiences of exactly ``experience_size`` samples
    train, so an experience shorter than that would be dropped whole: nothing trained on it."""
    shortest = min(len(experience.dataset) for experience in benchmark.train_stream)
    if size > shortest:
        raise ConfigError(
            "protocol.experience_size",
            size,
            f"an integer <= {shortest} (the smallest training experience's samples) with "
            "protocol.drop_last=true, which drops a shorter experience whole (or protocol.drop_last=false)",
        )


def _check_task_balanced_batch(batch_size_mem: int, benchmark: Any) -> None:
    """Avalanche's task-balanced replay loader splits ``batch_size_mem`` over the tasks in the buffer;
    the ReplayPlugin fills the buffer after each experience, so while experience i trains it holds the
    tasks of experiences 0..i-1, at most those of all but the last experience."""
    tasks_before_last = {
        int(t)
        for experience in list(benchmark.train_stream)[:-1]
        for t in experience.dataset.targets_task_labels.uniques
    }
    if batch_size_mem < len(tasks_before_last):
        raise ConfigError(
            "batch_size_mem",
            batch_size_mem,
            f"an integer >= {len(tasks_before_last)} (the tasks the buffer holds before the last "
            "experience) when task_balanced_dataloader=true",
        )


def validate_feature_layer(cfg: DictConfig, model: Any) -> None:
    """Feature-based storage policies hook a named layer: name it wrongly and say which exist."""
    layer = cfg.storage.get("layer_name")
    if "storage" not in cfg.strategy.uses or layer is None:
        return
    names = [name for name, _ in model.named_modules() if name]
    if layer not in names:
        raise ConfigError("storage.layer_name", layer, f"a layer of the model: {', '.join(names)}")


def validate_model_needs(cfg: DictConfig, model: Any) -> None:
    """What a method takes from the model (its strategy config's ``model_needs``): a ``features``
    block, a ``classifier`` head, one head over all classes. Missing, it is refused before training."""
    from avalanche.models import MultiTaskModule
    from torch import nn

    method = cfg.strategy.name
    for need in cfg.strategy.get("model_needs", []):
        if need == "single_head" and isinstance(model, MultiTaskModule):
            raise ConfigError(
                "model.head",
                cfg.model.get("head", "auto"),
                f"single (strategy={method} learns one classifier over all classes: class-incremental "
                "benchmarks only)",
            )
        if need in ("features", "classifier") and not isinstance(getattr(model, need, None), nn.Module):
            raise ConfigError(
                "model", cfg.model.name, f"a model with a `{need}` submodule for strategy={method}"
            )
    if cfg.strategy.get("model_check"):  # limits only the built model reveals (a layer's name)
        from hydra.utils import get_method

        get_method(cfg.strategy.model_check)(cfg, model)
