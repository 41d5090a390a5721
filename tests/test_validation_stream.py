"""The validation stream (benchmark.validation_size) and the first-K-experiences protocol (stop_after):
held-out samples by identity, class stratification, determinism, and what a run records."""

import pytest

from replay_cli.data.origin import attribute_tensor
from replay_cli.data.validation import held_out, stratified_split
from replay_cli.reporting import metrics
from replay_cli.training import builders
from tests.conftest import compose_config

QUICK = ("strategy.train_epochs=1", "mem_size=100")


def _original_positions(dataset):
    """The samples' positions in the unsplit experience (their origin index before the split)."""
    return attribute_tensor(dataset, "origin_index").tolist()


def test_the_split_is_disjoint_complete_stratified_and_fixed_by_the_seed():
    full = builders.build_benchmark(compose_config())
    experience = full.train_stream[1].dataset
    targets = attribute_tensor(experience, "targets")
    train, valid = stratified_split(experience, 0.1, seed=0, experience=1)
    train_ids, valid_ids = set(_original_positions(train)), set(_original_positions(valid))
    assert not train_ids & valid_ids, "no sample both trained on and held out"
    assert train_ids | valid_ids == set(range(len(experience)))
    for label in targets.unique().tolist():
        n_class = int((targets == label).sum())
        held = sum(int(targets[i]) == label for i in valid_ids)
        assert held == int(0.1 * n_class) and held >= 1
    again = stratified_split(experience, 0.1, seed=0, experience=1)[1]
    other = stratified_split(experience, 0.1, seed=1, experience=1)[1]
    assert _original_positions(again) == _original_positions(valid)
    assert set(_original_positions(other)) != valid_ids


def test_a_benchmark_with_validation_size_trains_on_the_rest():
    full = builders.build_benchmark(compose_config())
    split = builders.build_benchmark(compose_config("benchmark.validation_size=0.1"))
    held = held_out(split)
    assert held_out(full) is None and held is not None
    assert split.classes_per_experience() == full.classes_per_experience()
    for e, (whole, train) in enumerate(zip(full.train_stream, split.train_stream, strict=True)):
        assert len(train.dataset) + held[e] == len(whole.dataset)
        assert 0.08 * len(whole.dataset) <= held[e] <= 0.1 * len(whole.dataset)
        # the training samples are tagged afresh: buffers and the fast path index them 0..n-1
        assert sorted(_original_positions(train.dataset)) == list(range(len(train.dataset)))
        assert sorted(int(v) for v in train.dataset.origin_index) == list(range(len(train.dataset)))
    assert [len(e.dataset) for e in split.test_stream] == [len(e.dataset) for e in full.test_stream]


def test_stop_after_keeps_the_first_experiences_of_the_full_split():
    full = builders.build_benchmark(compose_config())
    cut = builders.build_benchmark(compose_config("stop_after=3", "benchmark.validation_size=0.1"))
    assert cut.n_experiences == 3 and len(list(cut.test_stream)) == 3 and len(held_out(cut)) == 3
    assert cut.classes_per_experience() == full.classes_per_experience()[:3]
    assert cut.num_classes == full.num_classes


def test_a_run_records_validation_next_to_test_each_step_and_the_same_on_the_fast_path(
    run_in_process, tmp_path
):
    args = (*QUICK, "benchmark.validation_size=0.1", "stop_after=3")
    fast = run_in_process(*args, run_dir=tmp_path / "fast")
    plain = run_in_process(*args, "fast_path=false", run_dir=tmp_path / "plain")
    assert fast["stop_after"] == 3 and fast["n_steps"] == 3 and fast["n_experiences"] == 3
    validation = fast["validation"]
    assert len(validation["accuracy_matrix"]) == 3 == len(fast["accuracy_matrix"])
    assert validation["samples"] == sum(validation["samples_per_experience"]) > 0
    matrix = validation["accuracy_matrix"]
    assert validation["final_average_accuracy"] == pytest.approx(sum(matrix[2]) / 3)
    assert validation["forgetting"] == pytest.approx(metrics.forgetting(matrix))
    assert validation["average_incremental_accuracy"] == pytest.approx(
        (matrix[0][0] + sum(matrix[1][:2]) / 2 + sum(matrix[2]) / 3) / 3
    )
    assert all(0 <= a <= 1 for row in matrix for a in row) and matrix[0][0] > 0.5
    for key in ("validation", "accuracy_matrix", "stream_accuracy", "average_incremental_accuracy"):
        assert fast[key] == plain[key], key


def test_a_run_without_validation_size_has_no_validation_block(run_in_process):
    results = run_in_process(*QUICK, "stop_after=1")
    assert results["validation"] is None and results["stop_after"] == 1
    assert results["average_incremental_accuracy"] == pytest.approx(results["final_average_accuracy"])


def test_the_anytime_curve_gives_aaa_and_wc_acc(run_in_process):
    results = run_in_process(
        *QUICK, "protocol=online", "protocol.experience_size=25", "protocol.eval_every=100", "stop_after=2"
    )
    curve = results["anytime_accuracy"]
    assert len(curve) >= 4 and {p["experience"] for p in curve} == {0, 1}
    assert all(len(p["accuracy"]) == 2 for p in curve)
    aaa = sum(sum(p["accuracy"][: p["experience"] + 1]) / (p["experience"] + 1) for p in curve) / len(curve)
    assert results["average_anytime_accuracy"] == pytest.approx(aaa)
    lowest = min(p["accuracy"][0] for p in curve if p["experience"] == 1)
    assert results["worst_case_accuracy"] == pytest.approx(curve[-1]["accuracy"][1] / 2 + lowest / 2)
