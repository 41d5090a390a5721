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
