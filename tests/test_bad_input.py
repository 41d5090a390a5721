"""Bad input ends with exit code 2 and one line naming the key and what is allowed: no traceback,
and nothing of other runs touched."""

import json

import pytest

from tests.conftest import replay_run

BAD_INPUTS = [
    (["mem_size=-5"], "mem_size=-5 is invalid: expected an integer >= 1"),
    (
        ["protocol=online", "protocol.experience_size=0"],
        "protocol.experience_size=0 is invalid: expected an integer >= 1",
    ),
    (
        ["protocol=online", "protocol.eval_every=0"],
        "protocol.eval_every=0 is invalid: expected an integer >= 1 or null",
    ),
    (
        ["replay_update=iteration", "task_balanced_dataloader=true"],
        "replay_update=iteration is invalid: expected experience with task_balanced_dataloader=true",
    ),
    (
        ["protocol=online", "protocol.loop=once"],
        "protocol.loop=once is invalid: expected one of: one_call, per_mini_experience",
    ),
    (
        ["protocol=online", "protocol.loop=one_call", "strategy=er_ace"],
        "protocol.loop=one_call is invalid: expected per_mini_experience with strategy=er_ace (it updates "
        "its own buffer once per training call)",
    ),
    (
        ["protocol=online", "task_balanced_dataloader=true"],
        "protocol.loop=one_call is invalid: expected per_mini_experience with task_balanced_dataloader=true",
    ),
    (["replay_update=always"], "replay_update=always is invalid: expected one of: experience, iteration"),
    (["strategy=joint", "protocol=online"], "protocol=online cannot train strategy=joint"),
    (
        ["strategy=naive", "replay_update=iteration"],
        "replay_update=iteration has no effect with strategy=naive",
    ),
    (["mem_size=abc"], "mem_size=abc is invalid: expected an integer >= 1"),
    (["num_threads=0"], "num_threads=0 is invalid: expected an integer >= 1 or null"),
    (["storage=nope"], "storage=nope is not an option; choose one of: class_balanced, closest_to_center"),
    (["batch_size_mem=0"], "batch_size_mem=0 is invalid: expected an integer >= 1"),
    (["task_balanced_dataloader=maybe"], "task_balanced_dataloader=maybe is invalid: expected true or false"),
    (["strategy.train_epochs=0"], "strategy.train_epochs=0 is invalid: expected an integer >= 1"),
    (["benchmark=nope"], "benchmark=nope is not an option; choose one of: core50, permuted_mnist, rotated"),
    (["model=nope"], "model=nope is not an option; choose one of: cnn, mlp"),
    (["mem_sizee=3"], "mem_sizee is not a config key"),
    (["optimizer=rmsprop"], "optimizer=rmsprop is not an option; choose one of: adam, sgd"),
    (["optimizer.lr=0"], "optimizer.lr=0 is invalid: expected a number in (0, 10]"),
    (["strategy.device=tpu"], "strategy.device=tpu is invalid: expected auto, cpu, cuda or cuda:N"),
    (
        ["storage=class_balanced", "storage.policy.adaptive_size=false"],
        "storage.policy.total_num_classes=null",
    ),
    (
        ["storage.policy.max_size=300"],
        "storage.policy.max_size=300 is invalid: expected the value of mem_size",
    ),
    (
        ["benchmark.validation_size=1"],
        "benchmark.validation_size=1 is invalid: expected a number in [0, 1)",
    ),
    (
        ["benchmark.validation_size=0.001"],
        "benchmark.validation_size=0.001 is invalid: expected a fraction in (0, 1) leaving every class of "
        "every experience training and validation samples (class 0 of experience 0 has",
    ),
    (["stop_after=0"], "stop_after=0 is invalid: expected an integer >= 1 or null"),
    (
        ["stop_after=6"],
        "stop_after=6 is invalid: expected an integer in [1, 5] (the benchmark's experiences)",
    ),
    (["benchmark.n_experiences=11"], "benchmark.n_experiences=11 is invalid: expected an integer in [1, 10]"),
    (
        ["benchmark.class_order=[1,2]"],
        "benchmark.class_order=[1, 2] is invalid: expected a permutation of 0..9",
    ),
    (["storage=herding", "storage.layer_name=fc9"], "storage.layer_name=fc9 is invalid: expected a layer of"),
    (["x=["], "could not parse override"),
    (["strategy=naive", "mem_size=100"], "mem_size=100 has no effect with strategy=naive"),
    (["strategy=joint", "storage=reservoir"], "storage=reservoir has no effect with strategy=joint"),
    (["logger.mode=loud"], "logger.mode=loud is invalid: expected one of: auto, online, offline, disabled"),
    (["hydra.run.dir=/proc/replay-run"], "cannot write or read /proc/replay-run"),
    (["resume=does/not/exist"], "resume=does/not/exist: no such run directory"),
    (
        ["benchmark=split_mnist", "benchmark.dataset_root=/nonexistent/data", "benchmark.download=false"],
        "MNIST files not found: expected train-images-idx3-ubyte.gz",
    ),
    (["resume=."], "resume=.: no checkpoint.pt there"),
    (
        [
            "storage=class_balanced",
            "mem_size=5",
            "storage.policy.adaptive_size=false",
            "storage.policy.total_num_classes=10",
        ],
        "mem_size=5 with storage.policy.total_num_classes=10 (adaptive_size=false) gives each class 0",
    ),
    (
        ["mem_size=3", "storage.policy.adaptive_size=false", "storage.policy.num_experiences=5"],
        "mem_size=3 with storage.policy.num_experiences=5 (adaptive_size=false) gives each experience 0",
    ),
    # W&B's own limits, checked before training (W&B would refuse them only once the run is set up)
    (["logger.tags=['']"], "logger.tags=[''] is invalid: expected a list of tags of 1 to 64 characters"),
    ([f"logger.tags=[{'t' * 70}]"], "is invalid: expected a list of tags of 1 to 64 characters each"),
    (["logger.project=my/study"], "logger.project=my/study is invalid: expected a W&B project name"),
    # methods with their own buffer: their hyperparameters, the keys they ignore, what they need
    (
        ["strategy=gss_greedy", "strategy.mem_strength=0"],
        "strategy.mem_strength=0 is invalid: expected an integer >= 1",
    ),
    (
        ["strategy=gss_greedy", "mem_size=40"],
        "mem_size=40 is invalid: expected an integer >= 64 with strategy=gss_greedy",
    ),
    (
        ["strategy=scr", "strategy.temperature=0"],
        "strategy.temperature=0 is invalid: expected a number in (0, 10]",
    ),
    (
        ["strategy=scr", "strategy.projection_size=x"],
        "strategy.projection_size=x is invalid: expected an integer >= 1",
    ),
    (
        ["strategy=scr", "strategy.augment.crop_scale=[0.9,0.2]"],
        "strategy.augment.crop_scale=[0.9, 0.2] is invalid",
    ),
    (
        ["strategy=scr", "strategy.augment.grayscale_p=2"],
        "strategy.augment.grayscale_p=2 is invalid: expected a number in [0, 1]",
    ),
    (
        ["strategy=scr", "strategy.augment.color_jitter=[0.4,0.4,0.4,0.9]"],
        "strategy.augment.color_jitter=[0.4, 0.4, 0.4, 0.9] is invalid",
    ),
    (
        ["strategy=bic", "strategy.plugins.bic.val_percentage=1"],
        "strategy.plugins.bic.val_percentage=1 is invalid: expected a number in (0, 1)",
    ),
    (["strategy=bic", "strategy.plugins.bic.lamb=2"], "strategy.plugins.bic.lamb=2 is invalid: expected -1"),
    (
        ["strategy=bic", "strategy.plugins.bic.stage_2_epochs=0"],
        "strategy.plugins.bic.stage_2_epochs=0 is invalid: expected an integer >= 1",
    ),
    (
        ["strategy=bic", "strategy.plugins.bic.lr=0"],
        "strategy.plugins.bic.lr=0 is invalid: expected a number in (0, 10]",
    ),
    (  # SCR's augmentations read images: a vector of synthetic features is refused before training
        ["strategy=scr", "benchmark=synthetic", "benchmark.input_shape=[5]"],
        "benchmark.input_shape=[5] is invalid: expected an image shape [channels, height, width] with 1 or 3",
    ),
    (
        ["strategy=gss_greedy", "protocol=online"],
        "protocol.experience_size=10 is invalid: expected an integer >= 64 with strategy=gss_greedy",
    ),
    (  # Avalanche's LaMAML drops an incomplete minibatch: mini-experiences of 10 would train nothing
        ["strategy=lamaml", "protocol=online"],
        "protocol.experience_size=10 is invalid: expected an integer >= 32 (the training minibatch, "
        "strategy.train_mb_size) with strategy=lamaml online",
    ),
    (
        ["protocol=online", "protocol.loop=one_call", "protocol.access_task_boundaries=true"],
        "protocol.access_task_boundaries=true is invalid: expected false with protocol.loop=one_call",
    ),
    (  # refused before any trial runs: the objective reads the validation stream
        ["hparams_search=optuna", "benchmark.validation_size=0", "hydra.sweeper.n_trials=3"],
        "benchmark.validation_size=0 is invalid: expected a fraction in (0, 1) with "
        "hparams_search.objective=validation.final_average_accuracy",
    ),
    (
        ["hparams_search=optuna", "hydra.sweeper.n_trials=0"],
        "hydra.sweeper.n_trials=0 is invalid: expected an integer >= 1",
    ),
    (["strategy=gdumb", "batch_size_mem=8"], "batch_size_mem=8 has no effect with strategy=gdumb"),
    (["strategy=icarl", "storage=reservoir"], "storage=reservoir has no effect with strategy=icarl"),
    (["strategy=icarl", "model.head=multi"], "model.head=multi is invalid: expected single (strategy=icarl"),
    (["strategy=bic", "model.head=multi"], "model.head=multi is invalid: expected single (strategy=bic"),
    (
        ["strategy=icarl", "mem_size=5"],
        "mem_size=5 is invalid: expected an integer >= 10 with strategy=icarl",
    ),
    # the replay methods' own hyperparameters, and the common keys a method with its own buffer ignores
    (["strategy=der", "strategy.alpha=-1"], "strategy.alpha=-1 is invalid: expected a number >= 0"),
    (["strategy=der", "strategy.beta=lots"], "strategy.beta=lots is invalid: expected a number >= 0"),
    (["strategy=mir", "strategy.subsample=0"], "strategy.subsample=0 is invalid: expected an integer >= 1"),
    (
        ["strategy=mir", "strategy.subsample=10"],
        "strategy.subsample=10 is invalid: expected an integer >= batch_size_mem (32)",
    ),
    (["strategy=er_aml", "strategy.temp=0"], "strategy.temp=0 is invalid: expected a number > 0"),
    (
        ["strategy=er_aml", "mem_size=200"],
        "batch_size=32 is invalid: expected an integer <= 20 with strategy=er_aml",
    ),
    (
        ["strategy=rar", "strategy.plugins.rar.epsilon_fgsm=2"],
        "strategy.plugins.rar.epsilon_fgsm=2 is invalid: expected a number in [0, 1]",
    ),
    (
        ["strategy=rar", "strategy.plugins.rar.name_ext_layer=nope"],
        "strategy.plugins.rar.name_ext_layer=nope is invalid: expected null or a node: features.0, ",
    ),
    (  # the input placeholder is a node of the traced graph, not a feature layer
        ["strategy=rar", "strategy.plugins.rar.name_ext_layer=x"],
        "strategy.plugins.rar.name_ext_layer=x is invalid: expected null or a node: features.0, ",
    ),
    (  # online, every mini-experience is an experience group: 5 fixed shares would outgrow mem_size
        [
            "protocol=online",
            "storage=experience_balanced",
            "storage.policy.adaptive_size=false",
            "storage.policy.num_experiences=5",
        ],
        "storage.policy.num_experiences=5 is invalid: expected an integer >= 129 with protocol=online",
    ),
    (["strategy=der", "model.head=multi"], "model.head=multi is invalid: expected single with strategy=der"),
    (
        ["protocol=online", "protocol.loop=per_mini_experience", "model.head=multi"],
        "model.head=multi is invalid: expected single with protocol.loop=per_mini_experience",
    ),
    (["strategy=er_ace", "storage=reservoir"], "storage=reservoir has no effect with strategy=er_ace"),
    (
        ["strategy=der", "task_balanced_dataloader=true"],
        "task_balanced_dataloader=true has no effect with strategy=der",
    ),
]


