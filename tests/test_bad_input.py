"""Bad input ends with exit code 2 and one line naming the key and what is allowed: no traceback."""

import pytest

from tests.conftest import replay_run

BAD_INPUTS = [
    (["mem_size=-5"], "mem_size=-5 is invalid: expected an integer >= 1"),
    (["mem_size=abc"], "mem_size=abc is invalid: expected an integer >= 1"),
    (["storage=nope"], "storage=nope is not an option; choose one of: class_balanced, closest_to_center"),
    (["batch_size_mem=0"], "batch_size_mem=0 is invalid: expected an integer >= 1"),
    (["task_balanced_dataloader=maybe"], "task_balanced_dataloader=maybe is invalid: expected true or false"),
    (["strategy.train_epochs=0"], "strategy.train_epochs=0 is invalid: expected an integer >= 1"),
    (["benchmark=nope"], "benchmark=nope is not an option; choose one of: permuted_mnist, rotated_mnist"),
    (["model=nope"], "model=nope is not an option; choose one of: cnn, mlp"),
    (["mem_sizee=3"], "mem_sizee is not a config key"),
    (["strategy.optimizer=rmsprop"], "strategy.optimizer=rmsprop is invalid: expected one of: sgd, adam"),
    (["strategy.lr=0"], "strategy.lr=0 is invalid: expected a number in (0, 10]"),
    (["strategy.device=tpu"], "strategy.device=tpu is invalid: expected auto, cpu, cuda or cuda:N"),
    (
        ["storage=class_balanced", "storage.policy.adaptive_size=false"],
        "storage.policy.total_num_classes=null",
    ),
    (
        ["storage.policy.max_size=300"],
        "storage.policy.max_size=300 is invalid: expected the value of mem_size",
    ),
    (["benchmark.n_experiences=11"], "benchmark.n_experiences=11 is invalid: expected an integer in [1, 10]"),
    (
        ["benchmark.class_order=[1,2]"],
        "benchmark.class_order=[1, 2] is invalid: expected a permutation of 0..9",
    ),
    (["storage=herding", "storage.layer_name=fc9"], "storage.layer_name=fc9 is invalid: expected a layer of"),
    (["x=["], "could not parse override"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=[" ".join(o) for o, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(overrides, message, tmp_path):
    result = replay_run(*overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("replay-run: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert not list(tmp_path.glob("outputs/runs/*/*/results.json")), "no results for a run that never started"


def test_hydra_full_error_keeps_the_traceback(tmp_path):
    result = replay_run("mem_size=-5", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "ConfigError" in result.stderr
