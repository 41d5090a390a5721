"""The run's instruments: cost accounting (:mod:`replay_cli.reporting.cost`) and replay diagnostics
(:mod:`replay_cli.reporting.diagnostics`), as Avalanche plugins the strategy carries and one call
after each step that records what they saw in the results and the run directory.

Nothing here changes what a run computes: the extra passes (FLOPs probes on a copy of the model,
the buffer's own evaluation) leave the model's state, its gradients and every random generator as
they were, and are not counted as the method's cost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from avalanche.core import BasePlugin

from replay_cli.data.positions import PositionsView
from replay_cli.reporting import diagnostics
from replay_cli.reporting.cost import CostPlugin, buffer_bytes, stored_fields

STATE_FILE = "diagnostics_state.json"  # forgetting-event and replay counts, so a resumed run continues them
_EVAL_BATCH = 256
_GATHER_CHUNK = 4096  # stream samples gathered at a time (one walk of the dataset tree each)
_KEY_CHUNK = 512  # of those, keyed at a time: their 64-bit words stay in cache


class BufferWatch(BasePlugin):
    """Starts the replay counter on the buffer each training call replays from, and records which
    test samples each evaluation classifies correctly (in stream order)."""

    def __init__(self, counter: diagnostics.ReplayCounter, read_buffer: Any) -> None:
        super().__init__()
        self.counter, self.read_buffer = counter, read_buffer
        self.correct: dict[int, list[Any]] = {}
        self.unchanged: bool | None = None  # the method's buffer reaches the model as stored
        self._stream_keys: dict[int, Any] = {}  # id of the stream's positions -> its rows' keys
        self._last_positions: Any = None  # of the buffer last watched, where it is kept as positions

    def before_training_exp(self, strategy: Any, **kwargs: Any) -> None:
        self.watch_buffer(self.read_buffer(strategy))

    def watch_buffer(self, held: Any, training: bool = True) -> None:
        """Start the replay counter on ``held``, the buffer the training call starting now replays
        from. Also called when a step ends (``training`` False, :meth:`Instruments.step_done`):
        that buffer is keyed then, so the next call (which watches the buffer it finds, changed or
        not: GDumb and ER-ACE rebuild theirs first) does not make the training loop wait for it."""
        positions = held.held if isinstance(held, PositionsView) else None
        if (
            positions is not None
            and self._last_positions is not None
            and torch.equal(positions, self._last_positions)
        ):
            if training:  # the buffer the counter holds: nothing to read
                self.counter.keep_watching()
            return
        self._last_positions = positions.clone() if positions is not None else None
        ids = sample_ids(held)
        if ids is None:
            ids = torch.zeros((0, 2), dtype=torch.long)
        if len(ids) and self.unchanged is None:  # one kind of buffer per run: asked once
            self.unchanged = reads_unchanged(held, train=True)
        self.counter.start(self._keys_reader(held), ids, training)

    def _keys_reader(self, held: Any) -> Any:
        """positions in ``held`` (LongTensor) -> the row keys of those samples as training reads them."""
        if self.unchanged and isinstance(held, PositionsView):
            stream = id(held.positions)
            if stream not in self._stream_keys:  # once per run (None: a tree the gather does not know)
                self._stream_keys[stream] = stream_keys(held.positions)
            keys = self._stream_keys[stream]
            if keys is not None:
                return lambda positions: keys[held.held[positions]]
        return lambda positions: diagnostics.row_keys(
            read_inputs(held, train=True, positions=positions, unchanged=self.unchanged)
        )

    def before_eval(self, strategy: Any, **kwargs: Any) -> None:
        self.correct = {}

    def after_eval_iteration(self, strategy: Any, **kwargs: Any) -> None:
        j = strategy.experience.current_experience
        predicted = strategy.mb_output.detach().argmax(dim=1)
        rows = self.correct.setdefault(j, [])
        rows.append(((predicted == strategy.mb_y).cpu(), strategy.mb_y.cpu()))

    def test_samples(self) -> tuple[list[bool], list[int], list[int], list[int]]:
        """(correct, class, test experience, index in it) of every test sample of the last evaluation."""
        correct, targets, experiences, indices = [], [], [], []
        for j in sorted(self.correct):
            hits = [h for batch, _ in self.correct[j] for h in batch.tolist()]
            correct += hits
            targets += [int(y) for _, labels in self.correct[j] for y in labels.tolist()]
            experiences += [j] * len(hits)
            indices += list(range(len(hits)))
        return correct, targets, experiences, indices


class Instruments:
    """Plugins to give the strategy (:attr:`plugins`) and :meth:`step_done` to call after each
    step's evaluation. ``read_buffer``: strategy -> what the method's buffer holds (see
    :func:`replay_cli.strategies.build.buffer_samples`); ``heldout``: results -> (accuracy, samples)
    per class of the held-out set the memory-overfitting gap compares with (default: the test
    stream's, from the class views)."""

    def __init__(
        self,
        run_dir: Path,
        read_buffer: Any,
        device: str,
        image_benchmark: bool,
        heldout: Any = None,
    ) -> None:
        self.run_dir, self.read_buffer, self.device = Path(run_dir), read_buffer, device
        self.image_benchmark = image_benchmark
        self.heldout = heldout or test_heldout
        self.replays = diagnostics.ReplayCounter()
        self.cost = CostPlugin(observers=(self.replays,))
        self.watch = BufferWatch(self.replays, read_buffer)
        self.forgetting = diagnostics.ForgettingEvents()
        self._load_state()

    @property
    def plugins(self) -> list[Any]:
        return [self.cost, self.watch]

    def step_done(self, results: Any, strategy: Any) -> None:
        """Record the step's cost and diagnostics in ``results`` and write the run directory's files."""
        held = self.read_buffer(strategy)
        cost = self.cost.step_cost(buffer_bytes(held), self.device)
        step = len(results.accuracy_matrix) - 1
        record: dict[str, Any] = {"replay_counts": self.replays.summary()}
        with self.cost.not_counting():
            record["memory_overfitting"] = self._overfitting(held, strategy, results)
        record["forgetting_events"] = self._forgetting()
        record["gallery"] = self.write_gallery(held, step)
        results.add_instruments(cost, record)
        if self.replays.total:
            diagnostics.write_replay_counts(self.run_dir / diagnostics.REPLAY_COUNTS_CSV, self.replays.total)
        self._save_state()
        self.watch.watch_buffer(held, training=False)  # keyed ahead of the next step

    def _overfitting(self, held: Any, strategy: Any, results: Any) -> dict[str, Any] | None:
        ids = sample_ids(held)
        if ids is None or not len(ids) or not results.per_class_accuracy:
            return None
        correct, targets = buffer_predictions(strategy.model, held, strategy.device)
        origin = ids[:, 0].tolist()
        accuracy, samples = self.heldout(results)
        return diagnostics.memory_overfitting(correct, targets, origin, accuracy, samples)

    def _forgetting(self) -> dict[str, Any] | None:
        correct, targets, experiences, indices = self.watch.test_samples()
        if not correct:
            return None
        self.forgetting.update(correct)
        events = self.forgetting.events
        diagnostics.write_most_forgotten(
            self.run_dir / diagnostics.FORGETTING_CSV, events, experiences, indices, targets
        )
        return diagnostics.forgetting_summary(events, targets, experiences)

    def write_gallery(self, held: Any, step: int) -> str | None:
        """The buffer gallery PNG of ``step`` (image benchmarks); its file name, or None."""
        if not self.image_benchmark or held is None or not len(held) or not hasattr(held, "__getitem__"):
            return None
        stored = stored_inputs(held)
        if stored is None or stored.dim() != 4 or stored.shape[1] not in (1, 3):
            return None
        grid, classes = diagnostics.gallery_grid(stored, held.targets)
        name = diagnostics.GALLERY_PNG.format(step=step)
        diagnostics.write_gallery(self.run_dir / name, grid, classes, tuple(stored.shape[2:]))
        return name

    def _save_state(self) -> None:
        from replay_cli.reporting.results import write_json_atomic

        total = [[e, i, n] for (e, i), n in self.replays.total.items()]
        write_json_atomic(
            self.run_dir / STATE_FILE, {"forgetting": self.forgetting.state(), "replays": total}
        )

    def _load_state(self) -> None:
        path = self.run_dir / STATE_FILE
        if not path.is_file():
            return
        state = json.loads(path.read_text())
        self.forgetting.load(state.get("forgetting", {}))
        for e, i, n in state.get("replays", []):
            self.replays.total[(e, i)] = n


def test_heldout(results: Any) -> tuple[dict[str, float], dict[str, int]]:
    """Per-class accuracy and samples of the test stream after the latest step (the class views)."""
    from replay_cli.reporting.class_views import samples_per_class

    return results.per_class_accuracy[-1], samples_per_class(results.confusion_matrix or [])


def buffer_predictions(model: Any, held: Any, device: Any) -> tuple[list[bool], list[int]]:
    """Whether ``model`` classifies each buffered sample (read with the evaluation transforms) as
    its label, and the labels. Evaluation mode, no gradients; the model's mode is put back."""
    from avalanche.models.utils import avalanche_forward

    inputs = read_inputs(held, train=False)
    labels = torch.as_tensor([int(y) for y in held.targets])
    tasks = torch.as_tensor([int(t) for t in held.targets_task_labels])
    training = model.training
    model.eval()
    correct: list[bool] = []
    try:
        with torch.no_grad():
            for start in range(0, len(inputs), _EVAL_BATCH):
                part = slice(start, start + _EVAL_BATCH)
                output = avalanche_forward(model, inputs[part].to(device), tasks[part].to(device))
                correct += (output.argmax(dim=1).cpu() == labels[part]).tolist()
    finally:
        model.train(training)
    return correct, labels.tolist()


def sample_ids(held: Any) -> Any:
    """(experience of origin, index in it) of each buffered sample, LongTensor (N, 2); None when
    the buffer's samples cannot be read (a method's own memory) or carry no origin."""
    if held is None or not hasattr(held, "__getitem__"):
        return None
    from replay_cli.data.origin import sample_references
    from replay_cli.data.positions import PositionsView

    if isinstance(held, PositionsView):  # from the positions: no Avalanche subset built
        offsets = held.positions.offsets
        experiences = torch.searchsorted(offsets, held.held, right=True) - 1
        return torch.stack([experiences, held.held - offsets[experiences]], dim=1)
    try:
        return sample_references(held).long().reshape(-1, 2)
    except AttributeError:
        return None


def read_inputs(held: Any, train: bool, positions: Any = None, unchanged: bool | None = None) -> Any:
    """The buffer's inputs (N, ...) as training (``train``) or evaluation reads them, of the samples
    at ``positions`` (LongTensor or list; all by default): gathered by tensor indexing when its
    samples are read unchanged (``unchanged``: :func:`reads_unchanged`, asked when None), else one
    sample at a time through the dataset in that transform group."""
    positions = torch.arange(len(held)) if positions is None else torch.as_tensor(positions, dtype=torch.long)
    if reads_unchanged(held, train) if unchanged is None else unchanged:
        fields = stored_fields(held, positions)
        if fields:
            return fields[0]
    dataset = _transform_group(held, train)
    with torch.random.fork_rng(devices=[]):  # a random transform's draws must not move training's
        return torch.stack([dataset[i][0] for i in positions.tolist()])


def stream_keys(positions: Any) -> Any:
    """The row keys (:func:`~replay_cli.reporting.diagnostics.row_keys`) of every training sample
    as stored, by position in the stream (LongTensor), gathered a chunk at a time; None where the
    stream's dataset tree is of a kind the gather does not know. Computed once per run, so that a
    buffer kept as positions is keyed by indexing, not by reading its samples at every call."""
    size, parts = len(positions.source), []
    stream = positions.view(torch.arange(size))
    for start in range(0, size, _GATHER_CHUNK):
        fields = stored_fields(stream, torch.arange(start, min(size, start + _GATHER_CHUNK)))
        if not fields:
            return None
        parts += [diagnostics.row_keys(rows) for rows in fields[0].split(_KEY_CHUNK)]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def reads_unchanged(held: Any, train: bool) -> bool:
    """Whether the buffer's samples reach the model as stored (no per-sample transform in that
    group). Building the group's dataset costs milliseconds: a caller reading often asks once."""
    from replay_cli.data.avalanche_internals import sample_transform

    return sample_transform(_transform_group(held, train)) is None


def _transform_group(held: Any, train: bool) -> Any:
    from replay_cli.data.positions import PositionsView

    dataset = held.dataset if isinstance(held, PositionsView) else held
    group = getattr(dataset, "train" if train else "eval", None)
    return group() if group is not None else dataset


def stored_inputs(held: Any) -> Any:
    """The buffer's inputs as stored (before any transform), (N, ...); as read (after the training
    transforms) where the dataset tree is of a kind the gather does not know (DER's logits)."""
    fields = stored_fields(held, torch.arange(len(held)))
    if fields:
        return fields[0]
    return torch.stack([held[i][0] for i in range(len(held))])


class NoInstruments:
    """``instruments=false``: no plugin, nothing recorded (results.json ``cost`` and ``diagnostics``
    stay empty)."""

    plugins: tuple[Any, ...] = ()

    def step_done(self, results: Any, strategy: Any) -> None:
        """Nothing to record."""
