"""The published shape of results.json: ``results.schema.json`` beside this module (JSON Schema, draft
2020-12) gives every key its type and meaning, and every results.json carries the ``schema_version`` it
follows, so a notebook, an uploader or a plotting script can check what it reads.

To add a key to results.json: write it in :meth:`RunResults.to_dict
<replay_cli.reporting.results.RunResults.to_dict>`, add it under ``properties`` in the schema with a
``type`` and a ``description`` (shared shapes are under ``$defs``), and, when every full record has it,
to the list under ``dependentRequired``. The schema refuses keys it does not list, so the tests that
validate every results.json the suite writes fail until it is there. Bump :data:`SCHEMA_VERSION` (and
the schema's ``const``) only when a key changes type or meaning or is removed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("results.schema.json")
SCHEMA_VERSION = 1  # written in every results.json; the schema's properties.schema_version.const
KNOWN_VERSIONS = (SCHEMA_VERSION,)


@functools.cache
def results_schema() -> dict[str, Any]:
    """The JSON Schema of results.json, as a dict."""
    return json.loads(SCHEMA_FILE.read_text())


def schema_errors(results: Any) -> list[str]:
    """Every way ``results`` (a parsed results.json) breaks the schema, one line each, as
    ``<path>: <message>`` (path ``$`` for the top level); empty when it validates. Uses the
    ``jsonschema`` library (Draft 2020-12)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(results_schema())
    return [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(results), key=lambda e: list(e.absolute_path))
    ]


def unknown_version(results: dict[str, Any]) -> str | None:
    """Why a parsed results.json may be misread by this version of replay-cli (a ``schema_version``
    it does not know, or not an integer), or None. A file without the key predates schema versions:
    version 1 wrote the same keys, so it is read without a word."""
    version = results.get("schema_version")
    if version is None or version in KNOWN_VERSIONS:
        return None
    known = ", ".join(str(v) for v in KNOWN_VERSIONS)
    return f"schema_version {version!r}, not one this replay-cli reads ({known})"
