"""Issue 23.4 without Spark: `validate` refuses an export column that is PHI kept raw or a direct identifier in a
readable or reversible form; `export verify` refuses any file, folder or symbolic link the manifest does not list;
the Arrow measurement of the written files (what the manifest states) agrees with a plain
groupby, which the pycanon lane holds to pycanon."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lakehouse_phi.release.export import (
    DATA,
    MANIFEST,
    SIGNATURE,
    canonical,
    measure_files,
    sha256_file,
    verify_export,
)
from lakehouse_phi.release.risk import ReleaseColumns
from tests.helpers import EXAMPLE, run_cli
from tests.release_data import k_and_l, measurement_frame

EXPORT_LINE = "    export: {columns: [birth_year, sex, state], signing_key: export-signer}\n"


def _validate(tmp_path: Path, columns: str) -> tuple[int, str]:
    text = EXAMPLE.read_text()
    assert EXPORT_LINE in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace(EXPORT_LINE, f"    export: {{columns: [{columns}], signing_key: export-signer}}\n"))
    proc = run_cli("validate", str(path))
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize(("column", "why"), [
    ("phone", "PHI (phi: phone) kept raw"),          # the kept phone
    ("dob", "PHI (phi: date_of_birth) kept raw"),     # a quasi-identifier kept raw: exact dates of birth
    ("ssn", "direct identifier (phi: ssn) written with strategy encrypt"),   # reversible with the key
    ("member_id", "direct identifier (phi: health_plan_number) written with strategy fpe"),
    ("email", "direct identifier (phi: email) written with strategy partial"),   # readable in part
])
def test_validate_refuses_raw_phi_and_readable_direct_identifiers(tmp_path, column, why):
    code, out = _validate(tmp_path, f"birth_year, {column}, sex")
    assert code == 2, out
    assert "tables.patients.export.columns.1" in out and why in out


def test_validate_refuses_a_kept_name_in_a_policy_of_its_own(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text("""
version: 1
name: p
keys:
  s: {provider: file, ref: /nonexistent.pem}
  k: {provider: env, ref: K}
tables:
  t:
    source: {format: csv, path: x}
    bronze: /tmp/b
    record_key: [id]
    export: {columns: [id, full_name, visit], signing_key: s}
    columns:
      id: {type: string, phi: medical_record_number, ingest: {strategy: hmac, key: k}}
      full_name: {type: string, phi: name, ingest: {strategy: keep, justification: "call center"}}
      visit: {type: date, phi: date, ingest: {strategy: date_shift, key: k, subject: id, max_days: 30}}
