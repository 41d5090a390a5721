"""Checkpoints on plain torch state, loaded with ``weights_only=True`` so that reading one never runs
code from it (Avalanche's dill-based ``save_checkpoint`` fails on current torch anyway).

After every finished step the run directory gets ``checkpoint.pt`` (written beside, then renamed):
model and optimizer state, the method's state (its buffer and, where its strategy config declares a
``state`` adapter, what that adapter saves; see :mod:`replay_cli.storage.state`), the training
clock, the RNG states, the results so far and the W&B run id. A resumed run continues exactly where
the saved one stopped; a run whose method keeps state no checkpoint holds says so once, runs on, and
its resume is refused with one line.

Datasets are saved as references, not data: every training sample carries its experience of origin
and its index in that experience, so buffers (and every group buffer inside balanced policies) are
rebuilt from the same benchmark, sample for sample, in the same order.
"""

from __future__ import annotations

import dataclasses
import json
import random
import sys
from pathlib import Path
from typing import Any

from replay_cli.errors import UsageError
from replay_cli.reporting.results import replace_atomically
from replay_cli.strategies.build import method_buffer

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = "replay-cli-checkpoint/2"


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


def save_checkpoint(
    run_dir: Path,
    *,
    config: dict[str, Any],
    results: Any,
    strategy: Any,
    storage_policy: Any | None,
    wandb_run_id: str | None,
    adapter: Any | None = None,
) -> bool:
    """Write ``checkpoint.pt``; the method's state goes through :mod:`replay_cli.storage.state`
    (``adapter``: the strategy's declared :class:`~replay_cli.storage.state.StateAdapter`). Returns
    whether the run can be resumed from it (False: a state it cannot hold, see the warning)."""
    import torch

    from replay_cli.data.origin import sample_references
    from replay_cli.storage.state import method_state

    state = {
        "format": FORMAT,
        "config": json.dumps(config),
        "results": json.dumps(dataclasses.asdict(results)),
        "model": strategy.model.state_dict(),
        "optimizer": strategy.optimizer.state_dict(),
        "clock": {k: v for k, v in vars(strategy.clock).items() if isinstance(v, int)},
        "method": method_state(strategy, storage_policy, adapter, sample_references),
        "rng": rng_state(),
        "wandb_run_id": wandb_run_id,
    }
    if state["method"]["uncovered"] and not _warned.get(str(run_dir)):
        _warned[str(run_dir)] = True
        print(
            f"replay-run: warning: this run cannot be resumed: {state['method']['uncovered']}",
            file=sys.stderr,
        )
    # the previous checkpoint goes with the rename: only the last is kept
    replace_atomically(checkpoint_path(run_dir), lambda handle: torch.save(state, handle))
    return not state["method"]["uncovered"]


_warned: dict[str, bool] = {}  # one warning per run directory, not one per step


class Checkpointer:
    """A results sink that checkpoints after every step: the step's commit point. It comes before
    every other sink (results.json, W&B, the console's step line) and, with signals held back while
    a step is recorded (:mod:`replay_cli.training.signals`), an interruption finds them all at the
    checkpoint's step. Only SIGKILL can stop the process in between: then the other records are at
    most one step behind the checkpoint, and a resume completes them (W&B logs the steps its files
    lack, results.json is rewritten from the checkpoint's results); none is ever ahead of it."""

    def __init__(
        self, run_dir: Path, config: dict[str, Any], strategy: Any, loggers: list[Any], resumed: bool = False
    ):
        """``resumed``: the run resumed from a checkpoint, which holds until a step writes another."""
        from replay_cli.storage.state import state_adapter

        self.run_dir, self.config, self.strategy, self.loggers = run_dir, config, strategy, loggers
        self.adapter = state_adapter(config["strategy"].get("state"))
        self.resumable = resumed  # a checkpoint this run can resume from is in place

    def experience_done(self, results: Any) -> None:
        run_ids = [getattr(logger, "run_id", None) for logger in self.loggers]
        self.resumable = save_checkpoint(
            self.run_dir,
            config=self.config,
            results=results,
            strategy=self.strategy,
            storage_policy=method_buffer(self.strategy),
            wandb_run_id=next((i for i in run_ids if i), None),
            adapter=self.adapter,
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
    reason, results = state["method"]["uncovered"], state["results"]
    if reason and len(results["accuracy_matrix"]) < results["n_steps"]:
        name = state["config"]["strategy"].get("name")
        raise UsageError(f"resume={run_dir}: strategy {name} cannot be resumed: {reason}; run it again")
    return state


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


def restore_training_state(
    state: dict[str, Any], *, strategy: Any, storage_policy: Any, benchmark: Any, steps_done: int
) -> None:
    """Put model, optimizer, the method's state, clock and RNGs back as they were after
    ``steps_done`` steps. The optimizer is set up as the strategy sets it up itself (its public
    ``make_optimizer``, before and after adapting the model to each finished experience, and adapting
    it to the test stream as each evaluation did), so the saved optimizer state maps onto the same
    parameters in the same order, and is kept."""
    from avalanche.models.utils import avalanche_model_adaptation

    from replay_cli.storage.state import load_method_state, state_adapter

    model = strategy.model
    strategy.make_optimizer(reset_optimizer_state=True)
    for experience in list(benchmark.train_stream)[:steps_done]:  # dynamic heads grow as they did:
        model.train()  # when training on the step's experience (the optimizer takes the new ones),
        avalanche_model_adaptation(model, experience)
        strategy.make_optimizer()
        model.eval()  # then when evaluating on every test experience (heads of unseen tasks)
        for test_experience in benchmark.test_stream:
            avalanche_model_adaptation(model, test_experience)
    model.load_state_dict(state["model"])
    strategy.optimizer.load_state_dict(state["optimizer"])
    for key, value in state["clock"].items():
        setattr(strategy.clock, key, value)
    adapter = state_adapter(state["config"]["strategy"].get("state"))
    load_method_state(strategy, storage_policy, adapter, state["method"], dataset_rebuilder(benchmark))
    restore_rng(state["rng"])
