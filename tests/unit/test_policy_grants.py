"""``governance.grants`` and ``kind`` in the policy: shape and cross-reference errors, each with its place."""

from __future__ import annotations

import pytest
import yaml

from lakehouse_phi.errors import PolicyError
from lakehouse_phi.policy.load import policy_from_data
from tests.helpers import EXAMPLE


def _with(grants=None, kind=None):
    data = yaml.safe_load(EXAMPLE.read_text())
    if grants is not None:
        data["governance"]["grants"] = grants
    if kind is not None:
        data["governance"]["tables"]["main.gold.claims"]["kind"] = kind
    return data


def _problems(data) -> dict[str, str]:
    with pytest.raises(PolicyError) as exc:
        policy_from_data(data, "test")
    return {p.place: p.message for p in exc.value.problems}


def test_example_grants_load():
    gov = policy_from_data(_with(), "test").governance
    ingest = next(g for g in gov.grants if g.to == ["ingest"])
    assert ingest.modify[0] == "main.bronze.patients"
    assert gov.except_ == ["pipelines"]
    assert policy_from_data(_with(grants=[{"to": "billing", "select": ["main.gold.claims"]}]), "t").governance \
        .grants[0].to == ["billing"]


def test_undeclared_group_and_short_table_names_are_reported_with_their_place():
    problems = _problems(_with(grants=[{"to": ["billing", "nobody"], "select": ["gold.claims"],
                                        "modify": ["main.bronze.claims"]}]))
    assert "not declared under groups" in problems["governance.grants.0.to.1"]
    assert "CATALOG.SCHEMA.TABLE" in problems["governance.grants.0.select.0"]
    assert len(problems) == 2


def test_a_grant_without_tables_or_with_an_unknown_key_is_refused():
    assert "select: or modify:" in _problems(_with(grants=[{"to": ["billing"]}]))["governance.grants.0"]
    problems = _problems(_with(grants=[{"to": ["billing"], "select": ["main.gold.claims"], "all": True}]))
    assert "unknown key 'all'" in problems["governance.grants.0.all"]


def test_kind_is_one_of_three():
    assert policy_from_data(_with(kind="streaming_table"), "t").governance.tables["main.gold.claims"].kind == \
        "streaming_table"
    assert "materialized_view" in _problems(_with(kind="view"))["governance.tables.main.gold.claims.kind"]
