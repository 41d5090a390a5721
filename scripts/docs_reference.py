"""The reference tables of the documentation site, generated from conf/ and the results schema: one
source of truth, so a page never lists an option, a key or a default the configs do not have.

A page asks for a table with a marker on a line of its own, e.g. ``<!-- generated: options storage -->``;
this module is a MkDocs hook (``hooks:`` in mkdocs.yml) that replaces every marker when the site is
built, and fails the build on a marker it does not know. Tables: ``groups``, ``top-level keys``,
``options <group>``, ``methods``, ``presets``, ``sweeps``, ``results keys``, ``results schema``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
SCHEMA = ROOT / "replay_cli" / "reporting" / "results.schema.json"
MARKER = re.compile(r"^<!-- generated: (?P<name>[a-z_ -]+?) -->$", re.MULTILINE)

# Keys a group's builders read (see replay_cli/strategies/build.py), not settings a user tunes.
LABELS = {"defaults", "name", "_target_", "_partial_", "uses", "check", "model_check", "state",
          "buffer_reader", "model_needs", "reproduce", "hydra"}


def config_groups(conf_dir: Path = CONF) -> dict[str, list[str]]:
    """Groups and their options as ``replay-run --help`` lists them (files starting with _ are parts)."""
    return {
        group.name: sorted(p.stem for p in group.glob("*.yaml") if not p.stem.startswith("_"))
        for group in sorted(conf_dir.iterdir())
        if group.is_dir() and group.name != "hydra"
    }


def defaults(conf_dir: Path = CONF) -> dict[str, str | None]:
    """The option each group takes when the command line names none (config.yaml's defaults list)."""
    chosen: dict[str, str | None] = {}
    for entry in yaml.safe_load((conf_dir / "config.yaml").read_text())["defaults"]:
        if isinstance(entry, dict):
            chosen.update(entry)
    return chosen


def described_keys(path: Path, labels: set[str] = LABELS) -> tuple[str, list[tuple[str, Any, str]]]:
    """A config file's header comment and its settings as (dotted key, value, comment), in file order
    (the top-level ``labels``, read by the builders, left out)."""
    header, comments = key_comments(path)
    data = yaml.safe_load(path.read_text()) or {}
    return header, [(key, value, comments.get(key, "")) for key, value in _leaves(data, "", labels)]


def key_comments(path: Path) -> tuple[str, dict[str, str]]:
    """A config file's header comment and the comment of each dotted key: its inline one, or the
    comment lines just above it; an indented comment line under a commented key continues it."""
    lines = path.read_text().splitlines()
    header, body_start = [], 0
    for body_start, line in enumerate(lines):  # noqa: B007
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            header.append(line.lstrip("# ").rstrip())
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    last: tuple[str, int] | None = None
    for line in lines[body_start:]:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("#"):
            text = stripped.lstrip("# ")
            if last and indent > last[1] and last[0] in comments:
                comments[last[0]] += " " + text
            else:
                pending.append(text)
            continue
        match = re.match(r"^(\s*)([A-Za-z0-9_]+):(.*)$", line)
        if not match:
            pending, last = [], None
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([*(key for _, key in stack), match.group(2)])
        stack.append((indent, match.group(2)))
        value_part = match.group(3)
        inline = value_part.split(" #", 1)[1].strip() if " #" in value_part else ""
        comment = inline or " ".join(pending)
        if comment:
            comments[dotted] = comment
        pending, last = [], (dotted, indent)
    return " ".join(header), comments


def _leaves(node: Any, prefix: str, labels: set[str]) -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if not prefix and key in labels:
            continue
        if key in ("_target_", "_partial_"):
            continue
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{dotted}.", labels)
        else:
            yield dotted, value


def _shown(value: Any) -> str:
    return "null" if value is None else json.dumps(value) if not isinstance(value, str) else value


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _keys_cell(leaves: list[tuple[str, Any, str]]) -> str:
    parts = [f"`{key}`: `{_shown(value)}`" + (f" ({_cell(comment)})" if comment else "")
             for key, value, comment in leaves]
    return "<br>".join(parts) or "none"


def groups_table(conf_dir: Path = CONF) -> str:
    """Every config group with its options and its default (what ``replay-run --help`` lists)."""
    chosen = defaults(conf_dir)
    rows = ["| group | default | options |", "| --- | --- | --- |"]
    for group, options in config_groups(conf_dir).items():
        default = chosen.get(group)
        shown = f"`{default}`" if default else "none"
        rows.append(f"| `{group}` | {shown} | {', '.join(f'`{o}`' for o in options)} |")
    return "\n".join(rows)


def top_level_keys_table(conf_dir: Path = CONF) -> str:
    """The keys of config.yaml itself (not of a group), with their defaults and meaning."""
    _, leaves = described_keys(conf_dir / "config.yaml")
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `{key}` | `{_shown(value)}` | {_cell(comment)} |" for key, value, comment in leaves]
    return "\n".join(rows)


def options_table(group: str, conf_dir: Path = CONF) -> str:
    """One row per option of ``group``: what it is (the file's header) and its keys with defaults."""
    if group not in config_groups(conf_dir):
        raise ValueError(f"no config group {group!r} under {conf_dir}")
    rows = [f"| `{group}=` | what it is | keys (default) |", "| --- | --- | --- |"]
    for option in config_groups(conf_dir)[group]:
        header, leaves = described_keys(conf_dir / group / f"{option}.yaml")
        rows.append(f"| `{option}` | {_cell(header)} | {_keys_cell(leaves)} |")
    return "\n".join(rows)


def sweeps_table(conf_dir: Path = CONF) -> str:
    """The sweep, launcher and hparams_search presets: what each is and what it sets, Hydra's own
    settings (``hydra.sweeper.params``: the swept keys; ``hydra.launcher.*``) included."""
    rows = ["| preset | what it is | what it sets (default) |", "| --- | --- | --- |"]
    for group in ("sweep", "launcher", "hparams_search"):
        for option in config_groups(conf_dir)[group]:
            header, leaves = described_keys(conf_dir / group / f"{option}.yaml", LABELS - {"hydra"})
            shown = [(k, v, c) for k, v, c in leaves if k not in ("hydra.mode",) and "callbacks" not in k]
            rows.append(f"| `{group}={option}` | {_cell(header)} | {_keys_cell(shown)} |")
    return "\n".join(rows)


def methods_table(conf_dir: Path = CONF) -> str:
    """The strategy group as methods: the class built, the run's top-level keys it reads (``uses``)
    and its own keys with their defaults (the shared training keys and values taken from the top level
    left out)."""
    _, shared = described_keys(conf_dir / "strategy" / "_training.yaml")
    shared_keys = {key for key, _, _ in shared}
    rows = ["| `strategy=` | what it is | built from | top-level keys it uses | its own keys (default) | "
            "checks |", "| --- | --- | --- | --- | --- | --- |"]
    for option in config_groups(conf_dir)["strategy"]:
        path = conf_dir / "strategy" / f"{option}.yaml"
        data = yaml.safe_load(path.read_text())
        plugins = (data.get("plugins") or {}).values()
        built = [_target(data), *(_target(plugin) for plugin in plugins)]
        header, leaves = described_keys(path)
        own = [(k, v, c) for k, v, c in leaves
               if k not in shared_keys and v != {} and not (isinstance(v, str) and v.startswith("${"))]
        uses = ", ".join(f"`{key}`" for key in data.get("uses") or []) or "none"
        built_from = " + ".join(f"`{b}`" for b in built)
        checks = [f"model needs {', '.join(data['model_needs'])}"] if data.get("model_needs") else []
        functions = [data[key] for key in ("check", "model_check") if data.get(key)]
        checks += [f"`{'.'.join(function.rsplit('.', 2)[-2:])}`" for function in functions]
        shown = "; ".join(checks) or "none"
        rows.append(f"| `{option}` | {_cell(header)} | {built_from} | {uses} | {_keys_cell(own)} | {shown} |")
    return "\n".join(rows)


def presets_table(conf_dir: Path = CONF) -> str:
    """The experiment presets with what each reproduces: its ``reproduce`` block (metric, target ±
    tolerance, seeds, whether the target was checked against its source, the source)."""
    rows = ["| `experiment=` | metric | target | seeds | verified | source |", "|---|---|---|---|---|---|"]
    for option in config_groups(conf_dir)["experiment"]:
        path = conf_dir / "experiment" / f"{option}.yaml"
        target = (yaml.safe_load(path.read_text()) or {}).get("reproduce")
        if not target:
            continue
        _, notes = key_comments(path)
        verified = target.get("verified", True)
        why = notes.get("reproduce.verified", "")
        shown = ("yes" if verified else "no") + (f" ({_cell(why)})" if why else "")
        seeds = ", ".join(str(s) for s in target.get("seeds", []))
        rows.append(
            f"| `{option}` | `{target['metric']}` | {target['target']} ± {target['tolerance']} | "
            f"{seeds} | {shown} | {_cell(str(target['source']))} |"
        )
    return "\n".join(rows)


def _target(node: dict[str, Any]) -> str:
    """An Avalanche class by its name; one of replay-cli's builders by its module path."""
    target = str(node.get("_target_", ""))
    if target.startswith("avalanche."):
        return target.rsplit(".", 1)[-1]
    return target.removeprefix("replay_cli.")


def _type_of(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1].replace("_", " ")
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    if "enum" in schema:
        return " / ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else kind


def results_keys_table(schema_path: Path = SCHEMA) -> str:
    """Every key of results.json with its type and meaning, from the published JSON Schema."""
    schema = json.loads(schema_path.read_text())
    rows = ["| key | type | meaning |", "| --- | --- | --- |"]
    for key, sub in schema["properties"].items():
        rows.append(f"| `{key}` | {_cell(_type_of(sub))} | {_cell(sub['description'])} |")
        for child, below in sub.get("properties", {}).items():
            meaning = _cell(below.get("description", ""))
            rows.append(f"| `{key}.{child}` | {_cell(_type_of(below))} | {meaning} |")
    return "\n".join(rows)


def results_schema_block(schema_path: Path = SCHEMA) -> str:
    return f"```json\n{schema_path.read_text().rstrip()}\n```"


TABLES: dict[str, Callable[[], str]] = {
    "groups": groups_table,
    "top-level keys": top_level_keys_table,
    "methods": methods_table,
    "presets": presets_table,
    "sweeps": sweeps_table,
    "results keys": results_keys_table,
    "results schema": results_schema_block,
}


def table(name: str) -> str:
    """The generated text for a marker's name; ValueError for a name no table has."""
    if name.startswith("options "):
        return options_table(name.removeprefix("options ").strip())
    if name not in TABLES:
        raise ValueError(f"unknown generated table {name!r}: one of {', '.join(TABLES)}, options <group>")
    return TABLES[name]()


def fill(markdown: str) -> str:
    """``markdown`` with every ``<!-- generated: NAME -->`` marker replaced by its table."""
    return MARKER.sub(lambda match: table(match.group("name")), markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """MkDocs hook: the tables are filled in as each page is built."""
    return fill(markdown)
