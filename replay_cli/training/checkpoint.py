"""Checkpoints on plain torch state, loaded with ``weights_only=True`` so that reading one never runs
code from it (Avalanche's dill-based ``save_checkpoint`` fails on current torch anyway).

After every finished step the run directory gets ``checkpoint.pt`` (written beside, then renamed):
model and optimizer state, the storage policy's buffer, the training clock, the RNG states, the
results so far and the W&B run id. A resumed run continues exactly where the saved one stopped.

The buffer is saved as references, not data: every training sample carries its experience of
origin and its index in that experience, so the buffer (and every group buffer inside balanced
policies) is rebuilt from the same benchmark, sample for sample, in the same order.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

from replay_cli.errors import UsageError
from replay_cli.reporting.results import replace_atomically
from replay_cli.strategies.build import method_buffer

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = "replay-cli-checkpoint/1"
_NOT_STATE = {"selection_strategy", "_curr_strategy"}  # rebuilt from the config (they hold the model)


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_FILE


# ---------------------------------------------------------------- saving


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    version, internal, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _encode(value: Any, samples_of: Any) -> Any:
    """Plain data for a storage policy's attributes: datasets become sample references."""
    import torch
    from avalanche.benchmarks.utils import AvalancheDataset
    from avalanche.training.storage_policy import ExemplarsBuffer

    if isinstance(value, AvalancheDataset):
        return {"__samples__": samples_of(value)}
    if isinstance(value, ExemplarsBuffer):
        state = {k: _encode(v, samples_of) for k, v in vars(value).items() if k not in _NOT_STATE}
        return {"__buffer__": type(value).__name__, "state": state}
    if isinstance(value, set):
        return {"__set__": [_encode(v, samples_of) for v in sorted(value)]}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, samples_of), _encode(v, samples_of)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_encode(v, samples_of) for v in value]
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    raise TypeError(f"cannot checkpoint a storage policy attribute of type {type(value).__name__}")


def sample_references(dataset: Any) -> Any:
    """(experience of origin, index in it) of each sample, in the dataset's order."""
    import torch

    from replay_cli.data.benchmarks import ORIGIN_ATTRIBUTE, ORIGIN_INDEX_ATTRIBUTE

    if len(dataset) == 0:
        return torch.zeros((0, 2), dtype=torch.long)
    origin = torch.tensor(list(getattr(dataset, ORIGIN_ATTRIBUTE)), dtype=torch.long)
    index = torch.tensor(list(getattr(dataset, ORIGIN_INDEX_ATTRIBUTE)), dtype=torch.long)
    return torch.stack([origin, index], dim=1)


def save_checkpoint(
    run_dir: Path,
    *,
    config: dict[str, Any],
    results: Any,
    strategy: Any,
    storage_policy: Any | None,
    wandb_run_id: str | None,
) -> None:
    import torch

    state = {
        "format": FORMAT,
        "config": json.dumps(config),
        "results": json.dumps(dataclasses.asdict(results)),
        "model": strategy.model.state_dict(),
        "optimizer": strategy.optimizer.state_dict(),
        "clock": {k: v for k, v in vars(strategy.clock).items() if isinstance(v, int)},
        "storage_policy": _encode(storage_policy, sample_references) if storage_policy is not None else None,
        "rng": rng_state(),
        "wandb_run_id": wandb_run_id,
    }
    # the previous checkpoint goes with the rename: only the last is kept
    replace_atomically(checkpoint_path(run_dir), lambda handle: torch.save(state, handle))


class Checkpointer:
    """A results sink that checkpoints after every step; it comes last, so a checkpoint only exists
    for a step whose results every other sink has already written."""

    def __init__(self, run_dir: Path, config: dict[str, Any], strategy: Any, loggers: list[Any]):
        self.run_dir, self.config, self.strategy, self.loggers = run_dir, config, strategy, loggers

    def experience_done(self, results: Any) -> None:
        run_ids = [getattr(logger, "run_id", None) for logger in self.loggers]
        save_checkpoint(
            self.run_dir,
            config=self.config,
            results=results,
            strategy=self.strategy,
            storage_policy=method_buffer(self.strategy),
            wandb_run_id=next((i for i in run_ids if i), None),
        )

    def run_ended(self, results: Any) -> None:
        """The last step's checkpoint is already written; results.json records how the run ended."""


