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

    def restartPython(self) -> None:
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


# ------------------------------------------------------------------ Lakeflow Declarative Pipelines, locally


class _Dataset:
    def __init__(self, kind: str, name: str, fn: Any, options: dict[str, Any]) -> None:
        self.kind, self.name, self.fn, self.options = kind, name, fn, options
        self.expectations: list[tuple[str, str, str]] = list(getattr(fn, "_expectations", []))  # (action, name, sql)


class LocalPipelines:
    """A stand-in for ``pyspark.pipelines`` (``dp``) that records what a pipeline source declares: each dataset
    (``@dp.table`` / ``@dp.materialized_view`` with its options) and its expectations (``@dp.expect*``), so that a
    test can run the graph itself (:func:`run_pipeline`)."""

    def __init__(self) -> None:
        self.datasets: dict[str, _Dataset] = {}

    def _define(self, kind: str, query_function: Any = None, **options: Any) -> Any:
        def register(fn: Any) -> Any:
            name = options.get("name") or fn.__name__
            assert name not in self.datasets, f"dataset {name} defined twice"
            self.datasets[name] = _Dataset(kind, name, fn, options)
            return fn

        return register(query_function) if query_function is not None else register

    def table(self, query_function: Any = None, **options: Any) -> Any:
        return self._define("table", query_function, **options)

    def materialized_view(self, query_function: Any = None, **options: Any) -> Any:
        return self._define("materialized_view", query_function, **options)

    @staticmethod
    def _expect(action: str, pairs: dict[str, str]) -> Any:
        def decorate(fn: Any) -> Any:
            fn._expectations = [*getattr(fn, "_expectations", []), *((action, n, c) for n, c in pairs.items())]
            return fn

        return decorate

    def expect(self, name: str, constraint: str) -> Any:
        return self._expect("warn", {name: constraint})

    def expect_or_drop(self, name: str, constraint: str) -> Any:
        return self._expect("drop", {name: constraint})

    def expect_or_fail(self, name: str, constraint: str) -> Any:
        return self._expect("fail", {name: constraint})

    def expect_all(self, pairs: dict[str, str]) -> Any:
        return self._expect("warn", pairs)

    def expect_all_or_drop(self, pairs: dict[str, str]) -> Any:
        return self._expect("drop", pairs)

    def expect_all_or_fail(self, pairs: dict[str, str]) -> Any:
        return self._expect("fail", pairs)


class ExpectationFailed(Exception):
    """An ``expect*_or_fail`` constraint broken by some rows: the pipeline update fails."""


class _AutoLoader:
    """``spark.readStream.format("cloudFiles")`` on a laptop: the plain streaming file source of
    ``cloudFiles.format``, all columns strings (Auto Loader's inference for CSV and JSON) plus ``_rescued_data``;
    records each ``load``."""

    def __init__(self, spark: Any, loads: list[dict[str, Any]]) -> None:
        self.spark, self.loads, self.opts = spark, loads, {}

    def option(self, key: str, value: Any) -> _AutoLoader:
        self.opts[key] = value
        return self

    def options(self, **kw: Any) -> _AutoLoader:
        self.opts.update(kw)
        return self

    def load(self, path: str) -> Any:
        from pyspark.sql.types import StringType, StructField, StructType

        self.loads.append({"path": path, **self.opts})
        fmt = self.opts["cloudFiles.format"]
        plain = {k: v for k, v in self.opts.items() if not k.startswith("cloudFiles.")}
        inferred = self.spark.read.format(fmt).options(**plain).load(path).schema
        schema = StructType([StructField(f.name, StringType()) for f in inferred]
                            + [StructField("_rescued_data", StringType())])
        return self.spark.readStream.format(fmt).options(**plain).schema(schema).load(path)


