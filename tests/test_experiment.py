"""Runs on split_digits in-process: accuracy bounds, results.json content, buffer composition."""

from collections import Counter

import pytest

from replay_cli.data.benchmarks import load_digits_tensors

RESULT_KEYS = {
    "config",
    "accuracy_matrix",
    "final_average_accuracy",
    "average_accuracy_per_experience",
    "forgetting",
    "bwt",
    "buffer_composition",
    "timings",
    "seed",
    "versions",
    "status",
}


def train_class_counts() -> Counter:
    _, y_train, _, _ = load_digits_tensors(test_size=0.3, split_seed=0)
    return Counter(str(int(y)) for y in y_train)


def experience_test_sizes() -> list[int]:
    """Test samples of each experience (digits 2j and 2j+1), counted from the data itself."""
    _, _, _, y_test = load_digits_tensors(test_size=0.3, split_seed=0)
    counts = Counter(int(y) for y in y_test)
    return [counts[2 * j] + counts[2 * j + 1] for j in range(5)]


def test_default_replay_run_learns_and_records_everything(run_in_process):
    results = run_in_process()
    assert results.keys() >= RESULT_KEYS
    assert results["status"] == "completed"
    matrix = results["accuracy_matrix"]
    assert len(matrix) == 5 and all(len(row) == 5 for row in matrix)
    assert all(0.0 <= value <= 1.0 for row in matrix for value in row)
    # nothing is known about experiences not yet trained on (class-incremental)
    assert all(matrix[i][j] == 0.0 for i in range(5) for j in range(i + 1, 5))
    assert results["final_average_accuracy"] >= 0.85
    assert results["final_average_accuracy"] == pytest.approx(sum(matrix[4]) / 5)
    assert results["average_accuracy_per_experience"][1] == pytest.approx((matrix[1][0] + matrix[1][1]) / 2)
    # stream accuracy: over the whole test stream, each experience weighted by its test samples
    sizes = experience_test_sizes()
    expected = [sum(a * n for a, n in zip(row, sizes, strict=True)) / sum(sizes) for row in matrix]
    assert results["stream_accuracy"] == pytest.approx(expected, abs=1e-12)
    assert results["final_stream_accuracy"] == results["stream_accuracy"][-1]
    assert results["final_stream_accuracy"] != pytest.approx(results["final_average_accuracy"], abs=1e-9)
    assert 0.0 <= results["forgetting"] <= 0.3
    assert results["bwt"] <= 0.0
    assert results["config"]["mem_size"] == 500 and results["seed"] == 0
    assert len(results["timings"]["train_seconds_per_experience"]) == 5
    assert {"torch", "avalanche-lib"} <= results["versions"].keys()
    sizes = [entry["size"] for entry in results["buffer_composition"]]
    first_experience = train_class_counts()["0"] + train_class_counts()["1"]  # digits 0 and 1
    assert first_experience < 500 and sizes[0] == first_experience  # fewer than the buffer: all kept
    assert sizes[1:] == [500, 500, 500, 500]


def test_naive_forgets_and_joint_is_the_upper_bound(run_in_process, tmp_path):
    naive = run_in_process("strategy=naive", run_dir=tmp_path / "naive")
    joint = run_in_process("strategy=joint", run_dir=tmp_path / "joint")
    assert naive["final_average_accuracy"] <= 0.30
    assert naive["buffer_composition"][-1]["size"] == 0
    assert joint["final_average_accuracy"] >= 0.90
    assert len(joint["accuracy_matrix"]) == 1  # one training step over all experiences
    assert joint["forgetting"] is None


def test_cumulative_keeps_old_experiences_without_a_buffer(run_in_process):
    """Cumulative retrains on all data seen so far: old experiences stay learnt with no replay buffer
    (naive, also bufferless, forgets them; replay keeps a buffer)."""
    results = run_in_process("strategy=cumulative")
    assert len(results["accuracy_matrix"]) == 5
    assert [entry["size"] for entry in results["buffer_composition"]] == [0] * 5
    assert min(results["accuracy_matrix"][-1][:4]) >= 0.85, "every old experience is still known"
    assert results["forgetting"] <= 0.05


