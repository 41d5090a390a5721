"""split_tiny_imagenet and core50 on tiny files in their real on-disk formats (JPEG folders, PNG
folders with batch file lists and pickles): the splits and samples of Avalanche's own generators,
the fast path's results equal the plain path's, and one line naming the file when one is missing
or malformed."""

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from replay_cli.errors import UsageError
from tests.conftest import replay_run
from tests.test_benchmarks import SMALL_RUN, same_samples, samples
from tests.tiny_datasets import write_core50, write_tiny_imagenet

CORE50_SCENARIOS = ("ni", "nc", "nicv2_79")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    write_tiny_imagenet(root)
    write_core50(root, scenarios=CORE50_SCENARIOS)
    return root


def eval_samples(stream) -> list[list[tuple[int, bytes]]]:
    """Each experience's samples under the eval transform, as a sorted list of (label, pixels)."""
    return [
        sorted(
            (int(y), x.numpy().tobytes()) for x, y, *_ in (e.dataset.eval()[i] for i in range(len(e.dataset)))
        )
        for e in stream
    ]


@pytest.mark.parametrize("seed", [0, 7])
def test_split_tiny_imagenet_equals_avalanches_own_generator(seed, data_root):
    """Same classes per experience as Avalanche's SplitTinyImageNet for the same seed, the same test
    samples in the same order, and each training experience the same samples (Avalanche lists a
    class's training images in directory order, replay-cli in file-name order)."""
    from avalanche.benchmarks.classic import SplitTinyImageNet

    from replay_cli.data.benchmarks import classic

    theirs = SplitTinyImageNet(n_experiences=10, seed=seed, dataset_root=data_root)
    expected = [sorted(e.classes_in_this_experience) for e in theirs.train_stream]
    assert [len(c) for c in expected] == [20] * 10
    their_test = samples(theirs.test_stream)
    their_train = eval_samples(theirs.train_stream)
    for batched in (False, True):
        ours = classic(
            "x", "SplitTinyImageNet", 10, seed=seed, dataset_root=str(data_root), batched_transforms=batched
        )
        assert (ours.input_shape, ours.num_classes) == ((3, 64, 64), 200)
        assert ours.classes_per_experience() == expected
        assert same_samples(samples(ours.test_stream), their_test)
        assert eval_samples(ours.train_stream) == their_train
    assert sum(len(e.dataset) for e in ours.train_stream) == 400


@pytest.mark.parametrize(
    ("scenario", "object_level"), [("ni", True), ("nc", True), ("nc", False), ("nicv2_79", True)]
)
def test_core50_equals_avalanches_own_generator(scenario, object_level, data_root):
    """Avalanche's CORe50 for the same scenario and run: the same experiences, the same samples in
    the same order (random flips included, on the per-sample path), one complete test experience."""
    from avalanche.benchmarks.classic import CORe50

    from replay_cli.data.benchmarks import core50

    theirs = CORe50(scenario=scenario, run=0, object_lvl=object_level, mini=True, dataset_root=data_root)
    kwargs = {
        "scenario": scenario,
        "mini": True,
        "object_level": object_level,
        "dataset_root": str(data_root),
    }
    plain = core50(**kwargs, batched_transforms=False)
    fast = core50(**kwargs)
    for ours in (plain, fast):
        assert ours.n_experiences == {"ni": 8, "nc": 9, "nicv2_79": 79}[scenario]
        assert (ours.n_test_experiences, ours.n_tasks, ours.input_shape) == (1, 1, (3, 32, 32))
        assert ours.num_classes == (50 if object_level else 10)
        assert ours.classes_per_experience() == [
            sorted(int(c) for c in e.dataset.targets.uniques) for e in theirs.train_stream
        ]
        assert same_samples(samples(ours.test_stream), samples(theirs.test_stream))
    assert same_samples(samples(plain.train_stream), samples(theirs.train_stream))
    assert [len(e.dataset) for e in fast.train_stream] == [len(e.dataset) for e in theirs.train_stream]
    assert eval_samples(fast.train_stream) == eval_samples(theirs.train_stream)
    if scenario == "nc" and object_level:
        assert [len(c) for c in plain.classes_per_experience()] == [10] + [5] * 8


@pytest.fixture
def no_flips(monkeypatch):
    """Training without random flips, so the fast path's run is comparable draw for draw with the
    plain path's (with flips both draw from the same distribution, in another order)."""
    from replay_cli.data import benchmarks

    monkeypatch.setattr(benchmarks, "CORE50", dataclasses.replace(benchmarks.CORE50, flip=False))
    tiny = dataclasses.replace(benchmarks.CLASSIC["SplitTinyImageNet"], flip=False)
    monkeypatch.setitem(benchmarks.CLASSIC, "SplitTinyImageNet", tiny)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(("benchmark=split_tiny_imagenet", "benchmark.n_experiences=2"), marks=pytest.mark.slow),
        ("benchmark=core50", "benchmark.scenario=nc", "benchmark.mini=true"),
    ],
)
def test_fast_path_results_equal_the_plain_paths(overrides, data_root, run_in_process, tmp_path, no_flips):
    common = (*overrides, f"benchmark.dataset_root={data_root}", "benchmark.download=false", *SMALL_RUN)
    fast = run_in_process(*common, "fast_path=true", run_dir=tmp_path / "fast")
    plain = run_in_process(*common, "fast_path=false", run_dir=tmp_path / "plain")
    assert fast["config"]["benchmark"]["batched_transforms"] is True
    assert fast["accuracy_matrix"] == plain["accuracy_matrix"]
    assert fast["buffer_composition"] == plain["buffer_composition"]
    assert fast["status"] == "completed"
    assert fast["buffer_composition"][-1]["size"] == 20


