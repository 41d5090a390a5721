"""Replay diagnostics (replay_cli/reporting/diagnostics.py, instruments.py): replay counts against an
independent count of a small run's minibatches, the memory-overfitting gap and forgetting events
against hand computations, and the gallery's pixels against the buffer's samples."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from replay_cli.reporting import diagnostics
from tests.conftest import compose_config


def test_memory_overfitting_gap_matches_a_hand_computation():
    # buffer: origin 0 holds classes 0 (3 samples, 3 right) and 1 (1 sample, wrong); origin 1 class 2
    correct = [True, True, True, False, True, False]
    targets = [0, 0, 0, 1, 2, 2]
    origin = [0, 0, 0, 0, 1, 1]
    heldout_accuracy = {"0": 0.5, "1": 0.25, "2": 0.1, "3": 0.9}
    heldout_samples = {"0": 10, "1": 30, "2": 20, "3": 5}
    gap = diagnostics.memory_overfitting(correct, targets, origin, heldout_accuracy, heldout_samples)

    e0, e1 = gap["per_experience"]["0"], gap["per_experience"]["1"]
    assert e0["buffer_accuracy"] == pytest.approx(3 / 4)
    assert e0["heldout_accuracy"] == pytest.approx((0.5 * 10 + 0.25 * 30) / 40)  # classes 0 and 1
    assert e0["gap"] == pytest.approx(3 / 4 - 12.5 / 40)
    assert e1 == pytest.approx({"buffer_accuracy": 0.5, "heldout_accuracy": 0.1, "gap": 0.4})
    assert gap["buffer_accuracy"] == pytest.approx(4 / 6)
    assert gap["heldout_accuracy"] == pytest.approx((5 + 7.5 + 2) / 60)  # class 3 is not in the buffer


def test_forgetting_events_match_a_hand_computation(tmp_path):
    events = diagnostics.ForgettingEvents()
    steps = [
        [True, True, False, True],
        [False, True, True, True],  # sample 0 forgotten
        [True, False, False, True],  # samples 1 and 2 forgotten
        [False, False, True, True],  # sample 0 forgotten again
    ]
    for correct in steps:
        events.update(correct)
    assert events.events == [2, 1, 1, 0]
    targets, experiences = [0, 1, 1, 2], [0, 0, 0, 1]
    summary = diagnostics.forgetting_summary(events.events, targets, experiences)
    assert summary == {
        "total": 4,
        "forgotten_share": 0.75,
        "per_class": {"0": 2.0, "1": 1.0, "2": 0.0},
        "per_experience": {"0": 4 / 3, "1": 0.0},
    }
    path = tmp_path / diagnostics.FORGETTING_CSV
    diagnostics.write_most_forgotten(path, events.events, experiences, [0, 1, 2, 0], targets)
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert [(r["test_experience"], r["index"], r["forgetting_events"]) for r in rows] == [
        ("0", "0", "2"),
        ("0", "1", "1"),
        ("0", "2", "1"),
    ]


def test_gallery_tiles_are_the_samples_pixels():
    images = torch.randint(0, 256, (5, 3, 4, 4), dtype=torch.uint8)
    targets = [7, 2, 7, 2, 7]
    grid, classes = diagnostics.gallery_grid(images, targets, per_class=3, scale=2)
    assert classes == [2, 7]
    for row, members in enumerate([[1, 3], [0, 2, 4]]):
        for col, i in enumerate(members):
            top, left, height, width = diagnostics.tile_box(row, col, (4, 4), 2)
            tile = grid[top : top + height : 2, left : left + width : 2]
            assert np.array_equal(tile, images[i].permute(1, 2, 0).numpy())


class _MemoryRows:
    """The independent count: every training minibatch's rows compared, as tensors, with the
    buffer's samples (held when the step starts), before each backward pass."""

    def __init__(self, read_buffer):
        from avalanche.training.plugins import SupervisedPlugin

        from replay_cli.data.origin import sample_references

        recorder = self

        class Plugin(SupervisedPlugin):
            def before_training_exp(self, strategy, **kwargs):
                held = read_buffer(strategy)
                recorder.buffer = torch.stack([held[i][0] for i in range(len(held))]) if len(held) else None
                recorder.counts = [0] * (0 if held is None else len(held))
                recorder.ids = [tuple(r) for r in sample_references(held).tolist()] if len(held) else []

            def before_backward(self, strategy, **kwargs):
                if recorder.buffer is None:
                    return
                for row in strategy.mb_x:
                    same = (recorder.buffer == row).flatten(1).all(dim=1).nonzero().flatten()
                    if len(same):
                        recorder.counts[int(same[0])] += 1

        self.plugin = Plugin()


