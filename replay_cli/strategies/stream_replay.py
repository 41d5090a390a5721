"""When the replay buffer is updated (top-level key ``replay_update``, and the online protocol's
``loop``).

``experience`` (default): Avalanche's ``ReplayPlugin``, which refreshes the storage policy once per
``strategy.train`` call (after each experience offline, after each mini-experience in the online
``per_mini_experience`` loop); in the online ``one_call`` loop,
:class:`~replay_cli.strategies.minibatch_replay.MinibatchReplayPlugin` refreshes it after each
mini-experience's minibatches within the one call per experience.

``iteration`` with ``storage=reservoir``: stream-reservoir ER as in the DER paper's ER rows and
aimagelab/mammoth's ``er`` (``models/er.py``, ``utils/buffer.py``; Chaudhry et al. 2019, "On Tiny
Episodic Memories in Continual Learning"): after every optimizer step, each new sample of the
minibatch goes through reservoir sampling (Vitter's algorithm R over every sample seen so far, each
epoch's pass counted), and every minibatch after the first gets ``batch_size_mem`` samples (at most
those held) drawn uniformly, without replacement, from the buffer. The policy object keeps the
buffer's Avalanche view (for the buffer composition and checkpoints) and ``samples_seen``.

``iteration`` with any other storage policy: the policy's own update after every minibatch
(:class:`~replay_cli.strategies.minibatch_replay.MinibatchReplayPlugin`).
"""

from __future__ import annotations

from typing import Any

from replay_cli.data.minibatches import RecordedReplay


def replay_plugin(
    update: str,
    storage_policy: Any,
    mem_size: int,
    batch_size: int,
    batch_size_mem: int,
    task_balanced_dataloader: bool,
    loop: str | None = None,
) -> Any:
    """The replay plugin for ``update`` and the online protocol's ``loop`` (None offline); see the
    module docstring. Validation has refused unsupported combinations already."""
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.storage_policy import ReservoirSamplingBuffer

    from replay_cli.strategies.minibatch_replay import MinibatchReplayPlugin

    if update == "iteration" and isinstance(storage_policy, ReservoirSamplingBuffer):
        return StreamReplayPlugin(storage_policy, batch_size_mem)
    if update == "iteration" or loop == "one_call":
        return MinibatchReplayPlugin(storage_policy, batch_size_mem, every_minibatch=update == "iteration")
    return ReplayPlugin(
        mem_size=mem_size,
        batch_size=batch_size,
        batch_size_mem=batch_size_mem,
        task_balanced_dataloader=task_balanced_dataloader,
        storage_policy=storage_policy,
    )


def reservoir_slots(seen: int, size: int, n_new: int) -> list[int]:
    """Algorithm R for ``n_new`` samples arriving after ``seen``: the buffer slot each one overwrites
    (-1: discarded), drawn as mammoth's ``reservoir()`` does from NumPy's global generator, so every
    sample seen so far is in a buffer of capacity ``size`` with probability ``size / seen``."""
    import numpy as np

    slots = []
    for k in range(seen, seen + n_new):
        if k < size:
            slots.append(k)
            continue
        draw = int(np.random.randint(0, k + 1))
        slots.append(draw if draw < size else -1)
    return slots