def test_class_balanced_500_never_exceeds_and_stays_balanced(run_in_process):
    available = train_class_counts()
    results = run_in_process("storage=class_balanced", "mem_size=500")
    for step, entry in enumerate(results["buffer_composition"]):
        per_class = entry["per_class"]
        assert entry["size"] == sum(per_class.values()) <= 500
        assert set(per_class) == {str(c) for c in range(2 * step + 2)}
        share = 500 // len(per_class)
        for label, count in per_class.items():
            assert count >= min(share, available[label]), (step, label)
        capped = [count for label, count in per_class.items() if count < available[label]]
        assert not capped or max(capped) - min(capped) <= 1, (step, per_class)


@pytest.mark.parametrize("storage", ["class_balanced", "herding", "closest_to_center", "random"])
def test_per_class_policies_split_the_buffer_evenly(run_in_process, storage, tmp_path):
    results = run_in_process(f"storage={storage}", "mem_size=100", run_dir=tmp_path / storage)
    for step, entry in enumerate(results["buffer_composition"]):
        counts = list(entry["per_class"].values())
        assert len(counts) == 2 * step + 2
        assert entry["size"] == sum(counts) == 100
        assert max(counts) - min(counts) <= 1, (step, entry["per_class"])
        assert entry["per_task"] == {"0": 100}


def test_experience_balanced_splits_the_buffer_per_experience(run_in_process):
    results = run_in_process("storage=experience_balanced", "mem_size=100")
    for step, entry in enumerate(results["buffer_composition"]):
        counts = list(entry["per_experience"].values())
        assert sorted(entry["per_experience"]) == [str(e) for e in range(step + 1)]
        assert sum(counts) == 100 and max(counts) - min(counts) <= 1


def test_reservoir_keeps_a_uniform_sample_of_the_stream(run_in_process):
    results = run_in_process("storage=reservoir", "mem_size=100")
    final = results["buffer_composition"][-1]
    assert final["size"] == 100
    assert sorted(final["per_experience"]) == ["0", "1", "2", "3", "4"]
    # every experience has ~250 samples, so each should hold roughly a fifth of the buffer
    assert all(5 <= count <= 40 for count in final["per_experience"].values()), final


def test_same_seed_same_numbers_other_seed_other_numbers(run_in_process, tmp_path):
    same = ("storage=reservoir", "mem_size=100", "strategy.device=cpu")  # CUDA kernels may vary
    first = run_in_process(*same, run_dir=tmp_path / "a")
    again = run_in_process(*same, run_dir=tmp_path / "b")
    other = run_in_process(*same, "seed=1", run_dir=tmp_path / "c")
    assert first["accuracy_matrix"] == again["accuracy_matrix"]
    assert first["buffer_composition"] == again["buffer_composition"]
    assert first["accuracy_matrix"] != other["accuracy_matrix"]


def test_cnn_model_learns_well_above_chance(run_in_process):
    """Chance is 0.1 over the ten classes (0.5 on one experience's two): the CNN must beat both."""
    results = run_in_process("model=cnn", "mem_size=100", "strategy.device=cpu")
    matrix = results["accuracy_matrix"]
    assert results["status"] == "completed"
    assert sum(matrix[i][i] for i in range(5)) / 5 >= 0.8, "each experience learnt when trained on"
    assert results["final_average_accuracy"] >= 0.5


def test_a_failing_step_keeps_the_finished_ones(run_in_process, fail_at_step, tmp_path):
    import json

    from replay_cli.errors import RunFailed

    fail_at_step(2)
    with pytest.raises(RunFailed, match=r"after step 1 \(2 of 5 steps done\) .*injected failure"):
        run_in_process("mem_size=100")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "failed"
    assert "injected failure" in results["error"]
    assert len(results["accuracy_matrix"]) == 2 and len(results["buffer_composition"]) == 2
