"""What the replay buffer does, per training step: how often each buffered sample is replayed, how
much the model memorises its buffer, which test samples are forgotten, and what the buffer holds.

Verwimp et al. 2021 ("Rehearsal revealed: the limits and merits of revisiting samples in continual
learning") show that rehearsal overfits its buffer: accuracy on buffered samples stays near 100%
while held-out samples of the same classes are forgotten. Forgetting events are Toneva et al. 2019
("An Empirical Study of Example Forgetting during Deep Neural Network Learning"), counted here across
training steps instead of epochs.

The functions below are pure (tensors and lists in, numbers out); :class:`ReplayCounter` and
:class:`TestCorrectness` watch the run (see :mod:`replay_cli.reporting.instruments`).
"""

from __future__ import annotations

import csv
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

FORGETTING_CSV = "forgetting_events.csv"
REPLAY_COUNTS_CSV = "replay_counts.csv"
GALLERY_PNG = "buffer_gallery_step_{step}.png"
MOST_FORGOTTEN = 100  # test samples listed in the forgetting-events file
_PENDING_BYTES = 2**20  # replayed rows held (by reference) before they are keyed: keyed in cache


# ---------------------------------------------------------------- replay counts


def row_keys(inputs: Any) -> Any:
    """One int64 key per row of ``inputs`` (N, ...), on its device: equal rows (byte for byte),
    equal keys. A weighted sum of the row's 32-bit words (or bytes) in 64-bit integer arithmetic
    (wrapping; 64 bits because float words end in many zero bits), with weights
    drawn once from a private generator (the run's random draws are untouched): the same key on
    CPU and GPU, computed without waiting for the device."""
    import torch

    rows = inputs.detach().contiguous().reshape(len(inputs), -1)
    rows = rows.view(torch.uint8) if rows.dtype == torch.bool else rows
    words = rows.view(torch.int32) if rows.shape[1] * rows.element_size() % 4 == 0 else rows.view(torch.uint8)
    words, weights = words.long(), _weights(words.shape[1], words.device)
    # the same wrapping sum either way: CUDA has no int64 matmul, the CPU's is faster than mul + sum
    return (words * weights).sum(dim=1) if words.is_cuda else words @ weights


@functools.cache
def _weights(width: int, device: Any) -> Any:
    import torch

    generator = torch.Generator().manual_seed(width)
    return torch.randint(1, 2**62, (width,), generator=generator, dtype=torch.long).to(device)