def _small_run(tmp_path, *overrides):
    from replay_cli.config.validation import validate
    from replay_cli.strategies.build import buffer_samples, build_strategy
    from replay_cli.training import builders
    from replay_cli.training.builders import build_instruments
    from replay_cli.training.experiment import seed_everything

    cfg = compose_config("strategy.train_epochs=1", "benchmark.n_experiences=3", "mem_size=60", *overrides)
    validate(cfg)
    seed_everything(cfg.seed)
    benchmark = builders.build_benchmark(cfg)
    model = builders.build_model(cfg, benchmark)
    instruments = build_instruments(cfg, benchmark, tmp_path)
    recorder = _MemoryRows(lambda strategy: buffer_samples(strategy))
    plugins = [*instruments.plugins, recorder.plugin]
    strategy = build_strategy(cfg, model, plugins, benchmark=benchmark)
    return benchmark, strategy, instruments, recorder


@pytest.mark.parametrize("fast_path", ["true", "false"])
def test_replay_counts_match_an_independent_count_of_the_minibatches(tmp_path, fast_path):
    from replay_cli.strategies.build import buffer_samples

    benchmark, strategy, instruments, recorder = _small_run(tmp_path, f"fast_path={fast_path}")
    replayed = []
    for step, experience in enumerate(benchmark.train_stream):
        strategy.train(experience)
        assert instruments.replays.counts_of(recorder.ids) == recorder.counts
        replayed.append(sum(recorder.counts))
        if step:
            summary = instruments.replays.summary()
            assert summary["replays"] == sum(recorder.counts) and summary["max"] == max(recorder.counts)
            assert summary["never_replayed_share"] == recorder.counts.count(0) / 60
        held = buffer_samples(strategy)
        path = instruments.write_gallery(held, step)
        _assert_gallery_shows(tmp_path / path, held, benchmark)
    assert replayed[0] == 0 and all(n >= 60 for n in replayed[1:])  # 7+ minibatches of 32 replayed


def _assert_gallery_shows(png, held, benchmark):
    """The PNG's tiles are the buffer's samples read from the benchmark (8x8 digits in [0, 1])."""
    from PIL import Image

    from replay_cli.data.origin import sample_references

    with Image.open(png) as opened:
        image = np.asarray(opened.convert("RGB"))
    references = sample_references(held).tolist()
    targets = [int(t) for t in held.targets]
    for row, label in enumerate(sorted(set(targets))):
        members = [i for i, t in enumerate(targets) if t == label][:10]
        for col, i in enumerate(members):
            experience, index = references[i]
            sample = benchmark.train_stream[experience].dataset[index][0]
            expected = sample.clamp(0, 1).mul(255).round().to(torch.uint8)[0].numpy()
            top, left, height, width = diagnostics.tile_box(row, col, (8, 8), 4)
            tile = image[top : top + height : 4, left : left + width : 4]
            assert np.array_equal(tile[..., 0], expected) and np.array_equal(tile[..., 2], expected)


def test_a_buffer_rebuilt_before_each_training_call_is_the_one_each_step_summarises(run_in_process):
    """GDumb rebuilds its buffer before every training call (after the last step ended) and trains
    every epoch on all of it: each step replays every buffered sample once per epoch."""
    results = run_in_process("strategy=gdumb", "strategy.train_epochs=2", "mem_size=60")
    summaries = [step["replay_counts"] for step in results["diagnostics"]["per_step"]]
    assert len(summaries) == 5
    for summary in summaries:
        assert summary["mean"] == summary["max"] == 2 and summary["never_replayed_share"] == 0
