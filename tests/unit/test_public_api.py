"""The public API (issue 21.3): ``mask``, ``MaskResult``, ``run_ingest``, ``ingest_stream`` and ``load_policy``
exported from ``lakehouse_phi`` and typed for users (PySpark's ``DataFrame``/``SparkSession``, not ``Any``), while
``import lakehouse_phi`` still imports no PySpark, and the ``py.typed`` marker ships."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lakehouse_phi
from tests.helpers import ROOT

USER_CODE = '''
from pyspark.sql import DataFrame, SparkSession

import lakehouse_phi


def job(spark: SparkSession, df: DataFrame) -> None:
    policy = lakehouse_phi.load_policy("policy.yaml")
    result = lakehouse_phi.mask(df, policy, "patients")
    reveal_type(result)
    reveal_type(result.valid)
    reveal_type(lakehouse_phi.run_ingest(spark, policy, "patients"))
    reveal_type(lakehouse_phi.ingest_stream)
    lakehouse_phi.mask("not a frame", policy, "patients")
'''


def test_the_entry_points_are_exported_and_resolve():
    for name in ("mask", "MaskResult", "run_ingest", "ingest_stream", "load_policy", "IngestOptions"):
        assert name in lakehouse_phi.__all__ and name in dir(lakehouse_phi)
    assert (Path(lakehouse_phi.__file__).parent / "py.typed").is_file()


def test_importing_the_package_imports_no_pyspark():
    code = "import sys, lakehouse_phi; lakehouse_phi.load_policy; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_a_type_checker_sees_pyspark_types_not_any(tmp_path):
    pytest.importorskip("pyspark")
    pytest.importorskip("mypy")
    (tmp_path / "user.py").write_text(USER_CODE)
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
                          "--cache-dir", str(tmp_path / "cache"), "user.py"], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "MYPYPATH": str(ROOT)}, timeout=600)
    text = out.stdout
    assert 'Revealed type is "lakehouse_phi.spark.mask.MaskResult"' in text
    assert 'Revealed type is "pyspark.sql.dataframe.DataFrame"' in text
    assert 'Revealed type is "lakehouse_phi.spark.batch.IngestResult"' in text
    assert "def (spark: pyspark.sql.session.SparkSession" in text
    assert 'Argument 1 to "mask" has incompatible type "str"; expected "DataFrame"' in text
    assert "Any" not in text.replace("dict[str, Any]", "")
