"""The swept keys are the keys a user typed, not every resolved value that changed with them."""

from replay_cli.compare.runs import find_runs
from replay_cli.compare.swept import swept_keys
from replay_cli.keys import flatten
from tests.conftest import fake_run

MATRIX = [[0.9, 0.0], [0.5, 0.8]]


def test_settings_name_groups_by_their_option():
    view = flatten({"storage": {"name": "reservoir", "policy": {"max_size": 5}}, "mem_size": 5, "seed": 1})
    assert view == {"storage": "reservoir", "storage.policy.max_size": 5, "mem_size": 5, "seed": 1}


def _swept(tmp_path) -> list[str]:
    return swept_keys(find_runs([str(tmp_path)]).runs)


def test_without_overrides_derived_values_are_not_swept(tmp_path):
    # storage.policy.* follows storage, storage.policy.max_size copies mem_size; seed is never a key.
    for n, (storage, mem_size, seed) in enumerate(
        [("reservoir", 100, 0), ("reservoir", 200, 1), ("class_balanced", 100, 0), ("class_balanced", 200, 1)]
    ):
        fake_run(tmp_path / str(n), MATRIX, storage=storage, mem_size=mem_size, seed=seed)
    assert _swept(tmp_path) == ["storage", "mem_size"]


def test_a_nested_key_that_varies_on_its_own_is_swept(tmp_path):
    for n, (lr, mem_size) in enumerate([(0.1, 100), (0.1, 200), (0.01, 100), (0.01, 200)]):
        strategy = {"name": "replay", "lr": lr}
        fake_run(tmp_path / str(n), MATRIX, mem_size=mem_size, extra={"strategy": strategy})
    assert _swept(tmp_path) == ["strategy.lr", "mem_size"]


def test_recorded_overrides_name_the_swept_keys(tmp_path):
    # Two runs differ in two nested keys: the diff alone cannot tell which was swept, the overrides can.
    def runs(overrides):
        for n, (lr, momentum) in enumerate([(0.1, 0.0), (0.01, 0.9)]):
            strategy = {"name": "replay", "lr": lr, "momentum": momentum}
            chosen = [f"strategy.momentum={momentum}", "progress=false"] if overrides else None
            fake_run(tmp_path / str(n), MATRIX, extra={"strategy": strategy}, overrides=chosen)
        return _swept(tmp_path)

    assert runs(overrides=False) == ["strategy.lr"]
    assert runs(overrides=True) == ["strategy.momentum"]
