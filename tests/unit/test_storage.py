"""The storage layer: one local-vs-remote rule (every cloud scheme remote, everywhere), the Delta adapter on local
paths and on S3 (moto's server on loopback), and the one conflict / not-found / retry rule."""

from __future__ import annotations

import json
import threading
import time

import pyarrow as pa
import pytest

from lakehouse_phi.audit import DeltaSink, new_event, open_audit, verify_trail
from lakehouse_phi.errors import JobRefused, UsageError
from lakehouse_phi.storage import (
    Commit,
    ConcurrentWriters,
    DeltaRsTable,
    RetryPolicy,
    Target,
    is_conflict,
    is_not_found,
    open_delta,
)
from lakehouse_phi.storage.keycheck import KEY_CHECKS_PROPERTY, recorded_key_checks
from lakehouse_phi.storage.tables import exists, path_lock
from lakehouse_phi.storage.targets import local_path
from tests.s3server import make_bucket, s3_env, s3_server

pytest.importorskip("deltalake")

REMOTE = ["dbfs:/mnt/bronze/patients", "dbfs:///mnt/bronze/patients", "/Volumes/main/bronze/landing/patients",
          "s3://bucket/bronze/patients", "s3a://bucket/bronze/patients", "abfss://c@acct.dfs.core.windows.net/b/p",
          "gs://bucket/bronze/patients", "S3://bucket/x"]


# ----------------------------------------------------------------------------------------------------- the one rule
@pytest.mark.parametrize("location", REMOTE)
def test_cloud_paths_are_remote(location):
    t = Target.parse(location)
    assert t.is_path and t.is_remote and t.local is None and local_path(location) is None


@pytest.mark.parametrize(("location", "local"), [
    ("/data/bronze/p", "/data/bronze/p"), ("./bronze", "./bronze"), ("file:/tmp/b", "/tmp/b"),
    ("file:///tmp/b", "/tmp/b"), ("rel/dir", "rel/dir"), ("C:\\data\\b", "C:\\data\\b"),
])
def test_local_paths(location, local):
    assert Target.parse(location).local == local


def test_table_names_are_neither():
    t = Target.parse("main.bronze.patients")
    assert not t.is_path and t.local is None and not t.is_remote


