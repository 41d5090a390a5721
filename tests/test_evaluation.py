"""The run's evaluator: Avalanche's accuracy metrics, dispatched in the eval phase only."""

from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.training.plugins import SupervisedPlugin

from replay_cli.reporting.evaluation import EvalPhaseAccuracy
from tests.test_faithful import default_replay_plugin, plain_avalanche_run


def all_metrics(evaluator=None) -> dict:
    """Every metric value (x and y) of two replay experiences with their evaluations, seed 0."""
    benchmark, strategy, _ = plain_avalanche_run(
        seed=0, epochs=1, evaluator=evaluator, plugins=[default_replay_plugin()]
    )
    for experience in benchmark.train_stream[:2]:
        strategy.train(experience)
        strategy.eval(benchmark.test_stream)
    return strategy.evaluator.get_all_metrics()


def test_same_metric_values_as_avalanches_evaluation_plugin():
    ours, avalanche = all_metrics(EvalPhaseAccuracy()), all_metrics()
    assert ours == avalanche
    assert len(ours) == 6  # 5 test experiences and the stream
    steps, values = ours["Top1_Acc_Exp/eval_phase/test_stream/Exp001"]
    assert len(steps) == 2 and values[0] == 0.0 and values[1] > 0.5  # learnt in the second step


def test_the_callbacks_the_accuracy_metrics_ignore_are_skipped():
    metrics = EvalPhaseAccuracy().metrics
    # why skipping is safe: eval mode, no reset per iteration, nothing around the forward pass
    assert {(metric._mode, metric._reset_at) for metric in metrics} == {
        ("eval", "experience"),
        ("eval", "stream"),
    }
    for name in ("before_eval_forward", "after_eval_forward"):  # PluginMetric's no-ops, not overridden
        assert all(getattr(type(metric), name) is getattr(PluginMetric, name) for metric in metrics)
    training = {
        name
        for name in dir(SupervisedPlugin)
        if name.startswith(("before_", "after_")) and "eval" not in name
    }
    assert len(training) == 16
    skipped = training | {"before_eval_iteration", "before_eval_forward", "after_eval_forward"}
    assert {name for name in skipped if name not in vars(EvalPhaseAccuracy)} == set()
    assert "after_eval_iteration" not in vars(EvalPhaseAccuracy)  # where the accuracy is counted
