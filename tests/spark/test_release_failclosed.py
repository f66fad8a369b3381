"""Issue 23.4 with the engine: the manifest's k and l are measured again from the written files before signing
(checked with a plain groupby, which the pycanon lane holds to pycanon), an engine that misreports or a
suppression that fails refuses the export and leaves nothing signed; `risk` never prints the raw values of a class
below k (a date of birth kept raw)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from lakehouse_phi.commands.release import print_risk, risk_html
from lakehouse_phi.errors import JobRefused
from lakehouse_phi.release import export as export_mod
from lakehouse_phi.release.export import run_export
from lakehouse_phi.release.risk import HIDDEN, release_columns, risk_of_table
from tests.release_data import k_and_l
from tests.spark.test_release import QI, _policy, release_env  # noqa: F401 - the fixture

pytestmark = pytest.mark.spark


def test_the_signed_k_and_l_are_those_of_the_written_files(spark, release_env, tmp_path):  # noqa: F811
    tmp, _df, signer, _ = release_env
    out = tmp_path / "export"
    result = run_export(spark, _policy(tmp, 4, 2, signer), "patients", str(out),
                        source=str(tmp / "masked.parquet"), audit=str(tmp_path / "audit.jsonl"))
    manifest = json.loads((out / "manifest.json").read_text())
    written = pq.read_table(out / "data").to_pandas()
    k, l_div = k_and_l(written, QI, ["diagnosis_code"])
    assert manifest["k_achieved"] == k >= 4
    assert manifest["l_achieved"] == l_div >= 2
    assert manifest["records_exported"] == len(written) == result.records_exported


@pytest.mark.parametrize("lie", ["k", "records"])
def test_an_engine_that_misreports_is_caught_before_signing(spark, release_env, tmp_path, monkeypatch, lie):  # noqa: F811
    tmp, _df, signer, _ = release_env
    real = export_mod._suppressed

    def lying(*args, **kwargs):
        rel = real(*args, **kwargs)
        if lie == "k":
            rel.k_achieved = (rel.k_achieved or 0) + 7
        else:
            rel.kept += 1
        return rel

    monkeypatch.setattr(export_mod, "_suppressed", lying)
    out = tmp_path / "export"
    with pytest.raises(JobRefused, match="refused before signing: the written files hold"):
        run_export(spark, _policy(tmp, 4, 2, signer), "patients", str(out), source=str(tmp / "masked.parquet"),
                   audit=str(tmp_path / "audit.jsonl"))
    assert not (out / "manifest.json").exists() and not (out / "manifest.sig").exists()
    assert not (out / "data").exists() and not (tmp_path / "audit.jsonl").exists()


def test_a_suppression_that_keeps_small_classes_is_refused(spark, release_env, tmp_path, monkeypatch):  # noqa: F811
    """The engine's suppression keeps every record and reports k as required (a bug, or a tampered engine): the
    written files say otherwise."""
    tmp, df, signer, _ = release_env
    from lakehouse_phi.spark.session import functions

    def keep_all(frame, qi, sensitive, k, l, F):  # noqa: E741
        return frame.withColumn("_keep", functions(spark).lit(True))

    real = export_mod._achieved
    monkeypatch.setattr(export_mod, "suppress", keep_all)
    monkeypatch.setattr(export_mod, "_achieved", lambda released, cols, kept, F: (
        real(released, cols, kept, F)[0], real(released, cols, kept, F)[1]))
    out = tmp_path / "export"
    with pytest.raises(JobRefused, match=r"k=\d+, below tables.patients.risk.k 5"):
        run_export(spark, _policy(tmp, 5, 2, signer), "patients", str(out), source=str(tmp / "masked.parquet"),
                   audit=str(tmp_path / "audit.jsonl"))
    assert k_and_l(df, QI, ["diagnosis_code"])[0] < 5
    assert not (out / "manifest.json").exists() and not (out / "data").exists()


def test_risk_hides_raw_values_of_small_classes(spark, release_env, capsys):  # noqa: F811
    tmp, df, signer, _ = release_env
    from lakehouse_phi.policy.model import ColumnSpec, IngestRule

    spec = _policy(tmp, 5, 1, signer).policy.tables["patients"]
    cols = dict(spec.columns)
    # birth_year in the masked data plays the exact date of birth, kept raw: a quasi-identifier
    cols.pop("dob")
    cols["birth_year"] = ColumnSpec(type="string", phi="date_of_birth", quasi_identifier=True,
                                    ingest=IngestRule(strategy="keep", justification="dosing"))
    raw = spec.model_copy(update={"columns": cols, "export": None})
    assert release_columns(raw).raw == frozenset({"birth_year", "sex"})  # sex: no phi, but kept raw
    report = risk_of_table(spark, raw, "patients", str(tmp / "masked.parquet"), top=5000)
    small = [c for c in report.smallest if c["records"] < 5]
    large = [c for c in report.smallest if c["records"] >= 5]
    assert small and large  # every class is listed (top covers them all)
    assert all(c["values"]["birth_year"] == HIDDEN and c["values"]["sex"] == HIDDEN for c in small)
    assert all(c["values"]["zip"] != HIDDEN for c in small)  # generalized (zip3): shown
    assert all(c["values"]["birth_year"] != HIDDEN for c in large)
    sizes = df.groupby(QI).size()
    rare_years = {y for (y, _z, _s), n in sizes.items() if n < 5} - {y for (y, _z, _s), n in sizes.items() if n >= 5}
    assert rare_years  # years seen only in classes below k
    print_risk(report.to_dict())
    text = capsys.readouterr().out + json.dumps(report.to_dict()) + risk_html(report.to_dict())
    for year in rare_years:
        assert year not in text, year
    # without a k target, no listed class shows a raw value
    untargeted = risk_of_table(spark, raw.model_copy(update={"risk": None}), "patients", str(tmp / "masked.parquet"),
                               top=50)
    assert all(c["values"]["birth_year"] == HIDDEN for c in untargeted.smallest)
    assert all(c["values"]["zip"] != HIDDEN for c in untargeted.smallest)
