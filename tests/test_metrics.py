import pytest

from replay_cli.reporting import metrics

MATRIX = [
    [0.9, 0.0, 0.0],
    [0.7, 0.8, 0.0],
    [0.6, 0.5, 0.9],
]


def test_average_accuracy_counts_only_seen_experiences():
    assert metrics.average_accuracy(MATRIX[1], seen=2) == pytest.approx(0.75)
    assert metrics.average_accuracy(MATRIX[2], seen=3) == pytest.approx(2.0 / 3)


def test_forgetting_uses_best_earlier_accuracy():
    # exp 0: best 0.9 -> 0.6 (0.3); exp 1: best 0.8 -> 0.5 (0.3)
    assert metrics.forgetting(MATRIX) == pytest.approx(0.3)
    # exp 0: best 0.9 (after step 1) -> 0.4 (0.5); exp 1: 0.2 -> 0.3 (-0.1, it improved)
    assert metrics.forgetting([[0.5, 0.1], [0.9, 0.2], [0.4, 0.3]]) == pytest.approx(0.2)


def test_backward_transfer_compares_with_just_learned_accuracy():
    assert metrics.backward_transfer(MATRIX) == pytest.approx(((0.6 - 0.9) + (0.5 - 0.8)) / 2)
    assert metrics.backward_transfer([[0.5, 0.1], [0.9, 0.2], [0.4, 0.3]]) == pytest.approx(
        ((0.4 - 0.5) + (0.3 - 0.2)) / 2
    )


def test_single_step_has_no_forgetting_or_bwt():
    assert metrics.forgetting([[0.9, 0.0]]) is None
    assert metrics.backward_transfer([[0.9, 0.0]]) is None


def test_one_complete_test_set_has_an_average_but_no_forgetting_or_bwt():
    """CORe50's test stream: one experience for every training experience."""
    matrix = [[0.2], [0.5], [0.4]]
    assert metrics.average_accuracy(matrix[2], seen=3) == pytest.approx(0.4)
    assert metrics.forgetting(matrix) is None and metrics.forgetting(matrix[:2]) is None
    assert metrics.backward_transfer(matrix) is None and metrics.backward_transfer(matrix[:2]) is None


def test_accuracy_row_reads_avalanche_keys_with_and_without_task():
    evaluation = {
        "Top1_Acc_Exp/eval_phase/test_stream/Exp001": 0.25,
        "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000": 0.75,
        "Top1_Acc_Stream/eval_phase/test_stream/Task000": 0.5,
        "Loss_Exp/eval_phase/test_stream/Exp000": 3.0,
    }
    assert metrics.accuracy_row(evaluation, 2) == [0.75, 0.25]
    assert metrics.stream_accuracy(evaluation) == 0.5


def test_accuracy_row_refuses_a_missing_experience():
    with pytest.raises(ValueError, match=r"\[1\]"):
        metrics.accuracy_row({"Top1_Acc_Exp/eval_phase/test_stream/Exp000": 1.0}, 2)


def test_buffer_composition_counts_classes_origins_and_tasks():
    import torch
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
    from avalanche.benchmarks.utils.data_attribute import DataAttribute

    from replay_cli.data.origin import ORIGIN_ATTRIBUTE

    data = _make_taskaware_tensor_classification_dataset(
        torch.zeros(6, 2), torch.tensor([3, 3, 1, 1, 1, 7]), task_labels=[0, 0, 0, 1, 1, 1]
    )
    data = data.__class__([data], data_attributes=[DataAttribute([0, 0, 0, 2, 2, 2], ORIGIN_ATTRIBUTE)])
    composition = metrics.buffer_composition(data.subset([0, 2, 3, 4, 5]))
    assert composition == {
        "size": 5,
        "per_class": {"1": 3, "3": 1, "7": 1},
        "per_experience": {"0": 2, "2": 3},
        "per_task": {"0": 2, "1": 3},
    }
    assert metrics.buffer_composition(None)["size"] == 0


def test_average_incremental_accuracy_is_the_mean_of_the_step_averages():
    # steps: 0.9 (1 seen), (0.7 + 0.8) / 2 = 0.75, (0.6 + 0.5 + 0.9) / 3 = 2/3
    expected = (0.9 + 0.75 + 2.0 / 3) / 3
    assert metrics.average_incremental_accuracy(MATRIX, [1, 2, 3]) == pytest.approx(expected)
    # joint training: one step that saw everything
    assert metrics.average_incremental_accuracy([[0.6, 0.8, 1.0]], [3]) == pytest.approx(0.8)
    assert metrics.average_incremental_accuracy([], []) is None


# An anytime curve over 3 experiences, two points while each one trains.
CURVE = [
    {"samples_seen": 10, "experience": 0, "accuracy": [0.5, 0.0, 0.0]},
    {"samples_seen": 20, "experience": 0, "accuracy": [0.9, 0.0, 0.0]},
    {"samples_seen": 30, "experience": 1, "accuracy": [0.3, 0.6, 0.0]},  # stability gap on exp 0
    {"samples_seen": 40, "experience": 1, "accuracy": [0.7, 0.8, 0.0]},
    {"samples_seen": 50, "experience": 2, "accuracy": [0.6, 0.4, 0.7]},
    {"samples_seen": 60, "experience": 2, "accuracy": [0.65, 0.5, 0.9]},
]


def test_average_anytime_accuracy_averages_over_the_experiences_seen_at_each_point():
    per_point = [0.5, 0.9, (0.3 + 0.6) / 2, (0.7 + 0.8) / 2, (0.6 + 0.4 + 0.7) / 3, (0.65 + 0.5 + 0.9) / 3]
    assert metrics.average_anytime_accuracy(CURVE) == pytest.approx(sum(per_point) / 6)
    assert metrics.average_anytime_accuracy([]) is None


def test_worst_case_accuracy_weights_the_current_experience_and_the_minima_of_the_past_ones():
    # k = 2 (third experience): a_k = 0.9 at the last point; exp 0's minimum after it was learned (points
    # of experiences 1 and 2) is 0.3, exp 1's (points of experience 2) is 0.4
    expected = 0.9 / 3 + (2 / 3) * (0.3 + 0.4) / 2
    assert metrics.worst_case_accuracy(CURVE) == pytest.approx(expected)
    # while the first experience trains, it is just the current accuracy
    assert metrics.worst_case_accuracy(CURVE[:2]) == pytest.approx(0.9)
    # k = 1: (1/2) 0.8 + (1/2) min(0.3, 0.7)
    assert metrics.worst_case_accuracy(CURVE[:4]) == pytest.approx(0.4 + 0.15)
    assert metrics.worst_case_accuracy([]) is None


def test_validation_stream_accuracies_are_read_under_their_own_stream_name():
    evaluation = {
        "Top1_Acc_Exp/eval_phase/valid_stream/Task000/Exp000": 0.25,
        "Top1_Acc_Exp/eval_phase/valid_stream/Task000/Exp001": 0.75,
        "Top1_Acc_Stream/eval_phase/valid_stream/Task000": 0.5,
        "Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp000": 0.9,
    }
    assert metrics.accuracy_row(evaluation, 2, stream="valid") == [0.25, 0.75]
    assert metrics.stream_accuracy(evaluation, stream="valid") == 0.5
    with pytest.raises(ValueError, match="test experiences"):
        metrics.accuracy_row(evaluation, 2)
