"""Every replay method runs on split_digits from its one config word, keeps its buffer within
mem_size (as recorded in results.json), and clearly beats fine-tuning on the same seed."""


import pytest
from torch import nn

from replay_cli.errors import UsageError
from replay_cli.training.experiment import run_experiment
from tests.conftest import compose_config, run_config

METHODS = ["er_ace", "er_aml", "der", "mir", "rar"]
# two epochs, 200 samples of memory (20 per class: ER-AML draws a class's batch from its share)
SHORT = ("strategy.device=cpu", "strategy.train_epochs=2", "seed=0")
MEMORY = ("mem_size=200", "batch_size=16", "batch_size_mem=16")
MARGIN = 0.3  # measured on seed 0: naive 0.19; er_ace 0.79, er_aml 0.89, der 0.80, mir 0.70, rar 0.91


def run(run_dir, *overrides: str) -> dict:
    return run_config(run_dir, *SHORT, *overrides)


@pytest.fixture(scope="module")
def naive(tmp_path_factory) -> dict:
    return run(tmp_path_factory.mktemp("naive"), "strategy=naive", "strategy.train_mb_size=16")


@pytest.mark.parametrize("method", METHODS)
def test_method_keeps_its_buffer_within_memory_and_beats_naive(method, naive, tmp_path):
    results = run(tmp_path, f"strategy={method}", *MEMORY)
    assert results["status"] == "completed" and len(results["accuracy_matrix"]) == 5
    sizes = [step["size"] for step in results["buffer_composition"]]
    assert all(0 < size <= 200 for size in sizes) and sizes[-1] == 200, sizes
    last = results["buffer_composition"][-1]
    assert sorted(last["per_class"]) == [str(c) for c in range(10)]  # every digit kept
    assert sum(last["per_class"].values()) == sum(last["per_experience"].values()) == 200
    assert results["final_average_accuracy"] > naive["final_average_accuracy"] + MARGIN


class Featureless(nn.Module):
    """A model with no ``features`` block (as a user's own module might be)."""

    def __init__(self, input_shape, num_classes, **unused):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    def forward(self, x):
        return self.net(x)


def test_er_aml_refuses_a_model_without_features_before_training(tmp_path):
    cfg = compose_config("strategy=er_aml", "model._target_=tests.test_strategies.Featureless")
    with pytest.raises(UsageError, match="strategy=er_aml needs a model with a `features` block"):
        run_experiment(cfg, tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_der_buffer_keeps_logits_and_counts_samples():
    """DER's buffer stores each sample's logits (the model's output once the experience is learnt);
    the composition counts samples, not logits."""
    import torch

    from replay_cli.reporting.metrics import buffer_composition
    from replay_cli.strategies.build import build_strategy, method_buffer
    from replay_cli.training import builders

    cfg = compose_config("strategy=der", "mem_size=50", "strategy.train_epochs=1", "strategy.device=cpu")
    benchmark = builders.build_benchmark(cfg)
    strategy = build_strategy(cfg, builders.build_model(cfg, benchmark))
    strategy.train(benchmark.train_stream[0])
    buffer = method_buffer(strategy).buffer
    x, y, _task, logits = buffer[0]
    with torch.no_grad():
        assert torch.allclose(strategy.model.eval()(x[None])[0], logits, atol=1e-5)
    composition = buffer_composition(buffer)
    assert composition["size"] == len(buffer) == 50
    assert set(composition["per_class"]) == {"0", "1"} and int(y) in (0, 1)


@pytest.mark.parametrize(("mem_size", "refused"), [(320, False), (319, True)])
def test_er_aml_accepts_a_batch_up_to_each_class_share(mem_size, refused):
    """32 per step from each of 10 classes' shares: 320 samples suffice, 319 leave a share of 31."""
    from replay_cli.config.validation import validate_against_benchmark
    from replay_cli.errors import ConfigError
    from replay_cli.training import builders

    cfg = compose_config("strategy=er_aml", f"mem_size={mem_size}", "batch_size=32")
    benchmark = builders.build_benchmark(cfg)
    if refused:
        with pytest.raises(ConfigError, match="batch_size=32 is invalid: expected an integer <= 31"):
            validate_against_benchmark(cfg, benchmark)
    else:
        validate_against_benchmark(cfg, benchmark)


ONLINE_METHODS = ["er_ace", "er_aml", "mir", "gss_greedy", "scr", "gdumb"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ONLINE_METHODS)
def test_online_methods_run_under_the_online_protocol(method, tmp_path):
    """The methods the online-learning literature runs one pass over mini-experiences (64 samples:
    GSS-greedy needs one minibatch of new plus replayed samples)."""
    results = run(
        tmp_path,
        f"strategy={method}",
        "protocol=online",
        "protocol.experience_size=64",
        "strategy.train_epochs=1",
        "mem_size=320",
    )
    assert results["status"] == "completed" and len(results["accuracy_matrix"]) == 5
    sizes = [step["size"] for step in results["buffer_composition"]]
    assert len(sizes) == 5 and 0 < sizes[-1] <= 320 and max(sizes) <= 320
    assert results["config"]["protocol"]["name"] == "online"