class ReplayCounter:
    """How many times each buffered sample was replayed: a sample counts once each time a training
    backward pass reaches the model's output on it (the model's input row equal to the sample as
    training reads it). Rows are matched against the buffer held when each training call starts
    (:meth:`start`; one per step offline, several online): a sample admitted during a call
    (per-iteration reservoir) is counted from the next call on. Inputs drawn with random augmentation
    (CIFAR's crops and flips) never equal the stored sample: their replays are not seen. The rows a
    backward pass reached are held by reference (up to 1 MiB) and keyed together on their device
    when the counts are read, the buffer changes or that limit is passed.

    Sample ids are (experience of origin, index in it); inside, one int64 each
    (:func:`encode_ids`), so that watching a buffer and matching rows are tensor operations."""

    def __init__(self) -> None:
        import torch

        self._held = torch.zeros(0, dtype=torch.long)  # encoded ids of the buffer last watched
        self._watching = False  # that buffer holds samples (asked at every backward pass)
        self._held_keys = torch.zeros(0, dtype=torch.long)  # their row keys, in the same order
        self._match: dict[Any, tuple[Any, Any]] = {}  # device -> (sorted distinct keys, their ids)
        self._pending: list[Any] = []  # input rows a backward pass reached, not keyed yet
        self._pending_bytes = 0
        self._times: Any = None  # replays per distinct key of the watched buffer, not folded yet
        self._watched: list[Any] = []  # encoded ids held at a call's start since the last summary
        self.step: Counter[tuple[int, int]] = Counter()  # per sample id, since the last summary
        self.total: Counter[tuple[int, int]] = Counter()  # per sample id, over the whole run

    def start(self, keys_at: Callable[[Any], Any], ids: Any, training: bool = True) -> None:
        """Watch the buffer whose ids are ``ids`` (LongTensor (n, 2), or a list of pairs);
        ``keys_at(positions)`` (LongTensor of positions in it) gives the :func:`row_keys` of the
        samples there as training reads them (LongTensor (len(positions),)). Only the samples the
        buffer did not hold at the previous call are keyed: online, a call per mini-experience finds
        a buffer that changed by a few samples; a buffer unchanged since (the next step's, watched
        when the last one ended) is not keyed again. ``training`` False: keyed ahead of the training
        call, not yet one the step's summary covers (a method may change its buffer before that
        call)."""
        import torch

        self._resolve()
        ids = encode_ids(ids)
        if training:
            self._watched.append(ids)
        if torch.equal(ids, self._held):
            return
        self._fold()
        keys = torch.empty_like(ids)
        kept = torch.isin(ids, self._held)
        if kept.any():
            order = torch.argsort(self._held)
            at = torch.searchsorted(self._held[order], ids[kept])
            keys[kept] = self._held_keys[order[at]]
        new = (~kept).nonzero().flatten()
        if len(new):
            keys[new] = keys_at(new).to(keys.device)
        self._held, self._held_keys, self._match = ids, keys, {}
        self._watching = len(ids) > 0

    def keep_watching(self) -> None:
        """The training call starting now replays from the buffer last started on (its caller knows
        it unchanged, without ids to compare)."""
        self._watched.append(self._held)

    def backward(self, inputs: list[Any]) -> None:
        """Backward passes reached the outputs on ``inputs`` (tensors (N, ...)): they are keyed
        later, many calls' rows at once (a few large tensor operations instead of several small ones
        per call)."""
        if not self._watching:
            return
        for rows in inputs:
            self._pending.append(rows.detach() if rows.requires_grad else rows)
            self._pending_bytes += rows.nbytes
        if self._pending_bytes > _PENDING_BYTES:
            self._resolve()

    def _matching(self, device: Any) -> tuple[Any, Any]:
        """The watched buffer's distinct row keys (sorted, on ``device``) and the id of each: rows
        equal byte for byte count for the first of them in the buffer."""
        import torch

        if device not in self._match:
            keys, slot = torch.unique(self._held_keys, sorted=True, return_inverse=True)
            positions = torch.arange(len(slot))
            first = torch.full_like(keys, len(slot)).scatter_reduce(0, slot, positions, reduce="amin")
            self._match[device] = (keys.to(device), self._held[first])
        return self._match[device]

    def _resolve(self) -> None:
        if not self._pending:
            return
        import torch

        by_shape: dict[tuple[Any, ...], list[Any]] = {}
        for inputs in self._pending:
            by_shape.setdefault((tuple(inputs.shape[1:]), inputs.dtype, inputs.device), []).append(inputs)
        self._pending, self._pending_bytes = [], 0
        for group in by_shape.values():
            keys = row_keys(torch.cat(group))
            known, _ = self._matching(keys.device)
            slot = torch.searchsorted(known, keys).clamp_(max=len(known) - 1)
            buffered = known[slot] == keys
            times = torch.bincount(slot[buffered], minlength=len(known)).cpu()
            self._times = times if self._times is None else self._times + times

    def _fold(self) -> None:
        """Add the replays counted by tensor since the last fold to the per-sample counters (only
        buffered samples reach Python, once each)."""
        import torch

        self._resolve()
        if self._times is None:
            return
        _, ids = self._matching(torch.device("cpu"))
        replayed = self._times.nonzero().flatten()
        for sample, n in zip(decode_ids(ids[replayed]), self._times[replayed].tolist(), strict=True):
            self.step[sample] += n
            self.total[sample] += n
        self._times = None

    def counts_of(self, ids: Sequence[tuple[int, int]]) -> list[int]:
        """Replays of each of the samples ``ids`` since the last :meth:`summary`."""
        self._fold()
        return [self.step[tuple(i)] for i in ids]

    def summary(self) -> dict[str, Any] | None:
        """The step's distribution over the samples it replayed from (those held when one of its
        training calls started): ``replays``, ``mean``, ``max`` and ``never_replayed_share`` (the
        share of them replayed zero times); None without a buffer. Starts the next step."""
        import torch

        watched = decode_ids(torch.unique(torch.cat(self._watched))) if self._watched else []
        counts = self.counts_of(watched)
        self.step, self._watched = Counter(), []
        return replay_count_summary(counts) if counts else None


_INDEX_BITS = 40  # an experience holds fewer than 2**40 samples


def encode_ids(ids: Any) -> Any:
    """(experience, index) pairs (LongTensor (n, 2) or a list of pairs) -> one int64 each (n,)."""
    import torch

    pairs = torch.as_tensor(ids, dtype=torch.long).reshape(-1, 2)
    return (pairs[:, 0] << _INDEX_BITS) | pairs[:, 1]