def test_core50_reports_one_complete_test_set(data_root, run_in_process):
    """CORe50's one test experience: a column per step, average accuracy = its accuracy, and no
    forgetting or BWT (they need a test experience per training experience)."""
    results = run_in_process(
        "benchmark=core50",
        "benchmark.scenario=ni",
        "benchmark.mini=true",
        f"benchmark.dataset_root={data_root}",
        *SMALL_RUN,
    )
    matrix = results["accuracy_matrix"]
    assert results["n_experiences"] == 1 and len(matrix) == 8
    assert all(len(row) == 1 for row in matrix)
    assert results["average_accuracy_per_experience"] == [row[0] for row in matrix]
    assert results["final_average_accuracy"] == pytest.approx(results["final_stream_accuracy"])
    assert results["forgetting"] is None and results["bwt"] is None
    assert results["benchmark"]["num_classes"] == 50
    assert sorted(results["buffer_composition"][-1]["per_experience"], key=int) == [str(e) for e in range(8)]


@pytest.fixture
def broken(tmp_path, data_root):
    """A copy of the tiny files to break one at a time."""

    def copy(*names: str) -> Path:
        root = tmp_path / "broken"
        for name in names:
            source = data_root / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, root / name)
        return root

    return copy


def test_tiny_imagenet_files_missing_or_malformed_name_the_file(broken):
    from replay_cli.data import datasets

    root = broken("tiny-imagenet-200")
    folder = root / "tiny-imagenet-200"
    (folder / "wnids.txt").write_text("n00000000\nn00000001\n")
    with pytest.raises(UsageError, match=r"wnids.txt lists 2 classes: expected Tiny ImageNet's 200"):
        datasets.load(datasets.TINY_IMAGENET, str(root), download=False)
    (folder / "wnids.txt").unlink()
    with pytest.raises(
        UsageError, match=r"Tiny ImageNet files not found: expected wnids.txt in .*tiny-imagenet-200"
    ):
        datasets.load(datasets.TINY_IMAGENET, str(root), download=False)


def test_tiny_imagenet_bad_image_and_bad_annotation_name_the_file(broken):
    from replay_cli.data import datasets

    root = broken("tiny-imagenet-200")
    folder = root / "tiny-imagenet-200"
    image = next((folder / "train" / "n00000003" / "images").iterdir())
    image.write_bytes(b"not a jpeg")
    with pytest.raises(UsageError, match=rf"{image} is not a readable image \(UnidentifiedImageError"):
        datasets.load(datasets.TINY_IMAGENET, str(root), download=False)
    shutil.rmtree(folder / "train" / "n00000003")
    with pytest.raises(UsageError, match=r"Tiny ImageNet folder not found: .*n00000003/images"):
        datasets.load(datasets.TINY_IMAGENET, str(root), download=False)
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG n00000000\n")
    with pytest.raises(UsageError, match=r"val_annotations.txt, line 1: expected '<image file>\\t<wnid>"):
        datasets.load(datasets.TINY_IMAGENET, str(root), download=False)


def test_core50_files_missing_or_malformed_name_the_file(broken):
    from replay_cli.data.benchmarks import core50

    root = broken("core50_32x32", "batches_filelists", "labels2names.pkl")
    lists = root / "batches_filelists" / "NI_inc" / "run0"
    first = lists / "train_batch_00_filelist.txt"
    first.write_text(first.read_text() + "s1/o1/only_a_path.png\n")
    with pytest.raises(UsageError, match=rf"{first}, line 51: expected '<image path> <label>', got 's1/o1/"):
        core50(scenario="ni", mini=True, dataset_root=str(root), download=False)
    first.write_text("s1/o1/missing.png 0\n")
    with pytest.raises(UsageError, match=r"image file not found: .*core50_32x32/s1/o1/missing.png"):
        core50(scenario="ni", mini=True, dataset_root=str(root), download=False)
    (lists / "test_filelist.txt").unlink()
    with pytest.raises(
        UsageError, match=r"CORe50 files not found: expected batches_filelists/NI_inc/run0/test_filelist"
    ):
        core50(scenario="ni", mini=True, dataset_root=str(root), download=False)
    with pytest.raises(
        UsageError, match=r"expected core50_128x128, batches_filelists/NI_inc/run0/test_filelist.txt in"
    ):
        core50(scenario="ni", mini=False, dataset_root=str(root), download=False)
    (root / "labels2names.pkl").write_bytes(b"garbage")
    with pytest.raises(UsageError, match=r"labels2names.pkl is not CORe50's labels2names.pkl"):
        core50(scenario="nc", object_level=False, mini=True, dataset_root=str(root), download=False)


