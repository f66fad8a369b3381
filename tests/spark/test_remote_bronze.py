"""Ingest into Delta tables on S3 (moto's S3 server on loopback, a real S3 HTTP API): re-ingest into an existing
remote bronze works on every local engine, and concurrent first ingests to an s3:// bronze never both land."""

from __future__ import annotations

import pytest

from lakehouse_phi import synth
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.spark.ingest import run_ingest
from lakehouse_phi.storage.delta import DeltaRsTable
from tests.s3server import make_bucket, s3_env, s3_server
from tests.spark.test_bronze import _two_at_once, loaded, opts  # noqa: F401 - loaded is a fixture

pytest.importorskip("deltalake")


@pytest.fixture(scope="module")
def s3():
    with s3_server() as url, s3_env(url):
        make_bucket("lake")
        yield url


def _remote(tmp_path, landing, prefix: str):
    return opts(tmp_path, landing, bronze=f"s3://lake/{prefix}/bronze", quarantine=f"s3://lake/{prefix}/quarantine",
                audit=f"s3://lake/{prefix}/audit")


def _keys(location: str, column: str) -> list:
    return DeltaRsTable(location).read_arrow([column]).column(column).to_pylist()


@pytest.mark.parametrize("engine", ["sail", "spark"])
def test_reingest_into_an_existing_s3_bronze(s3, loaded, tmp_path, engine, request):  # noqa: F811 - fixture
    session = request.getfixturevalue(engine)
    synth.write_landing(tmp_path, {"claims": 300}, seed=21, malformed_rate=0.02)
    landing = tmp_path / "landing" / "claims"
    first = run_ingest(session, loaded, "claims", _remote(tmp_path, landing, engine))
    again = run_ingest(session, loaded, "claims", _remote(tmp_path, landing, engine))
    assert first.rows_inserted > 0 and again.rows_inserted == 0 and again.rows_unchanged == first.rows_written
    claims = _keys(f"s3://lake/{engine}/bronze", "claim_id")
    assert len(claims) == len(set(claims)) == first.rows_written
    trail = DeltaRsTable(f"s3://lake/{engine}/audit").read_arrow(["event"]).column("event").to_pylist()
    assert trail.count("ingest") == 2


def test_concurrent_first_ingests_to_s3_never_duplicate(s3, sail, loaded, tmp_path):  # noqa: F811 - fixture
    synth.write_landing(tmp_path, {"claims": 800}, seed=22, malformed_rate=0.02)
    landing = tmp_path / "landing" / "claims"
    for trial in range(3):
        prefix = f"race{trial}"
        results, errors = _two_at_once(lambda p=prefix: run_ingest(sail, loaded, "claims", _remote(tmp_path, landing,
                                                                                                   p)))
        assert not errors or all(isinstance(e, JobRefused) for e in errors)
        claims = _keys(f"s3://lake/{prefix}/bronze", "claim_id")
        assert len(claims) == len(set(claims)) == results[0].rows_written
        q = _keys(f"s3://lake/{prefix}/quarantine", "_row_fingerprint")
        assert len(q) == len(set(q)) > 0