def decode_ids(encoded: Any) -> list[tuple[int, int]]:
    """The inverse of :func:`encode_ids`: a list of (experience, index)."""
    experiences = (encoded >> _INDEX_BITS).tolist()
    indices = (encoded & ((1 << _INDEX_BITS) - 1)).tolist()
    return list(zip(experiences, indices, strict=True))


def replay_count_summary(counts: Sequence[int]) -> dict[str, Any]:
    """``counts``: replays of each buffered sample -> total, mean, max, share never replayed."""
    return {
        "replays": int(sum(counts)),
        "mean": sum(counts) / len(counts),
        "max": int(max(counts)),
        "never_replayed_share": sum(1 for c in counts if c == 0) / len(counts),
    }


# ---------------------------------------------------------------- memory overfitting


def memory_overfitting(
    buffer_correct: Sequence[bool],
    buffer_targets: Sequence[int],
    buffer_origin: Sequence[int],
    heldout_accuracy: dict[str, float],
    heldout_samples: dict[str, int],
) -> dict[str, Any]:
    """Accuracy on the buffer's own samples against accuracy on held-out samples of the same classes,
    per experience of origin (Verwimp et al. 2021); ``gap`` = buffer - held-out (in [−1, 1]: how much
    the model memorises its buffer).

    ``buffer_correct[i]``: the model's prediction of buffered sample ``i`` is its label;
    ``heldout_accuracy`` / ``heldout_samples``: per class (str) of the held-out set (test, or
    validation when the run has one). The held-out accuracy of an origin is the held-out accuracy
    of the classes its buffered samples have, weighted by their held-out samples.
    Returns ``{"buffer_accuracy", "heldout_accuracy", "gap", "per_experience": {e: {...}}}``."""
    by_origin: dict[int, list[int]] = {}
    for i, origin in enumerate(buffer_origin):
        by_origin.setdefault(int(origin), []).append(i)
    per_experience = {
        str(e): _overfitting_of(members, buffer_correct, buffer_targets, heldout_accuracy, heldout_samples)
        for e, members in sorted(by_origin.items())
    }
    overall = _overfitting_of(
        range(len(buffer_correct)), buffer_correct, buffer_targets, heldout_accuracy, heldout_samples
    )
    return {**overall, "per_experience": per_experience}


def _overfitting_of(
    members: Sequence[int],
    correct: Sequence[bool],
    targets: Sequence[int],
    heldout_accuracy: dict[str, float],
    heldout_samples: dict[str, int],
) -> dict[str, float | None]:
    buffer_accuracy = sum(bool(correct[i]) for i in members) / len(members) if members else None
    classes = {str(int(targets[i])) for i in members} & set(heldout_samples)
    size = sum(heldout_samples[c] for c in classes)
    heldout = sum(heldout_accuracy.get(c, 0.0) * heldout_samples[c] for c in classes) / size if size else None
    gap = buffer_accuracy - heldout if buffer_accuracy is not None and heldout is not None else None
    return {"buffer_accuracy": buffer_accuracy, "heldout_accuracy": heldout, "gap": gap}


# ---------------------------------------------------------------- forgetting events


class ForgettingEvents:
    """Per test sample, how many times it went from correctly to wrongly classified between two
    consecutive steps (Toneva et al. 2019's forgetting event, across steps)."""

    def __init__(self) -> None:
        self.previous: list[bool] | None = None
        self.events: list[int] = []

    def update(self, correct: Sequence[bool]) -> None:
        correct = [bool(c) for c in correct]
        if self.previous is None or len(self.previous) != len(correct):
            self.events = [0] * len(correct)
        else:
            for i, (before, now) in enumerate(zip(self.previous, correct, strict=True)):
                self.events[i] += before and not now
        self.previous = correct

    def state(self) -> dict[str, Any]:
        return {"previous": self.previous, "events": self.events}

    def load(self, state: dict[str, Any]) -> None:
        self.previous, self.events = state.get("previous"), list(state.get("events") or [])