class StreamReplayPlugin(RecordedReplay):
    """Per-iteration reservoir update and uniform replay (see the module docstring).

    Buffer tensors (inputs as the model receives them, labels, task labels) stay on the training
    device; each slot also records its sample's experience of origin and index there, so the
    policy's ``buffer`` (an Avalanche dataset, refreshed before each evaluation and after each
    training call) is read and checkpointed like any other."""

    def __init__(self, storage_policy: Any, batch_size_mem: int):
        super().__init__()
        self.storage_policy, self.batch_size_mem = storage_policy, batch_size_mem
        self.size = storage_policy.max_size
        storage_policy.samples_seen = getattr(storage_policy, "samples_seen", 0)
        self.fields: list[Any] | None = None  # inputs, labels, task labels: [capacity, ...]
        self.origin: Any = None  # [capacity, 2]: experience of origin, index in it
        self._references: Any = None
        self._n_new = 0
        self._stale = False

    @property
    def count(self) -> int:
        return min(self.storage_policy.samples_seen, self.size)

    def save(self, strategy: Any, samples_of: Any) -> dict[str, Any]:
        """Checkpoint state beyond the buffer (saved as the method buffer): how many samples the
        reservoir has seen, on which its next slots depend."""
        return {"samples_seen": int(self.storage_policy.samples_seen)}

    def load(self, strategy: Any, state: dict[str, Any], rebuild: Any) -> None:
        self.storage_policy.samples_seen = state["samples_seen"]

    def before_training_exp(self, strategy: Any, num_workers: int = 0, **kwargs: Any) -> None:
        """The new data is read through a loader whose batches of indices are recorded, so each
        sample entering the buffer keeps its reference (the fast path keeps this batch sampler)."""
        if self.fields is None and len(self.storage_policy.buffer):
            self._adopt(self.storage_policy.buffer, strategy.device)
        super().before_training_exp(strategy, num_workers, **kwargs)
        self._references = _references(strategy.adapted_dataset)

    def before_forward(self, strategy: Any, **kwargs: Any) -> None:
        """Append ``batch_size_mem`` buffered samples (uniform, without replacement) to the minibatch."""
        import numpy as np
        import torch

        self._n_new = len(strategy.mbatch[0])
        if self.count == 0:
            return
        chosen = np.random.choice(self.count, size=min(self.batch_size_mem, self.count), replace=False)
        index = torch.as_tensor(chosen, device=self.fields[0].device)
        strategy.mbatch = [
            torch.cat([new, field[index].to(new.device)])
            for new, field in zip(strategy.mbatch, self.fields, strict=True)
        ]

    def after_update(self, strategy: Any, **kwargs: Any) -> None:
        """Offer the minibatch's new samples to the reservoir, after the optimizer step."""
        import torch

        batch = self.batches.trained().indices
        new = [field[: self._n_new].detach() for field in strategy.mbatch]
        if self.fields is None:
            self.fields = [
                torch.empty((self.size, *f.shape[1:]), dtype=f.dtype, device=f.device) for f in new
            ]
            self.origin = torch.full((self.size, 2), -1, dtype=torch.long)
        slots = reservoir_slots(self.storage_policy.samples_seen, self.size, self._n_new)
        self.storage_policy.samples_seen += self._n_new
        for position, slot in enumerate(slots):
            if slot >= 0:
                for field, values in zip(self.fields, new, strict=True):
                    field[slot] = values[position]
                if self._references is not None:
                    self.origin[slot] = self._references[batch[position]]
        self._stale = True

    def after_training(self, strategy: Any, **kwargs: Any) -> None:
        from avalanche.benchmarks.scenarios.online import OnlineCLExperience

        if not isinstance(strategy.experience, OnlineCLExperience):  # online: at evaluation time
            self.refresh_view()

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        """Put the buffer, as an Avalanche dataset with its sample references, in the policy."""
        if not self._stale:
            return
        from replay_cli.data.avalanche_internals import tensor_classification_dataset
        from replay_cli.data.origin import ORIGIN_ATTRIBUTE, ORIGIN_INDEX_ATTRIBUTE

        n = self.count
        x, y, t = (field[:n].cpu() for field in self.fields)
        view = tensor_classification_dataset(x, y, task_labels=t.tolist())
        view = view.update_data_attribute(ORIGIN_ATTRIBUTE, self.origin[:n, 0].tolist())
        self.storage_policy.buffer = view.update_data_attribute(
            ORIGIN_INDEX_ATTRIBUTE, self.origin[:n, 1].tolist()
        )
        self._stale = False

    def _adopt(self, buffer: Any, device: Any) -> None:
        """Continue from a buffer restored from a checkpoint (rebuilt from the benchmark's samples).
        Collated directly: a DataLoader would draw its base seed from torch's generator."""
        import torch
        from torch.utils.data import default_collate

        batch = (getattr(buffer, "collate_fn", None) or default_collate)(
            [buffer[i] for i in range(len(buffer))]
        )
        free = self.size - len(buffer)
        self.fields = [torch.cat([f, f.new_empty((free, *f.shape[1:]))]).to(device) for f in batch]
        self.origin = torch.full((self.size, 2), -1, dtype=torch.long)
        self.origin[: len(buffer)] = _references(buffer)


def _references(dataset: Any) -> Any:
    """(experience of origin, index in it) per sample of ``dataset``; None where it carries none."""
    from replay_cli.data.origin import ORIGIN_ATTRIBUTE, ORIGIN_INDEX_ATTRIBUTE, sample_references

    has_both = all(hasattr(dataset, a) for a in (ORIGIN_ATTRIBUTE, ORIGIN_INDEX_ATTRIBUTE))
    return sample_references(dataset) if has_both else None
