"""The k/l reference values of the release tests, checked against pycanon (an independent implementation).

Runs in its own virtualenv, the pycanon lane (``make test-pycanon``; marker ``pycanon``, deselected in the main
suite): pycanon pins exact numpy, pandas and scipy versions, which the main suite must not be held to. The main
suite checks ``lakehouse-phi risk`` against the same reference file (``tests/spark/test_release.py``).
"""

from __future__ import annotations

import pytest

from tests.release_data import QI, SENSITIVE, reference, release_frame, release_rows, rows_sha256

pytestmark = pytest.mark.pycanon


def test_the_reference_data_is_the_recorded_data():
    assert rows_sha256(release_rows()) == reference()["data_sha256"]


@pytest.mark.parametrize("case", reference()["cases"], ids=lambda c: "+".join(c["quasi_identifiers"]))
def test_k_and_l_reference_values_match_pycanon(case):
    from pycanon import anonymity

    df = release_frame()
    qi = case["quasi_identifiers"]
    assert reference()["sensitive"] == SENSITIVE
    assert anonymity.k_anonymity(df, qi) == case["k"]
    assert anonymity.l_diversity(df, qi, SENSITIVE) == case["l"]


def test_the_cases_are_not_trivial():
    """k and l above 1 somewhere, and the full quasi-identifier set of the release policy among the cases."""
    cases = reference()["cases"]
    assert any(c["k"] > 1 and c["l"] > 1 for c in cases)
    assert QI in [c["quasi_identifiers"] for c in cases]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_main_suites_groupby_matches_pycanon(seed):
    """The main suite checks the written-files measurement (release/export.measure_files) against
    ``tests.release_data.k_and_l``; here that function is held to pycanon on the same frames and on the release data."""
    from pycanon import anonymity

    from tests.release_data import k_and_l, measurement_frame

    df = measurement_frame(400, seed)
    assert k_and_l(df, ["year", "zip"], ["dx"]) == (anonymity.k_anonymity(df, ["year", "zip"]),
                                                    anonymity.l_diversity(df, ["year", "zip"], ["dx"]))
    rel = release_frame()
    assert k_and_l(rel, QI, SENSITIVE) == (anonymity.k_anonymity(rel, QI), anonymity.l_diversity(rel, QI, SENSITIVE))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_written_files_measurement_matches_pycanon(tmp_path, seed):
    from pathlib import Path

    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pycanon import anonymity

    from lakehouse_phi.release.export import measure_files
    from lakehouse_phi.release.risk import ReleaseColumns
    from tests.release_data import measurement_frame

    df = measurement_frame(400, seed)
    paths: list[Path] = []
    for i, part in enumerate(np.array_split(df, 3)):
        paths.append(tmp_path / f"part-{i}.parquet")
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), paths[-1])
    got = measure_files(paths, ReleaseColumns(("year", "zip"), ("dx",)))
    qi = ["year", "zip"]
    assert (got.k, got.l) == (anonymity.k_anonymity(df, qi), anonymity.l_diversity(df, qi, ["dx"]))