@pytest.fixture
def other_run(tmp_path):
    """A finished run of someone else's, in the same outputs/ tree: it must come out untouched."""
    run_dir = tmp_path / "outputs" / "runs" / "2020-01-01" / "00-00-00-000000"
    run_dir.mkdir(parents=True)
    (run_dir / "results.json").write_text(json.dumps({"status": "completed", "final_average_accuracy": 0.9}))
    return run_dir


@pytest.mark.parametrize(("overrides", "message"), BAD_INPUTS, ids=[" ".join(o) for o, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(overrides, message, tmp_path, other_run):
    before = {p: p.read_bytes() for p in other_run.rglob("*") if p.is_file()}
    result = replay_run(*overrides, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("replay-run: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    new_results = set(tmp_path.glob("outputs/runs/*/*/results.json")) - {other_run / "results.json"}
    assert not new_results, "no results for a run that never started"
    assert set(tmp_path.glob("outputs/runs/*/*")) == {other_run}, "a refused command leaves no directory"
    assert {p: p.read_bytes() for p in other_run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda data: data[: len(data) // 2], "checkpoint.pt is corrupted or truncated"),
        (lambda data: b"not a checkpoint at all", "checkpoint.pt is corrupted or truncated"),
    ],
    ids=["truncated", "garbage"],
)
def test_damaged_checkpoint_is_one_line(damage, message, tmp_path):
    from tests.conftest import single_run_dir

    assert replay_run("strategy.train_epochs=1", "logger=none", cwd=tmp_path).returncode == 0
    run_dir = single_run_dir(tmp_path)
    checkpoint = run_dir / "checkpoint.pt"
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    results = (run_dir / "results.json").read_bytes()
    result = replay_run(f"resume={run_dir}", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert message in line and "Traceback" not in result.stderr
    assert (run_dir / "results.json").read_bytes() == results


def test_hydra_full_error_keeps_the_traceback(tmp_path):
    result = replay_run("mem_size=-5", cwd=tmp_path, env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "ConfigError" in result.stderr


def test_a_buffer_smaller_than_its_groups_runs_with_one_warning(tmp_path):
    """Adaptive class-balanced shares with fewer samples than classes: allowed by design, said once."""
    result = replay_run(
        "storage=class_balanced", "mem_size=5", "strategy.train_epochs=1", "logger=none", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        "replay-run: warning: mem_size=5 is smaller than the 10 class groups of split_digits: "
        "storage=class_balanced keeps no sample of 5 of them once all are seen"
    ]
    (results,) = tmp_path.glob("outputs/runs/*/*/results.json")
    final = json.loads(results.read_text())["buffer_composition"][-1]
    assert final["size"] == 5 and len(final["per_class"]) == 5