def forgetting_summary(
    events: Sequence[int], targets: Sequence[int], experiences: Sequence[int]
) -> dict[str, Any]:
    """Forgetting events summarised: ``total``, ``forgotten_share`` (test samples forgotten at least
    once), and the mean events per sample of each class and of each test experience."""

    def mean_by(keys: Sequence[int]) -> dict[str, float]:
        sums: Counter[int] = Counter()
        sizes: Counter[int] = Counter()
        for key, n in zip(keys, events, strict=True):
            sums[int(key)] += n
            sizes[int(key)] += 1
        return {str(k): sums[k] / sizes[k] for k in sorted(sizes)}

    n = len(events)
    return {
        "total": int(sum(events)),
        "forgotten_share": sum(1 for e in events if e) / n if n else None,
        "per_class": mean_by(targets),
        "per_experience": mean_by(experiences),
    }


def write_most_forgotten(
    path: Path,
    events: Sequence[int],
    experiences: Sequence[int],
    indices: Sequence[int],
    targets: Sequence[int],
) -> None:
    """The :data:`MOST_FORGOTTEN` test samples with the most events (ties: stream order), as CSV:
    ``test_experience, index, class, forgetting_events`` (``index``: position in that test
    experience); samples never forgotten are left out."""
    order = sorted(range(len(events)), key=lambda i: -events[i])[:MOST_FORGOTTEN]
    rows = [[experiences[i], indices[i], targets[i], events[i]] for i in order if events[i]]
    _write_csv(path, ["test_experience", "index", "class", "forgetting_events"], rows)


# ---------------------------------------------------------------- buffer gallery


LABEL_WIDTH = 24  # pixels left of each gallery row, where its class is written


def gallery_grid(
    images: Any, targets: Sequence[int], per_class: int = 10, scale: int = 4
) -> tuple[Any, list[int]]:
    """A grid of the buffer's images: one row per class (ascending), its first ``per_class``
    samples in buffer order, each pixel repeated ``scale`` times, 1-pixel gaps, a black margin of
    :data:`LABEL_WIDTH` pixels on the left for the class (see :func:`tile_box` for where a tile is).

    ``images``: (N, C, H, W) as stored (uint8, or floats in [0, 1]: scaled to 0-255), C 1 or 3.
    Returns ``(grid, classes)``: a uint8 array (H', W', 3) and the class of each row."""
    import numpy as np
    import torch

    array = images.detach().cpu()
    if array.is_floating_point():
        array = array.float().clamp(0, 1).mul(255).round().to(torch.uint8)
    array = array.numpy()
    if array.shape[1] == 1:
        array = np.repeat(array, 3, axis=1)
    targets = [int(t) for t in targets]
    classes = sorted(set(targets))
    n, _, h, w = array.shape
    bottom, right = tile_box(len(classes), per_class, (h, w), scale)[:2]
    grid = np.zeros((bottom, right, 3), dtype=np.uint8)
    for row, label in enumerate(classes):
        members = [i for i in range(n) if targets[i] == label][:per_class]
        for col, i in enumerate(members):
            top, left = tile_box(row, col, (h, w), scale)[:2]
            tile = array[i].transpose(1, 2, 0).repeat(scale, axis=0).repeat(scale, axis=1)
            grid[top : top + h * scale, left : left + w * scale] = tile
    return grid, classes


def tile_box(row: int, col: int, size: tuple[int, int], scale: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) in pixels of the gallery tile at ``row``, ``col`` for images of
    ``size`` (H, W) shown ``scale`` times larger."""
    height, width = size[0] * scale, size[1] * scale
    return row * (height + 1), LABEL_WIDTH + col * (width + 1), height, width


def write_gallery(
    path: Path, grid: Any, classes: Sequence[int], size: tuple[int, int], scale: int = 4
) -> None:
    """The grid as a PNG: its exact pixels, with each row's class written in the left margin."""
    from PIL import Image, ImageDraw

    from replay_cli.reporting.results import replace_atomically

    image = Image.fromarray(grid)
    draw = ImageDraw.Draw(image)
    for row, label in enumerate(classes):
        top, _, height, _ = tile_box(row, 0, size, scale)
        draw.text((2, top + max(0, height // 2 - 6)), str(label), fill=(255, 255, 255))
    replace_atomically(path, lambda handle: image.save(handle, format="PNG"))


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    import io

    from replay_cli.reporting.results import replace_atomically

    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    replace_atomically(path, lambda handle: handle.write(text.getvalue().encode()))


def write_replay_counts(path: Path, total: Counter) -> None:
    """Replays of every sample replayed so far: ``experience, index, replays`` (its id: experience
    of origin and index in it), most replayed first."""
    _write_csv(path, ["experience", "index", "replays"], ([e, i, n] for (e, i), n in total.most_common()))
