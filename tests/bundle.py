"""Reading the Asset Bundle (``databricks.yml`` + its ``include``s) the way the Databricks CLI resolves it, enough to
check it locally: merged resources, ``${var.*}`` / ``${bundle.*}`` / ``${workspace.*}`` substituted, and each
``python_wheel_task`` resolved to the wheel's entry point."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


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
