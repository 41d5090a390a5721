"""Cost accounting (replay_cli/reporting/cost.py): FLOPs against a hand count, extra passes of MIR and
RAR counted, buffer bytes, and runs that give the same numbers with the instruments on and off."""

from __future__ import annotations

import pytest
import torch

from replay_cli.models.networks import MLP
from replay_cli.reporting.cost import EVAL, TRAIN, CostPlugin, buffer_bytes, hook_model

FAST = ("strategy.train_epochs=1", "benchmark.n_experiences=3", "mem_size=60")


def _hand_count(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """FLOPs per sample of Linear layers (in, out), as torch counts a matmul (2*in*out): forward
    once each; backward the weight gradient of each plus the input gradient of all but the first
    (the input needs none)."""
    forward = sum(2 * i * o for i, o in sizes)
    backward = forward + sum(2 * i * o for i, o in sizes[1:])
    return forward, backward


def test_flops_of_a_known_mlp_step_match_a_hand_count():
    torch.manual_seed(0)
    model = MLP((1, 8, 8), num_classes=10, hidden_sizes=(32, 16))
    counter = CostPlugin()
    hook_model(model, counter)
    counter._model = model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))

    counter.phase = TRAIN
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    counter.phase = EVAL
    with torch.no_grad():
        model(torch.randn(5, 1, 8, 8))

    weights = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    rng = torch.get_rng_state()
    cost = counter.step_cost(buffer_bytes=None)

    forward, backward = _hand_count([(64, 32), (32, 16), (16, 10)])
    assert cost["train_forward_samples"] == 8 and cost["train_backward_samples"] == 8
    assert cost["train_flops"] == 8 * (forward + backward)
    assert cost["eval_forward_samples"] == 5 and cost["eval_flops"] == 5 * forward
    assert cost["peak_rss_bytes"] > 10**7 and cost["cuda_max_allocated_bytes"] is None
    # measuring FLOPs left the model, its gradients and the random generator as they were
    assert all(torch.equal(a, p) for a, p in zip(weights, model.parameters(), strict=True))
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, model.parameters(), strict=True))
    assert torch.equal(rng, torch.get_rng_state())
    # counts start again after each step
    assert counter.step_cost(buffer_bytes=0)["train_flops"] == 0


def test_the_flops_of_a_model_that_grows_are_its_own_at_each_step():
    """A head that grows (as a head per class or task does) changes the FLOPs of later steps."""
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)
    )
    counter = CostPlugin()
    hook_model(model, counter)
    counter._model = model

    def step() -> float:
        model(torch.randn(4, 1, 8, 8)).sum().backward()
        return counter.step_cost(buffer_bytes=None)["train_flops"] / 4

    assert step() == step() == sum(_hand_count([(64, 32), (32, 10)]))
    model[3] = torch.nn.Linear(32, 20)
    assert step() == sum(_hand_count([(64, 32), (32, 20)]))
    model[1].requires_grad_(False)  # frozen: the backward computes the head's weight gradient only
    assert step() == _hand_count([(64, 32), (32, 20)])[0] + 2 * 32 * 20


def test_autograd_grad_counts_as_a_backward_pass_and_copies_report_to_the_same_counter():
    """MIR's virtual update takes gradients with torch.autograd.grad and forwards a deep copy."""
    import copy

    model = MLP((4,), num_classes=3, hidden_sizes=(5,))
    counter = CostPlugin()
    hook_model(model, counter)
    loss = model(torch.randn(6, 4)).sum()
    torch.autograd.grad(loss, list(model.parameters()))
    twin = copy.deepcopy(model)
    twin(torch.randn(2, 4)).sum().backward()
    assert counter.counts.samples(TRAIN, "forward") == 8
    assert counter.counts.samples(TRAIN, "backward") == 8


