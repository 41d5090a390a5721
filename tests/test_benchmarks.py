"""The synthetic benchmark: seeded, class-incremental, tagged with each sample's experience of origin."""

import torch

from replay_cli.benchmarks import ORIGIN_ATTRIBUTE, synthetic


def test_synthetic_is_class_incremental_seeded_and_tagged():
    bench = synthetic(
        input_shape=(3, 4, 4), num_classes=6, train_samples=600, test_samples=120, n_experiences=3
    )
    assert (bench.input_shape, bench.num_classes, bench.n_experiences, bench.n_tasks) == ((3, 4, 4), 6, 3, 1)
    assert bench.classes_per_experience() == [[0, 1], [2, 3], [4, 5]]
    assert sum(len(e.dataset) for e in bench.train_stream) == 600
    assert sum(len(e.dataset) for e in bench.test_stream) == 120
    for i, experience in enumerate(bench.train_stream):
        assert set(getattr(experience.dataset, ORIGIN_ATTRIBUTE)) == {i}
    x, y, _ = bench.train_stream[0].dataset[0]
    assert x.shape == (3, 4, 4) and y in (0, 1)
    again = synthetic(
        input_shape=(3, 4, 4), num_classes=6, train_samples=600, test_samples=120, n_experiences=3
    )
    other = synthetic(
        input_shape=(3, 4, 4), num_classes=6, train_samples=600, test_samples=120, n_experiences=3, seed=1
    )
    assert torch.equal(again.train_stream[0].dataset[0][0], x)
    assert not torch.equal(other.train_stream[0].dataset[0][0], x)
