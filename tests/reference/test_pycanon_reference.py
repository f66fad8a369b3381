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