""")
    proc = run_cli("validate", str(policy))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "tables.t.export.columns.1" in out and "PHI (phi: name) kept raw" in out
    assert "export.columns.0" not in out and "export.columns.2" not in out  # a pseudonym, a shifted date


@pytest.mark.parametrize("columns", ["birth_year, sex, state", "ssn_token, last_name, birth_year, zip, age",
                                     "first_name, address, registered_at"])
def test_validate_accepts_pseudonyms_generalized_and_removed_values(tmp_path, columns):
    code, out = _validate(tmp_path, columns)
    assert code == 0, out


# ------------------------------------------------------------------------------------------------- export verify
@pytest.fixture
def export_dir(tmp_path):
    """A genuine signed export: two data files, manifest, signature."""
    key = Ed25519PrivateKey.generate()
    root = tmp_path / "export"
    (root / DATA).mkdir(parents=True)
    files = []
    for i in range(2):
        path = root / DATA / f"part-{i:05d}.parquet"
        pq.write_table(pa.table({"birth_year": [1950 + i] * 3, "sex": ["F", "M", "F"]}), path)
        files.append({"path": f"{DATA}/{path.name}", "sha256": sha256_file(path), "bytes": path.stat().st_size,
                      "rows": 3})
    body = canonical({"format": "lakehouse-phi-export/1", "files": files, "run_id": "r", "table": "t"})
    (root / MANIFEST).write_bytes(body)
    (root / SIGNATURE).write_text(base64.b64encode(key.sign(body)).decode() + "\n")
    assert verify_export(str(root), key.public_key()).ok
    return root, key.public_key(), tmp_path


def _bad(root: Path, public) -> str:
    report = verify_export(str(root), public)
    assert not report.ok
    return " | ".join(report.problems)


@pytest.mark.parametrize("what", ["root-file", "hidden-file", "root-folder", "empty-data-subfolder",
                                  "nested-file", "staging-leftover", "readme-beside-data"])
def test_anything_added_fails(export_dir, what):
    root, public, _ = export_dir
    if what == "root-file":
        (root / "extra.parquet").write_bytes(b"PAR1")
    elif what == "hidden-file":
        (root / DATA / ".part-00000.parquet.crc").write_bytes(b"x")
    elif what == "root-folder":
        (root / "more").mkdir()
    elif what == "empty-data-subfolder":
        (root / DATA / "sub").mkdir()
    elif what == "nested-file":
        (root / DATA / "sub").mkdir()
        shutil.copy(root / DATA / "part-00000.parquet", root / DATA / "sub" / "part-00000.parquet")
    elif what == "staging-leftover":
        (root / "_staging_r").mkdir()
        (root / "_staging_r" / "x.parquet").write_bytes(b"PAR1")
    else:
        (root / "README.txt").write_text("names of the patients: ...")
    assert "not list" in _bad(root, public)


@pytest.mark.parametrize("what", ["link-in-data-to-listed", "link-in-data-outside", "link-at-root",
                                  "data-is-a-link", "listed-file-is-a-link", "dangling-link", "link-to-folder"])
def test_symbolic_links_fail(export_dir, what):
    root, public, tmp = export_dir
    outside = tmp / "outside.parquet"
    shutil.copy(root / DATA / "part-00000.parquet", outside)
    if what == "link-in-data-to-listed":
        os.symlink(root / DATA / "part-00000.parquet", root / DATA / "part-00002.parquet")
    elif what == "link-in-data-outside":
        os.symlink(outside, root / DATA / "more.parquet")
    elif what == "link-at-root":
        os.symlink("/etc/hostname", root / "hostname")
    elif what == "data-is-a-link":
        shutil.copytree(root / DATA, tmp / "copy")
        shutil.rmtree(root / DATA)
        os.symlink(tmp / "copy", root / DATA)
    elif what == "listed-file-is-a-link":
        (root / DATA / "part-00000.parquet").unlink()
        os.symlink(outside, root / DATA / "part-00000.parquet")  # same bytes, but the file lives elsewhere
    elif what == "dangling-link":
        os.symlink(tmp / "nothing", root / DATA / "gone.parquet")
    else:
        (tmp / "dir").mkdir()
        os.symlink(tmp / "dir", root / DATA / "dir")
    assert "symbolic link" in _bad(root, public)


# ------------------------------------------------------------------------------------ the manifest's k and l
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_measurement_of_written_files_matches_a_plain_groupby(tmp_path, seed):
    """The Arrow measurement of a release split over several files against a pandas groupby (which the pycanon lane
    holds to pycanon: tests/reference/test_pycanon_reference.py)."""
    df = measurement_frame(400, seed)
    paths = []
    for i, part in enumerate(np.array_split(df, 3)):  # a release split over several files
        paths.append(tmp_path / f"part-{i}.parquet")
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), paths[-1])
    got = measure_files(paths, ReleaseColumns(("year", "zip"), ("dx",)))
    assert got.records == 400
    assert (got.k, got.l) == k_and_l(df, ["year", "zip"], ["dx"])


def test_null_is_a_value_of_its_own(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"q": ["a", "a", None, None, None], "s": ["x", None, "x", "x", None]}), path)
    got = measure_files([path], ReleaseColumns(("q",), ("s",)))
    assert (got.records, got.k, got.l) == (5, 2, 2)
    assert re.fullmatch(r"\d+", str(got.k))
