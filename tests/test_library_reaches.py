"""Product code uses the libraries' public APIs: every reach into a private part of Avalanche or
torch sits in one of the named adapter modules, each with its reason and its upgrade test."""

import re
from pathlib import Path

import replay_cli

PACKAGE = Path(replay_cli.__file__).parent
ADAPTERS = {  # module -> the test that fails loudly when an upgrade moves what it reads
    "data/avalanche_internals.py": "tests/test_fast_path.py",
    "storage/avalanche_internals.py": "tests/test_storage_state.py",
    "sweeps/ray_internals.py": "tests/test_sweeps.py",
}
FORBIDDEN = ("unittest", "_decorate_generic", "__new__", "__class__", "monkeypatch")
# `obj._name` on anything but our own self/cls; Hydra's `_target_`-style keys are config, not private.
PRIVATE_ATTRIBUTE = re.compile(r"\b(?!self\b|cls\b)[A-Za-z_]\w*\.(_[A-Za-z]\w*)")
PRIVATE_IMPORT = re.compile(r"^\s*(from\s+\S*\._\w*\s+import|from\s+\S+\s+import\s+.*\b_[a-z]\w*)", re.M)


def reaches(text: str) -> list[str]:
    found = [word for word in FORBIDDEN if word in text]
    found += [m.group(0) for m in PRIVATE_ATTRIBUTE.finditer(text) if not re.fullmatch(r"_\w+_", m.group(1))]
    found += [m.group(0).strip() for m in PRIVATE_IMPORT.finditer(text)]
    return found


def test_private_reaches_only_in_the_adapter_modules():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        if name not in ADAPTERS and reaches(path.read_text()):
            offenders[name] = reaches(path.read_text())
    assert offenders == {}


def test_each_adapter_says_why_and_has_its_upgrade_test():
    root = PACKAGE.parent
    for name, test in ADAPTERS.items():
        text = (PACKAGE / name).read_text()
        assert reaches(text), f"{name} reaches nothing private: fold it back"
        assert "PINNED_" in text and "upgrade" in text, name  # the version its reads were checked on
        module = "replay_cli." + name.removesuffix(".py").replace("/", ".")
        package, _, stem = module.rpartition(".")
        test_text = (root / test).read_text()
        assert module in test_text or f"from {package} import {stem}" in test_text, (name, test)


def test_the_check_sees_a_reach():
    assert reaches("buffer._buffer_weights = w") == ["buffer._buffer_weights"]
    assert reaches("from torch.utils.data._utils.collate import default_collate")
    assert reaches("cls = type(x).__new__(T)")
    assert reaches("node = cfg.policy._target_") == []