class PipelineSpark:
    """The session a pipeline source sees: the pipeline configuration in ``conf``, Auto Loader as above, and
    ``read.table`` / ``readStream.table`` of the pipeline's own datasets served from where :func:`run_pipeline`
    materialised them. Everything else is the real local session."""

    def __init__(self, spark: Any, configuration: dict[str, str], out: Path) -> None:
        self._spark, self._configuration, self._out = spark, dict(configuration), out
        self.loads: list[dict[str, Any]] = []
        outer = self

        class _Conf:
            def get(self, key: str, default: Any = ...) -> Any:
                if key in outer._configuration:
                    return outer._configuration[key]
                if default is ...:
                    raise KeyError(f"pipeline configuration has no {key!r}")
                return default

        class _ReadStream:
            def format(self, fmt: str) -> Any:
                assert fmt == "cloudFiles", f"the pipeline reads {fmt!r}, not Auto Loader"
                return _AutoLoader(outer._spark, outer.loads)

            def table(self, name: str) -> Any:
                path = outer.path(name)
                return outer._spark.readStream.schema(outer._spark.read.parquet(path).schema).parquet(path)

        class _Read:
            def table(self, name: str) -> Any:
                return outer._spark.read.parquet(outer.path(name))

        self.conf, self.readStream, self.read = _Conf(), _ReadStream(), _Read()

    def path(self, name: str) -> str:
        return str(self._out / name.replace("`", ""))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._spark, name)


def run_pipeline(path: Path, spark: Any, configuration: dict[str, str], secrets: dict[tuple[str, str], str],
                 out: Path) -> dict[str, Any]:
    """Run a pipeline notebook's Python cells with :class:`LocalPipelines` as ``pyspark.pipelines`` and
    :class:`PipelineSpark` as ``spark``, then run its graph once in dependency order (each streaming table with an
    available-now trigger into Parquet under ``out``, each materialized view as a batch), checking every
    expectation on what the dataset holds. Returns the namespace plus ``_dp``, ``_spark``, ``_rows`` (dataset ->
    rows) and ``_expectations`` (dataset -> [(action, name, failing rows)]). Raises :class:`ExpectationFailed`
    for a broken ``*_or_fail`` expectation."""
    import sys
    import types

    import pyspark

    dp = LocalPipelines()
    module = types.ModuleType("pyspark.pipelines")
    for attr in ("table", "materialized_view", "expect", "expect_or_drop", "expect_or_fail", "expect_all",
                 "expect_all_or_drop", "expect_all_or_fail"):
        setattr(module, attr, getattr(dp, attr))
    saved = sys.modules.get("pyspark.pipelines"), getattr(pyspark, "pipelines", None)
    sys.modules["pyspark.pipelines"] = module
    pyspark.pipelines = module  # type: ignore[attr-defined]
    local = PipelineSpark(spark, configuration, out)
    ns: dict[str, Any] = {"spark": local, "dbutils": LocalDbutils({}, secrets), "display": print,
                          "__name__": "__notebook__"}
    try:
        for source in cells(path):
            exec(compile(source, str(path), "exec"), ns)  # the notebook under test
    finally:
        if saved[0] is not None:
            sys.modules["pyspark.pipelines"] = saved[0]
        else:
            sys.modules.pop("pyspark.pipelines", None)
        if saved[1] is not None:
            pyspark.pipelines = saved[1]  # type: ignore[attr-defined]
    rows: dict[str, list[Any]] = {}
    results: dict[str, list[tuple[str, str, int]]] = {}
    # the private staging tables first (the published datasets read them), then the rest in declaration order
    for ds in sorted(dp.datasets.values(), key=lambda d: not d.options.get("private")):
        frame = ds.fn()
        target = local.path(ds.name)
        if frame.isStreaming:
            (frame.writeStream.format("parquet").option("path", target)
             .option("checkpointLocation", target + "._checkpoint").trigger(availableNow=True)
             .start().awaitTermination())
        else:
            frame.write.mode("overwrite").parquet(target)
        held = spark.read.parquet(target)
        rows[ds.name] = held.collect()
        results[ds.name] = []
        for action, name, constraint in ds.expectations:
            failing = held.where(f"NOT coalesce(({constraint}), false)").count()
            results[ds.name].append((action, name, failing))
            if failing and action == "fail":
                raise ExpectationFailed(f"{ds.name}: expectation {name!r} ({constraint}) failed on {failing} row(s)")
    ns.update(_dp=dp, _spark=local, _rows=rows, _expectations=results, _dbutils=ns["dbutils"])
    return ns

