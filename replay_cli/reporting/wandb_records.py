"""Read an offline W&B run back from its ``run-<id>.wandb`` file: used to resume a run without
logging any experience twice (or losing one that a killed process never flushed), and by the tests.

The file is wandb's record log: a 7-byte header (``:W&B``, magic, version), then 32 KiB blocks of
chunks, each with a 7-byte header (crc32, length, type: full/first/middle/last) and a piece of a
serialized ``wandb.proto`` ``Record``.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    run_id: str = ""
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None


def records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if len(data) < HEADER or data[:4] != b":W&B":
        return []  # never written to (the process died before its first flush)
    found, pending, position = [], b"", HEADER
    while position + HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < HEADER:
            position += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if position + HEADER + length > len(data):
            break  # a chunk cut short by a killed writer
        chunk = data[position + HEADER : position + HEADER + length]
        position += HEADER + length
        if kind == FULL:
            found.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            found.append(pending + chunk)
        else:
            break  # zero padding at the end of the file
    parsed = []
    for raw in found:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        parsed.append(record)
    return parsed


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def _update_config(config: dict[str, Any], items: Any) -> None:
    """Config items come flat (``key``) or, for W&B's own entries such as a chart's settings under
    ``_wandb.visualize``, as a path (``nested_key``): kept as nested dicts."""
    for item in items:
        path = [item.key] if item.key else list(item.nested_key)
        node = config
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(item.value_json)


def read_offline_run(wandb_file: Path) -> OfflineRun:
    run = OfflineRun()
    for record in records(wandb_file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info = record.run
            run.run_id, run.name, run.group, run.job_type = (
                info.run_id,
                info.display_name,
                info.run_group,
                info.job_type,
            )
            run.tags = list(info.tags)
            _update_config(run.config, info.config.update)
        elif kind == "config":
            _update_config(run.config, record.config.update)
        elif kind == "history":
            run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            for update in record.summary.update:
                key = _key(update)
                if not key.startswith("_"):
                    run.summary[key] = json.loads(update.value_json)
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    return run


def offline_runs(root: Path) -> list[OfflineRun]:
    return [read_offline_run(path) for path in sorted(Path(root).rglob("offline-run-*/run-*.wandb"))]


def logged_experiences(wandb_dir: Path, run_id: str) -> set[int]:
    """The training steps an offline run (all its segments under ``wandb_dir``) has recorded."""
    logged: set[int] = set()
    for path in Path(wandb_dir).glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"):
        history = read_offline_run(path).history
        logged.update(int(row["experience"]) for row in history if "average_accuracy" in row)
    return logged