def _naive_on_40_samples(plugins: list, epochs: int = 1) -> tuple:
    """Avalanche's Naive strategy with ``plugins`` and one experience of 40 samples of 4 features
    (seeded) to train it on, in minibatches of 16, 16 and 8."""
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.training import Naive

    from replay_cli.data.avalanche_internals import tensor_classification_dataset

    torch.manual_seed(0)
    data = tensor_classification_dataset(torch.randn(40, 4), torch.arange(40) % 3, task_labels=[0] * 40)
    model = MLP((4,), num_classes=3, hidden_sizes=(5,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    strategy = Naive(
        model=model,
        optimizer=optimizer,
        train_mb_size=16,
        train_epochs=epochs,
        plugins=plugins,
        evaluator=None,
    )
    return strategy, benchmark_from_datasets(train=[data], test=[data]).train_stream[0]


@pytest.mark.parametrize("epochs", [2, 7])  # 7: more iterations than are logged before counting
def test_the_training_loops_passes_and_a_plugins_extra_passes_are_each_counted_once(epochs):
    """The loop's own backward is counted at ``after_backward``; a plugin's extra passes (here a
    virtual update by ``torch.autograd.grad``, like MIR's, and scoring without gradients) by the
    hook on their output: every sample exactly once, and the run's numbers as without the counter."""
    from avalanche.training.plugins import SupervisedPlugin

    class ExtraPasses(SupervisedPlugin):
        def before_backward(self, strategy, **kwargs):
            loss = strategy.model(torch.ones(3, 4)).sum()
            torch.autograd.grad(loss, list(strategy.model.parameters()))

        def after_forward(self, strategy, **kwargs):
            with torch.no_grad():
                strategy.model(torch.ones(2, 4))

    def train(counted: bool) -> tuple[CostPlugin, list[torch.Tensor]]:
        counter = CostPlugin()
        strategy, experience = _naive_on_40_samples([ExtraPasses(), *([counter] if counted else [])], epochs)
        strategy.train(experience)
        return counter, [p.detach().clone() for p in strategy.model.parameters()]

    counter, weights = train(counted=True)
    iterations = epochs * 3  # minibatches of 16, 16 and 8
    assert counter.counts.samples(TRAIN, "backward") == epochs * 40 + 3 * iterations
    assert counter.counts.samples(TRAIN, "forward") == epochs * 40 + (3 + 2) * iterations
    _, uncounted = train(counted=False)
    assert all(torch.equal(a, b) for a, b in zip(weights, uncounted, strict=True))


@pytest.mark.parametrize("stop_after", [2, None])
def test_a_lifted_epoch_counts_the_batches_it_trained_on(stop_after):
    """Where only the loop calls the model, its passes are read from the batches the epoch draws:
    one forward and one backward per sample trained on, none for the batch Avalanche draws after it
    was told to stop, the hook back for the passes after training (a storage policy's, stopped
    early or not), and the strategy's own loader back after the epoch."""
    from avalanche.training.plugins import SupervisedPlugin

    from replay_cli.reporting.cost import DrawnBatches

    class StopEarly(SupervisedPlugin):
        model_free_iterations = True
        iterations = 0

        def after_training_iteration(self, strategy, **kwargs):
            assert isinstance(strategy.dataloader, DrawnBatches)  # the hook is lifted in the epoch
            self.iterations += 1
            if self.iterations == stop_after:
                strategy.stop_training()

        def after_training_exp(self, strategy, **kwargs):  # as herding's feature pass
            with torch.no_grad():
                strategy.model(torch.ones(5, 4))

    counter = CostPlugin()
    strategy, experience = _naive_on_40_samples([StopEarly(), counter], epochs=2)
    strategy.train(experience)
    trained = 16 * stop_after if stop_after else 2 * 40  # minibatches of 16, 16 and 8
    assert counter.counts.samples(TRAIN, "forward") == trained + 5
    assert counter.counts.samples(TRAIN, "backward") == trained
    assert not isinstance(strategy.dataloader, DrawnBatches)


def test_an_epoch_an_error_ended_counts_the_iterations_it_did():
    """A training call an error ended (its iterations done count, not the one the error stopped) and
    the next call on the same strategy, counted in full."""
    from avalanche.training.plugins import SupervisedPlugin

    class FailsOnce(SupervisedPlugin):
        model_free_iterations = True
        iterations = 0

        def before_training_iteration(self, strategy, **kwargs):
            self.iterations += 1
            if self.iterations == 3:
                raise RuntimeError("an error in the third iteration")

    counter = CostPlugin()
    strategy, experience = _naive_on_40_samples([FailsOnce(), counter])
    with pytest.raises(RuntimeError):
        strategy.train(experience)
    strategy.train(experience)
    assert counter.counts.samples(TRAIN, "backward") == 2 * 16 + 40


def test_der_buffer_bytes_include_its_logits(run_in_process, tmp_path):
    results = _cost(run_in_process, tmp_path, "strategy=der")
    # float digits (64 x 4 bytes), label, task label, and 10 float logits
    assert results["buffer_bytes"] == 60 * (64 * 4 + 8 + 8 + 10 * 4)


def test_buffer_bytes_count_stored_inputs_labels_and_task_labels():
    from replay_cli.data.avalanche_internals import tensor_classification_dataset

    images = torch.zeros(7, 1, 28, 28, dtype=torch.uint8)
    dataset = tensor_classification_dataset(images, torch.zeros(7, dtype=torch.long), task_labels=[0] * 7)
    per_sample = 28 * 28 + 8 + 8  # uint8 pixels, int64 label, int64 task label
    assert buffer_bytes(dataset) == 7 * per_sample
    assert buffer_bytes(None) == 0


def _cost(run_in_process, tmp_path, *overrides: str) -> dict:
    name = "-".join(o.replace("=", "_").replace("/", "_") for o in overrides) or "default"
    return run_in_process(*FAST, *overrides, run_dir=tmp_path / name)


@pytest.mark.parametrize(
    "overrides",
    # a multi-head model with evaluations inside epochs; herding's feature passes after the last epoch;
    # GDumb: a new model (a copy of the first) each experience
    [
        (),
        ("model.head=multi", "protocol.eval_every=100"),
        ("storage=herding", "strategy.train_epochs=2"),
        ("strategy=gdumb",),
    ],
    ids=["replay", "multi-head-periodic-eval", "herding", "gdumb"],
)
def test_lifting_the_hook_in_plain_epochs_counts_what_the_hook_counts(
    run_in_process, tmp_path, monkeypatch, overrides
):
    """Plain replay is counted without the hook inside epochs; the same run with the hook throughout
    gives the same cost, replay counts and accuracy."""
    from replay_cli.reporting import cost

    asked = []
    real = cost.only_the_loop_calls_the_model
    monkeypatch.setattr(
        cost, "only_the_loop_calls_the_model", lambda *a, **k: asked.append(real(*a, **k)) or asked[-1]
    )
    drawn = []
    real_drew = cost.CostPlugin.drew
    monkeypatch.setattr(
        cost.CostPlugin, "drew", lambda self, batch: drawn.append(1) or real_drew(self, batch)
    )
    lifted = _cost(run_in_process, tmp_path / "lifted", *overrides)
    assert asked and all(asked)  # plain: lifted in every training call
    assert drawn  # the loop's passes were read from the batches it drew
    monkeypatch.setattr(cost, "only_the_loop_calls_the_model", lambda *a, **k: False)
    drawn.clear()
    hooked = _cost(run_in_process, tmp_path / "hooked", *overrides)
    assert not drawn
    for results in (lifted, hooked):
        for step in results["cost"]["per_step"]:
            for key in ("peak_rss_bytes", "cuda_max_allocated_bytes"):
                step.pop(key)
    assert lifted["cost"]["per_step"] == hooked["cost"]["per_step"]
    assert lifted["cost"]["per_step"][-1]["train_backward_samples"] > 0
    assert [s["replay_counts"] for s in lifted["diagnostics"]["per_step"]] == [
        s["replay_counts"] for s in hooked["diagnostics"]["per_step"]
    ]
    assert lifted["accuracy_matrix"] == hooked["accuracy_matrix"]


def test_only_plain_replay_lifts_the_hook():
    """A strategy with its own loop or a plugin that may call the model keeps the hook."""
    from avalanche.core import SupervisedPlugin
    from avalanche.training import Naive

    from replay_cli.reporting.cost import only_the_loop_calls_the_model

    class Scoring(SupervisedPlugin):
        def before_backward(self, strategy, **kwargs):
            strategy.model(strategy.mb_x)

    class Quiet(SupervisedPlugin):
        model_free_iterations = True

        def after_update(self, strategy, **kwargs):
            pass

    class OwnCriterion(Naive):
        def criterion(self):
            return self.model(self.mb_x).sum()

    class TwoViews(Naive):  # the model sees more than the minibatch drawn
        def _unpack_minibatch(self):
            super()._unpack_minibatch()
            self.mbatch = [torch.cat([field, field]) for field in self.mbatch]

    class Named(Naive):
        """Only a constructor of its own."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)

    def strategy(*plugins, kind=Naive, **kwargs):
        model = MLP((4,), num_classes=3, hidden_sizes=(5,))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        return kind(model=model, optimizer=optimizer, plugins=list(plugins), evaluator=None, **kwargs)

    own = CostPlugin()
    assert only_the_loop_calls_the_model(strategy(own, Quiet()), own)
    assert not only_the_loop_calls_the_model(strategy(own, Scoring()), own)
    assert not only_the_loop_calls_the_model(strategy(own, kind=OwnCriterion), own)
    assert not only_the_loop_calls_the_model(strategy(own, criterion=lambda out, y: out.sum()), own)
    assert not only_the_loop_calls_the_model(strategy(own, kind=TwoViews), own)
    assert only_the_loop_calls_the_model(strategy(own, kind=Named), own)


def test_mir_and_rar_cost_more_than_replay_at_the_same_settings(run_in_process, tmp_path):
    replay = _cost(run_in_process, tmp_path, "strategy=replay")
    mir = _cost(run_in_process, tmp_path, "strategy=mir")
    rar = _cost(run_in_process, tmp_path, "strategy=rar", "storage=reservoir")
    for results in (replay, mir, rar):
        assert results["cost"]["per_step"] and results["train_flops"] > 0
    for method in (mir, rar):
        assert method["train_flops"] > replay["train_flops"]
        assert method["cost"]["train_forward_samples"] > replay["cost"]["train_forward_samples"]
    # MIR scores its candidates with forward passes only: more forward than backward samples
    assert mir["cost"]["train_forward_samples"] > mir["cost"]["train_backward_samples"]
    # the summary's figures are the sums and maxima of the steps'
    steps = replay["cost"]["per_step"]
    assert replay["train_flops"] == sum(s["train_flops"] for s in steps)
    assert replay["buffer_bytes"] == max(s["buffer_bytes"] for s in steps) == 60 * (64 * 4 + 8 + 8)


def test_results_are_the_same_with_instruments_on_and_off(run_in_process, tmp_path):
    on = _cost(run_in_process, tmp_path, "instruments=true")
    off = _cost(run_in_process, tmp_path, "instruments=false")
    for key in ("accuracy_matrix", "buffer_composition", "per_class_accuracy", "confusion_matrix"):
        assert on[key] == off[key], key
    assert off["cost"]["per_step"] == [] and off["train_flops"] is None
    assert len(on["cost"]["per_step"]) == 3 and len(on["diagnostics"]["per_step"]) == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    "strategy",
    [
        "naive",
        "replay",
        "der",
        "er_ace",
        "er_aml",
        "mir",
        "rar",
        "gdumb",
        "gss_greedy",
        "icarl",
        "bic",
        "scr",
        "cumulative",
        "joint",
        "gem",
        "agem",
        "generative_replay",
    ],
)
def test_every_strategy_reports_its_cost(run_in_process, tmp_path, strategy):
    results = _cost(run_in_process, tmp_path, f"strategy={strategy}", "mem_size=320")
    cost = results["cost"]
    assert len(cost["per_step"]) == results["n_steps"]
    assert cost["train_flops"] > 0 and cost["eval_flops"] > 0 and cost["peak_rss_bytes"] > 0
    assert results["buffer_bytes"] is not None or strategy == "scr"
    if strategy in ("gem", "agem", "generative_replay"):  # memories of their own, counted in bytes
        assert all(step["buffer_bytes"] > 0 for step in cost["per_step"])


@pytest.mark.slow  # a W&B run: 11 s
def test_wandb_logs_cost_and_diagnostics_per_step_and_the_budgets_in_its_summary(tmp_path):
    """W&B (offline, read back): cost/ and diagnostics/ series, the gallery image, the summary."""
    import json

    from replay_cli.reporting.wandb_records import offline_runs
    from tests.conftest import replay_run, single_run_dir

    result = replay_run(*FAST, "logger=wandb", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = single_run_dir(tmp_path)
    results = json.loads((run_dir / "results.json").read_text())
    (run,) = offline_runs(run_dir / "wandb")
    rows = [row for row in run.history if "accuracy/exp_0" in row]
    for step, row in enumerate(rows):
        cost = results["cost"]["per_step"][step]
        assert row["cost/train_flops"] == cost["train_flops"]
        assert row["cost/buffer_bytes"] == cost["buffer_bytes"]
        assert row["diagnostics/buffer_gallery/_type"] == "image-file"
        diagnostics = results["diagnostics"]["per_step"][step]
        assert row["diagnostics/forgetting_events/total"] == diagnostics["forgetting_events"]["total"]
    assert rows[-1]["diagnostics/replay_counts/replays"] > 0
    assert run.summary["train_flops"] == results["train_flops"]
    assert run.summary["buffer_bytes"] == results["buffer_bytes"]


def test_instruments_must_be_a_boolean():
    from replay_cli.config.validation import validate
    from replay_cli.errors import ConfigError
    from tests.conftest import compose_config

    with pytest.raises(ConfigError, match="instruments=maybe is invalid"):
        validate(compose_config("instruments=maybe"))


def test_a_loop_without_after_backward_keeps_a_bounded_log_and_a_forward_left_open_is_closed():
    """Forward-only iterations are counted as forwards (their inputs not held for a whole step); a
    forward the loop never closed (an error inside it) does not swallow the evaluation's passes."""

    class Strategy:  # a loop of its own: the hook stays
        model = MLP((4,), num_classes=3, hidden_sizes=(5,))
        device, dataloader = torch.device("cpu"), ()

    strategy, counter = Strategy(), CostPlugin()
    counter.before_training_exp(strategy)
    for _ in range(70):
        counter.before_forward(strategy)
        strategy.model(torch.randn(2, 4))
        assert len(counter.loop_passes) == 1 and not counter._loop_log
    counter.before_forward(strategy)  # left open: the next phase starts anyway
    counter.before_eval(strategy)
    with torch.no_grad():
        strategy.model(torch.randn(5, 4))
    counter.after_eval(strategy)
    counter.count_logged()
    assert counter.counts.samples(TRAIN, "forward") == 140
    assert counter.counts.samples(TRAIN, "backward") == 0
    assert counter.counts.samples(EVAL, "forward") == 5
