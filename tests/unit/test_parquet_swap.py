"""``bronze_mode: latest`` on Parquet rewrites the table by write-then-swap with a manifest: a SIGKILL at any step
leaves the old table or, once the manifest is committed, the new one (finished by the next reader); never a missing
or half table. Real files, real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from lakehouse_phi.storage import parquet
from lakehouse_phi.storage.tables import exists
from lakehouse_phi.storage.targets import Target

ROOT = Path(__file__).resolve().parents[2]
OLD = pa.table({"k": ["a", "b"], "v": [1, 2]})
NEW = pa.table({"k": ["a", "b", "c"], "v": [10, 20, 30]})


def _old_table(path: Path) -> Path:
    path.mkdir()
    pq.write_table(OLD.slice(0, 1), path / "part-00000-old1.parquet")
    pq.write_table(OLD.slice(1), path / "part-00001-old2.parquet")
    return path


def _rows(path: Path) -> list:
    """What any Parquet reader sees (files and folders starting with _ or . are ignored, as Spark does)."""
    return sorted(ds.dataset(str(path), format="parquet").to_table().to_pylist(), key=lambda r: r["k"])


def _run(path: Path, step: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tests.unit.parquet_kill", str(path), step], env=env, cwd=ROOT,
                          capture_output=True, timeout=120).returncode


def test_replace_contents_swaps_every_file(tmp_path):
    table = _old_table(tmp_path / "t")
    assert _run(table, "none") == 0
    assert _rows(table) == sorted(NEW.to_pylist(), key=lambda r: r["k"])
    assert sorted(os.listdir(table)) == ["part-00000-new1.parquet", "part-00001-new2.parquet"]


@pytest.mark.parametrize(("step", "after"), [("staged", OLD), ("committed", NEW), ("moving", NEW)])
def test_a_kill_at_any_step_leaves_the_old_or_the_new_table(tmp_path, step, after):
    table = _old_table(tmp_path / "t")
    assert _run(table, step) == -9  # SIGKILL
    if step == "staged":  # not committed: readers still see exactly the old table, before any recovery
        assert _rows(table) == sorted(OLD.to_pylist(), key=lambda r: r["k"])
    assert exists(None, Target.path(str(table)), "parquet")  # every access of the job recovers first
    assert _rows(table) == sorted(after.to_pylist(), key=lambda r: r["k"])
    assert not [n for n in os.listdir(table) if n.startswith("_lhp")]  # no manifest, no staging left
    assert parquet.recover(str(table)) is False  # idempotent


def test_an_unreadable_manifest_stops_the_run(tmp_path):
    from lakehouse_phi.errors import JobRefused

    table = _old_table(tmp_path / "t")
    (table / parquet.SWAP).write_text("{not json")
    with pytest.raises(JobRefused, match="swap manifest"):
        parquet.recover(str(table))
