"""Reading the Asset Bundle (``databricks.yml`` + its ``include``s) the way the Databricks CLI resolves it, enough to
check it locally: merged resources, ``${var.*}`` / ``${bundle.*}`` / ``${workspace.*}`` substituted, and each
``python_wheel_task`` resolved to the wheel's entry point."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
#: databricks/cli's bundle/schema/jsonschema.json, vendored (see tests/vendor/databricks_cli/README.md)
SCHEMA = Path(__file__).resolve().parent / "vendor" / "databricks_cli" / "jsonschema.json.gz"
SCHEMA_SHA256 = "c3e8df8f2e1372d7dfbdb614242c8fbd4c20fe7c81f5ae2d935833b6953546ca"


def load(root: Path = ROOT) -> dict[str, Any]:
    doc = yaml.safe_load((root / "databricks.yml").read_text())
    for pattern in doc.get("include", []):
        files = sorted(root.glob(pattern))
        assert files, f"include {pattern!r} matches no file"
        for f in files:
            part = yaml.safe_load(f.read_text())
            for kind, items in part.get("resources", {}).items():
                doc.setdefault("resources", {}).setdefault(kind, {}).update(items)
    return doc


def substitute(value: Any, doc: dict, values: dict[str, str]) -> Any:
    """``${var.x}`` from ``values`` or the variable's default, ``${workspace.file_path}`` etc. from ``values``;
    repeated until nothing changes (a default may refer to another variable)."""
    if isinstance(value, list):
        return [substitute(v, doc, values) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, doc, values) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        key = m.group(1)
        if key in values:
            return values[key]
        if key.startswith("var."):
            return str(doc["variables"][key[4:]].get("default", ""))
        raise KeyError(f"unresolved ${{{key}}}")

    for _ in range(5):
        new = re.sub(r"\$\{([A-Za-z0-9_.]+)\}", one, value)
        if new == value:
            break
        value = new
    assert "${" not in value, f"unresolved reference in {value!r}"
    return value


def tasks(doc: dict) -> Iterator[tuple[str, dict, dict]]:
    """(job key, job, task) for every task of every job."""
    for job_key, job in doc["resources"]["jobs"].items():
        for task in job["tasks"]:
            yield job_key, job, task


def entry_point(name: str) -> str:
    """``module:function`` of a console script declared in pyproject.toml."""
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return scripts[name]


def config_files(root: Path = ROOT) -> list[Path]:
    """``databricks.yml`` and every file its ``include`` names: each is a bundle configuration file on its own."""
    doc = yaml.safe_load((root / "databricks.yml").read_text())
    return [root / "databricks.yml", *(f for pattern in doc.get("include", []) for f in sorted(root.glob(pattern)))]


def schema_validator() -> Any:
    """A validator for the CLI's bundle schema. Its ``pattern``s use ``\\p{L}`` (Go's regexp syntax), which
    Python's ``re`` lacks, so the ``pattern`` keyword runs through the ``regex`` module."""
    import jsonschema
    import regex

    raw = gzip.decompress(SCHEMA.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "the vendored schema is not the recorded upstream file"
    schema = json.loads(raw)
    base = jsonschema.Draft202012Validator

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string") and not regex.search(patrn, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    cls = jsonschema.validators.extend(base, {"pattern": pattern})
    return cls(schema)


def schema_errors(doc: Any, validator: Any | None = None) -> list[str]:
    """Every place where ``doc`` (one configuration file, as loaded) breaks the bundle schema, most specific
    error of each ``oneOf`` first."""
    import jsonschema

    validator = validator or schema_validator()
    out = []
    for error in validator.iter_errors(doc):
        best = jsonschema.exceptions.best_match([error])
        out.append(f"{'.'.join(str(p) for p in best.absolute_path) or '<root>'}: {best.message}")
    return out