def test_missing_core50_through_the_console_is_one_line_and_no_run(tmp_path):
    empty = tmp_path / "nothing"
    result = replay_run(
        "benchmark=core50",
        "benchmark.scenario=nc",
        f"benchmark.dataset_root={empty}",
        "benchmark.download=false",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "replay-run: error: CORe50 files not found: expected core50_128x128, "
        "batches_filelists/NC_inc/run0/train_batch_00_filelist.txt, "
    )
    assert f"in {empty} (benchmark.download=false)" in lines[0]
    assert not list(tmp_path.glob("outputs/runs/*/*/results.json"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("benchmark.scenario=nicv3", "benchmark.scenario=nicv3 is invalid: expected one of: ni, nc, nic,"),
        ("benchmark.run=10", "benchmark.run=10 is invalid: expected an integer in [0, 9]"),
    ],
)
def test_bad_core50_keys_are_refused_before_reading(override, message):
    from replay_cli.config.validation import validate
    from replay_cli.errors import ConfigError
    from tests.conftest import compose_config

    with pytest.raises(ConfigError) as error:
        validate(compose_config("benchmark=core50", override))
    assert message in str(error.value)


def test_split_tiny_imagenet_class_split_is_checked_before_reading():
    from replay_cli.config.validation import validate
    from replay_cli.errors import ConfigError
    from tests.conftest import compose_config

    cfg = compose_config("benchmark=split_tiny_imagenet", "benchmark.n_experiences=201")
    with pytest.raises(
        ConfigError, match=r"benchmark.n_experiences=201 is invalid: expected an integer in \[1, 200\]"
    ):
        validate(cfg)


def test_grayscale_jpeg_is_read_as_rgb(data_root):
    from replay_cli.data.image_files import decode_images

    folder = data_root / "tiny-imagenet-200" / "train" / "n00000000" / "images"
    color, gray = decode_images(sorted(folder.iterdir()))  # n00000000_1.JPEG is the grayscale one
    assert gray.shape == color.shape == (3, 64, 64) and gray.dtype == torch.uint8
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])  # as PIL's convert("RGB")
    assert not torch.equal(color[0], color[1])


@pytest.mark.parametrize("name", ["split_tiny_imagenet", "core50"])
def test_the_fast_path_serves_the_image_benchmarks_from_uint8_tensors(name, data_root):
    """Not a silent fall-back to the plain path: batches come from the uint8 tensors, flipped per
    batch, normalised like the per-sample evaluation transform."""
    from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader

    from replay_cli.data.benchmarks import classic, core50
    from replay_cli.data.fast_path import speed_up

    if name == "core50":
        bench = core50(scenario="ni", mini=True, dataset_root=str(data_root), download=False)
    else:
        bench = classic("t", "SplitTinyImageNet", 10, seed=0, dataset_root=str(data_root), download=False)
    data = bench.train_stream[0].dataset.train()
    loader, fields = speed_up(TaskBalancedDataLoader(data, batch_size=len(data), shuffle=False))
    assert fields is not None and fields[0][0].dtype == torch.uint8
    ((x, y, _),) = list(loader)
    assert x.dtype == torch.float32 and tuple(x.shape[1:]) == bench.input_shape
    evaluated = torch.stack([bench.train_stream[0].dataset.eval()[i][0] for i in range(len(data))])
    mirrored = evaluated.flip(-1)
    same = [torch.equal(a, b) for a, b in zip(x, evaluated, strict=True)]
    flipped = [torch.equal(a, b) for a, b in zip(x, mirrored, strict=True)]
    assert all(s or f for s, f in zip(same, flipped, strict=True))  # each sample: itself or its mirror
    assert any(flipped) and any(same)
    assert torch.equal(y, torch.tensor([int(data[i][1]) for i in range(len(data))]))


@pytest.mark.slow
def test_a_core50_run_stopped_and_resumed_gives_the_uninterrupted_run(data_root, tmp_path, fail_at_step):
    """The single complete test experience survives a checkpoint: the resumed run's matrix and buffer
    are the uninterrupted run's, bit for bit (CPU)."""
    from tests.test_resume_methods import run, stopped_then_resumed

    overrides = (
        "benchmark=core50",
        "benchmark.scenario=nc",
        "benchmark.mini=true",
        f"benchmark.dataset_root={data_root}",
        "storage=reservoir",
        "mem_size=30",
        "progress=false",
    )
    whole = run(tmp_path / "whole", overrides)
    resumed = stopped_then_resumed(tmp_path, overrides, fail_at_step, stop_after=4)
    assert resumed["accuracy_matrix"] == whole["accuracy_matrix"] and len(whole["accuracy_matrix"]) == 9
    assert resumed["buffer_composition"] == whole["buffer_composition"]
    assert resumed["forgetting"] is None and resumed["status"] == "completed"
