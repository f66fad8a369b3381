"""Run a Databricks source-format notebook's Python cells locally, with a small dbutils stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class _Widgets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.declared = dict(values), {}

    def text(self, name: str, default: str, label: str | None = None) -> None:
        self.declared[name] = default
        self.values.setdefault(name, default)

    def dropdown(self, name: str, default: str, choices: list[str], label: str | None = None) -> None:
        assert default in choices
        self.text(name, default, label)
        assert self.values[name] in choices, f"widget {name}: {self.values[name]!r} not in {choices}"

    def get(self, name: str) -> str:
        if name not in self.declared:
            raise ValueError(f"widget {name!r} was never declared")
        return self.values[name]


class _Secrets:
    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values

    def get(self, scope: str, key: str) -> str:
        return self.values[(scope, key)]


class _Library:
    """``dbutils.library``: records each ``restartPython()`` (locally there is nothing to restart)."""

    def __init__(self) -> None:
        self.restarts = 0

    def restartPython(self) -> None:  # noqa: N802 - Databricks' name
        self.restarts += 1


class LocalDbutils:
    def __init__(self, widgets: dict[str, str], secrets: dict[tuple[str, str], str]) -> None:
        self.widgets, self.secrets, self.library = _Widgets(widgets), _Secrets(secrets), _Library()


def cells(path: Path) -> list[str]:
    """The Python cells of a ``# Databricks notebook source`` file (``# MAGIC`` cells are markdown/%pip/%sql)."""
    text = path.read_text()
    assert text.startswith("# Databricks notebook source"), f"{path} is not in Databricks source format"
    out = []
    for cell in text.split("# COMMAND ----------"):
        lines = [ln for ln in cell.splitlines() if not ln.startswith("# Databricks notebook source")]
        if any(ln.startswith("# MAGIC") for ln in lines):
            continue
        out.append("\n".join(lines))
    return out


def run_notebook(path: Path, spark: Any, widgets: dict[str, str], secrets: dict[tuple[str, str], str]) -> dict:
    shown: list[Any] = []
    ns: dict[str, Any] = {"spark": spark, "dbutils": LocalDbutils(widgets, secrets), "display": shown.append,
                          "displayHTML": shown.append, "__name__": "__notebook__"}
    for source in cells(path):
        exec(compile(source, str(path), "exec"), ns)  # the notebook under test
    ns["_displayed"] = shown
    ns["_dbutils"] = ns["dbutils"]
    return ns