@pytest.mark.parametrize("location", REMOTE)
def test_no_local_lock_folder_for_a_remote_path(location, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with path_lock(Target.parse(location)):
        pass
    assert list(tmp_path.iterdir()) == []  # no "dbfs:" / "s3:" folder, no lock file


def test_local_lock_serializes(tmp_path):
    target, order = Target.path(str(tmp_path / "t")), []

    def hold(name):
        with path_lock(target):
            order.append(f"{name}+")
            time.sleep(0.2)
            order.append(f"{name}-")

    threads = [threading.Thread(target=hold, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order[0][0] == order[1][0] and order[2][0] == order[3][0]  # never interleaved


class _EngineStandIn:
    """A Spark session as far as routing goes: a classic session with the Delta extension (Databricks-like) that
    records what it is asked and answers from a dict of tables."""

    class _Conf:
        def get(self, key, default=None):
            return "io.delta.sql.DeltaSparkSessionExtension" if key == "spark.sql.extensions" else default

    def __init__(self, tables, fail=None):
        self.conf, self.asked, self.tables, self.fail = self._Conf(), [], tables, fail

    @property
    def read(self):
        return self

    def format(self, fmt):
        return self

    def load(self, location):
        self.asked.append(("load", location))
        if self.fail:
            raise self.fail
        if location not in self.tables:
            raise RuntimeError("[DELTA_PATH_DOES_NOT_EXIST] no table")
        return type("Frame", (), {"schema": "s"})()

    def sql(self, text):
        self.asked.append(("sql", text))
        props = self.tables[text.split("`")[1]]
        return type("Result", (), {"collect": lambda _self: list(props.items())})()


@pytest.mark.parametrize("location", ["dbfs:/mnt/bronze/patients", "/Volumes/main/bronze/v/patients",
                                      "abfss://c@acct.dfs.core.windows.net/b/p", "gs://bucket/b/p"])
def test_exists_and_key_checks_of_a_remote_path_ask_the_engine(location, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checks = {"hmac_key": "ab" * 8}
    engine = _EngineStandIn({location: {KEY_CHECKS_PROPERTY: json.dumps(checks)}})
    target = Target.parse(location)
    assert exists(engine, target, "delta") is True
    assert recorded_key_checks(engine, target) == checks  # read back, not skipped as "no local table"
    assert ("load", location) in engine.asked and any(q[0] == "sql" and "SHOW TBLPROPERTIES" in q[1]
                                                       for q in engine.asked)
    missing = _EngineStandIn({})
    assert exists(missing, target, "delta") is False and recorded_key_checks(missing, target) is None
    assert list(tmp_path.iterdir()) == []


def test_an_engine_error_other_than_not_found_propagates():
    engine = _EngineStandIn({}, fail=PermissionError("denied"))
    with pytest.raises(PermissionError):
        exists(engine, Target.parse("dbfs:/mnt/b"), "delta")


# ---------------------------------------------------------------------------------------------------------- rules
def test_conflict_and_not_found_rules():
    from deltalake.exceptions import CommitFailedError, TableNotFoundError

    assert is_conflict(CommitFailedError("lost")) and not is_conflict(PermissionError("denied"))
    assert not is_conflict(OSError("The operation lacked the necessary privileges"))
    assert not is_conflict(ValueError("concurrent conflict"))  # no substring matching on other errors
    assert is_conflict(RuntimeError("[DELTA_CONCURRENT_APPEND] files were added"))
    assert is_not_found(TableNotFoundError("none")) and is_not_found(RuntimeError("[PATH_NOT_FOUND] x"))
    assert not is_not_found(PermissionError("path does not exist"))


def test_retry_policy_retries_only_conflicts():
    from deltalake.exceptions import CommitFailedError

    calls = []

    def lose_twice(n):
        calls.append(n)
        if n < 2:
            raise CommitFailedError("another writer")
        return "done"

    assert RetryPolicy(attempts=5, base_delay=0).run(lose_twice, "t") == "done" and calls == [0, 1, 2]
    calls.clear()

    def denied(n):
        calls.append(n)
        raise PermissionError("denied")

    with pytest.raises(PermissionError):
        RetryPolicy(attempts=5, base_delay=0).run(denied, "t")
    assert calls == [0]
    with pytest.raises(ConcurrentWriters, match="concurrent writers"):
        RetryPolicy(attempts=3, base_delay=0).run(lambda n: (_ for _ in ()).throw(CommitFailedError("x")), "t")


# ---------------------------------------------------------------------------------------------- adapter, local path
def test_merge_inserts_updates_and_skips_a_replayed_app_transaction(tmp_path):
    table = DeltaRsTable(str(tmp_path / "t"))
    rows = pa.table({"k": ["a", "b"], "fp": ["1", "1"]})
    assert table.merge(rows, ["k"], update_if_differs="fp", commit=Commit("run-1", ("app", 0))).inserted == 2
    m = table.merge(pa.table({"k": ["a", "c"], "fp": ["2", "1"]}), ["k"], update_if_differs="fp",
                    commit=Commit("run-2", ("app", 1)))
    assert (m.inserted, m.updated, m.skipped) == (1, 1, False)
    again = table.merge(pa.table({"k": ["d"], "fp": ["1"]}), ["k"], commit=Commit("run-3", ("app", 1)))
    assert again.skipped and table.read_arrow(["k"]).num_rows == 3
    assert table.run_versions("run-2") == [1] and table.txn_version("app") == 1


def test_merge_reads_a_stream_again_on_retry(tmp_path):
    table = DeltaRsTable(str(tmp_path / "t"))
    table.merge(pa.table({"k": ["a"]}), ["k"])

    def batches():
        return pa.RecordBatchReader.from_batches(pa.schema([("k", pa.string())]),
                                                 [pa.record_batch({"k": ["a", "b"]}), pa.record_batch({"k": ["c"]})])

    assert table.merge(batches, ["k"]).inserted == 2 and table.read_arrow().num_rows == 3


def test_properties_round_trip(tmp_path):
    table = open_delta(str(tmp_path / "t"))
    table.merge(pa.table({"k": ["a"]}), ["k"])
    table.set_properties({KEY_CHECKS_PROPERTY: json.dumps({"k": "00"})}, Commit("run-p"))
    assert recorded_key_checks(None, str(tmp_path / "t")) == {"k": "00"}
    assert table.run_versions("run-p") == [1]


def test_catalog_name_needs_spark():
    with pytest.raises(UsageError, match="Spark session"):
        open_delta("main.bronze.patients")


# ---------------------------------------------------------------------------------------------------- adapter, S3
@pytest.fixture(scope="module")
def s3():
    with s3_server() as url, s3_env(url):
        make_bucket("lake")
        yield url


def _event(n: int) -> dict:
    return new_event(run_id=f"run-{n}", actor="t", event="ingest", policy_name="p", policy_sha256="0" * 64,
                     table="patients", rows_read=n, rows_written=n, rows_quarantined=0, columns={}, details={})


@pytest.mark.parametrize("scheme", ["s3", "s3a"])
def test_s3_exists_key_checks_and_read_back(s3, scheme):
    location = f"{scheme}://lake/{scheme}/bronze"
    target = Target.parse(location)
    assert target.is_remote and not exists(None, target, "delta")  # asked of delta-rs, no Spark needed
    table = open_delta(target)
    assert table.merge(pa.table({"k": ["a", "b"]}), ["k"], commit=Commit("run-1")).inserted == 2
    assert table.merge(pa.table({"k": ["a", "c"]}), ["k"], commit=Commit("run-2")).inserted == 1
    table.set_properties({KEY_CHECKS_PROPERTY: json.dumps({"k": "01"})})
    assert exists(None, target, "delta") and recorded_key_checks(None, target) == {"k": "01"}
    assert sorted(table.read_arrow(["k"]).column("k").to_pylist()) == ["a", "b", "c"]


def test_concurrent_first_writes_to_s3_land_once(s3):
    """Four writers create the same table at once: delta-rs alone would rebase a lost create into an append
    (duplicates); the adapter turns a lost create into a merge."""
    location, errors = "s3://lake/race/bronze", []
    rows = pa.table({"k": [f"r{i}" for i in range(20)]})

    def write():
        try:
            DeltaRsTable(location).merge(rows, ["k"])
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    keys = DeltaRsTable(location).read_arrow(["k"]).column("k").to_pylist()
    assert sorted(keys) == sorted(rows.column("k").to_pylist())  # each row once


def test_audit_trail_on_s3_without_spark(s3):
    path = "s3://lake/audit/trail"
    sink = open_audit(path, run_id="run-a")
    first = [sink.append(_event(i)) for i in range(3)]
    assert first[2]["prev_hash"] == first[1]["hash"]
    result = verify_trail(path)
    assert result.ok and result.events == 3
    assert DeltaRsTable(path).properties().get("delta.appendOnly") == "true"


def test_permission_error_surfaces_at_once_as_itself():
    """403 from S3 is not "another writer won": no backoff, no ConcurrentWriters, the storage error itself."""
    with s3_server(enforce_auth=True) as url, s3_env(url, key="not-a-known-key"):
        started = time.monotonic()
        table = DeltaRsTable("s3://lake/denied/bronze", retry=RetryPolicy(attempts=8, base_delay=2.0))
        with pytest.raises(OSError, match="403") as caught:
            table.merge(pa.table({"k": ["a"]}), ["k"])
        assert not isinstance(caught.value, JobRefused)
        sink = DeltaSink(None, "s3://lake/denied/audit")
        with pytest.raises(OSError, match="403"):
            sink.append(_event(0))
        assert time.monotonic() - started < 8  # one backoff alone would be 1 s or more


@pytest.mark.parametrize("where", ["env", "options"])
def test_no_safe_commit_on_s3_refuses_before_writing(where, monkeypatch):
    """With allow_unsafe_rename (no conditional put, no lock) two writers could both commit one version: refused,
    before anything is sent (no server is running here)."""
    options = None
    if where == "env":
        monkeypatch.setenv("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    else:
        options = {"aws_s3_allow_unsafe_rename": "true"}
    table = DeltaRsTable("s3://lake/unsafe/bronze", storage_options=options)
    with pytest.raises(UsageError, match="UNSAFE_RENAME"):
        table.merge(pa.table({"k": ["a"]}), ["k"])
    with pytest.raises(UsageError, match="UNSAFE_RENAME"):
        table.delete("true")
    monkeypatch.setenv("AWS_S3_ALLOW_UNSAFE_RENAME", "true")
    with pytest.raises(UsageError, match="UNSAFE_RENAME"):
        DeltaRsTable("s3a://lake/unsafe/audit").set_properties({"a": "b"})