# ---------------------------------------------------------------- loading


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only``); anything wrong with it is one clear line."""
    import torch

    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise UsageError(f"resume={run_dir}: no {CHECKPOINT_FILE} there (is it a replay-run run directory?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"resume={run_dir}: {CHECKPOINT_FILE} is corrupted or truncated ({first})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UsageError(f"resume={run_dir}: {CHECKPOINT_FILE} is not a {FORMAT} checkpoint")
    state["config"] = json.loads(state["config"])
    state["results"] = json.loads(state["results"])
    return state


def _decode(value: Any, rebuild: Any, selection_strategy: Any) -> Any:
    from avalanche.training import storage_policy as policies

    if isinstance(value, list):
        return [_decode(v, rebuild, selection_strategy) for v in value]
    if not isinstance(value, dict):
        return value
    if "__samples__" in value:
        return rebuild(value["__samples__"])
    if "__set__" in value:
        return {_decode(v, rebuild, selection_strategy) for v in value["__set__"]}
    if "__dict__" in value:
        return {
            _decode(k, rebuild, selection_strategy): _decode(v, rebuild, selection_strategy)
            for k, v in value["__dict__"]
        }
    if "__buffer__" in value:
        buffer_class = getattr(policies, value["__buffer__"], None)
        if not (isinstance(buffer_class, type) and issubclass(buffer_class, policies.ExemplarsBuffer)):
            raise UsageError(f"checkpoint names an unknown storage buffer {value['__buffer__']!r}")
        buffer = buffer_class.__new__(buffer_class)
        _restore_buffer(buffer, value["state"], rebuild, selection_strategy)
        return buffer
    return {k: _decode(v, rebuild, selection_strategy) for k, v in value.items()}


def _restore_buffer(buffer: Any, state: dict[str, Any], rebuild: Any, selection_strategy: Any) -> None:
    for key, encoded in state.items():
        setattr(buffer, key, _decode(encoded, rebuild, selection_strategy))
    if selection_strategy is not None:
        buffer.selection_strategy, buffer._curr_strategy = selection_strategy, None


def dataset_rebuilder(benchmark: Any) -> Any:
    """Samples from their (experience, index) references, through one subset of all training data."""
    from avalanche.benchmarks.utils import concat_datasets

    datasets = [experience.dataset for experience in benchmark.train_stream]
    offsets, total = [], 0
    for dataset in datasets:
        offsets.append(total)
        total += len(dataset)
    everything = concat_datasets(datasets)

    def rebuild(references: Any) -> Any:
        return everything.subset([offsets[int(e)] + int(i) for e, i in references.tolist()])

    return rebuild


def restore_rng(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _single_param_group(optimizer: Any, model: Any) -> dict[str, Any]:
    """What Avalanche sets up on a strategy's first experience (all parameters in one group, by name),
    so that the saved optimizer state maps onto the same parameters and is kept, not reset."""
    optimizer.param_groups[0]["params"] = list(model.parameters())
    return dict(model.named_parameters())


def restore_training_state(
    state: dict[str, Any], *, strategy: Any, storage_policy: Any, benchmark: Any, steps_done: int
) -> None:
    """Put model, optimizer, buffer, clock and RNGs back as they were after ``steps_done`` steps."""
    from avalanche.benchmarks.utils import concat_datasets
    from avalanche.models.utils import avalanche_model_adaptation

    finished = list(benchmark.train_stream)[:steps_done]
    for experience in finished:  # dynamic heads grow as in the original run before weights load
        avalanche_model_adaptation(strategy.model, experience)
    strategy.model.load_state_dict(state["model"])
    strategy.optimized_param_id = _single_param_group(strategy.optimizer, strategy.model)
    strategy.optimizer.load_state_dict(state["optimizer"])
    for key, value in state["clock"].items():
        setattr(strategy.clock, key, value)
    if hasattr(strategy, "dataset") and finished:  # Cumulative: all data seen so far, concatenated in order
        strategy.dataset = finished[0].dataset
        for experience in finished[1:]:
            strategy.dataset = concat_datasets([strategy.dataset, experience.dataset])
    if storage_policy is not None and state["storage_policy"] is not None:
        policy = storage_policy
        selection = getattr(policy, "selection_strategy", None)
        _restore_buffer(policy, state["storage_policy"]["state"], dataset_rebuilder(benchmark), selection)
    restore_rng(state["rng"])
